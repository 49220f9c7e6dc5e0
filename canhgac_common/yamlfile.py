"""Reading a YAML config file, with errors that name the file (and line, and key path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from canhgac_common.i18n import gettext_ as _
from canhgac_common.text import nfc

__all__ = ["ConfigError", "key_path", "read_yaml"]


class ConfigError(Exception):
    """A config file (or CLI value) is unusable; the message names the file and key path."""


def key_path(loc: tuple[int | str, ...]) -> str:
    """`("districts", 0, "name")` as `districts[0].name`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or _("(top level)")


def read_yaml(path: Path) -> Any:
    """The parsed YAML file at `path`, its names and values in NFC (see `text.nfc`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(
            _("{path}: cannot read config: {error}").format(path=path, error=e.strerror)
        ) from None
    try:
        return nfc(yaml.safe_load(text))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = _(" line {n}").format(n=mark.line + 1) if mark is not None else ""
        raise ConfigError(
            _("{path}:{where}: invalid YAML: {problem}").format(
                path=path, where=where, problem=getattr(e, "problem", e)
            )
        ) from None
