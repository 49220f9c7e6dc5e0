"""Writes canhgac_common/agent.schema.json from the agent's config sections (`make docs`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from agent.config import settings_schema

__all__ = ["OUT", "main", "render"]

OUT = Path(__file__).resolve().parents[1] / "canhgac_common" / "agent.schema.json"


def render() -> str:
    return json.dumps(settings_schema(), ensure_ascii=False, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the schema; with --check, fail if the committed file differs."""
    text = render()
    if "--check" in (argv if argv is not None else sys.argv[1:]):
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT.name} is out of date: run `make docs`")
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
