"""Loading YAML config files into strict pydantic models, with errors that name file and key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from canhgac_common.units import parse_duration, parse_size

__all__ = ["ConfigError", "Duration", "Size", "StrictModel", "load_model", "parse_model"]

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """A config file (or CLI value) is unusable; the message names the file and key path."""


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: Any) -> float:
    if isinstance(value, str | int | float):
        return parse_duration(value)
    raise ValueError(f"not a duration: {value!r}")


def _size(value: Any) -> int:
    if isinstance(value, str | int):
        return parse_size(value)
    raise ValueError(f"not a size: {value!r}")


Duration = Annotated[float, BeforeValidator(_duration)]
"""Seconds; written in YAML as 30s, 15m, 7d or a number of seconds."""
Size = Annotated[int, BeforeValidator(_size)]
"""Bytes; written in YAML as 512KiB, 64MiB or a number of bytes."""


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_model(model: type[M], data: Any, source: str) -> M:
    """Validate `data` (already parsed YAML) as `model`; `source` names where it came from."""
    if data is None:
        data = {}
    try:
        return model.model_validate(data)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            lines.append(f"{source}: {_key_path(err['loc'])}: {msg}")
        raise ConfigError("\n".join(lines)) from None


def load_model(model: type[M], path: Path) -> M:
    """Read the YAML file at `path` and validate it as `model`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where}: invalid YAML: {getattr(e, 'problem', e)}") from None
    return parse_model(model, data, str(path))
