"""Reading a YAML config file, with errors that name the file (and line, and key path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from canhgac_common.text import nfc

__all__ = ["ConfigError", "key_path", "read_yaml"]


class ConfigError(Exception):
    """A config file (or CLI value) is unusable; the message names the file and key path."""


def key_path(loc: tuple[int | str, ...]) -> str:
    """`("districts", 0, "name")` as `districts[0].name`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def read_yaml(path: Path) -> Any:
    """The parsed YAML file at `path`, its names and values in NFC (see `text.nfc`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror}") from None
    try:
        return nfc(yaml.safe_load(text))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where}: invalid YAML: {getattr(e, 'problem', e)}") from None
