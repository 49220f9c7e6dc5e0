"""Generates docs/metrics.md from the one place metrics are declared (run `make docs`)."""

from __future__ import annotations

import sys
from pathlib import Path

from collector.metrics import SPECS, Spec

__all__ = ["main", "render"]

OUT = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"
_UNITS = (
    ("_timestamp_seconds", "Unix time, s"),
    ("_seconds", "seconds"),
    ("_bytes", "bytes"),
    ("_ratio", "ratio 0–1"),
    ("_celsius", "°C"),
)


def _unit(spec: Spec) -> str:
    name = spec.name.removesuffix("_total")
    return next((u for suffix, u in _UNITS if name.endswith(suffix)), "count / state")


def render() -> str:
    lines = [
        "# Metrics",
        "",
        "Generated from `collector/metrics/` by `make docs` — do not edit by hand; a test",
        "checks that this page, the declarations and what `/metrics` emits agree.",
        "",
        "Per-agent series carry `agent_id, district, commune, unit, host, role` (the place comes",
        "from the agent's enrollment token). A silent agent keeps only `canhgac_agent_up` (0),",
        "`canhgac_agent_last_report_timestamp_seconds` and `canhgac_agent_info`.",
        "",
        "| metric | type | unit | labels | meaning |",
        "|---|---|---|---|---|",
    ]
    for s in SPECS:
        labels = ", ".join(f"`{label}`" for label in s.labels) or "—"
        lines.append(f"| `{s.name}` | {s.kind} | {_unit(s)} | {labels} | {s.help} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write docs/metrics.md; with --check, fail if the committed file differs."""
    text = render()
    if "--check" in (argv if argv is not None else sys.argv[1:]):
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print("docs/metrics.md is out of date: run `make docs`")
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
