"""Loading YAML config files into strict pydantic models (the collector's), with errors that name
file and key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError

from canhgac_common.units import duration_value, size_value
from canhgac_common.yamlfile import ConfigError, key_path, read_yaml

__all__ = [
    "ConfigError",
    "Duration",
    "Size",
    "StrictModel",
    "TimeZone",
    "load_model",
    "parse_model",
    "time_zone",
]

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Duration = Annotated[float, BeforeValidator(duration_value)]
"""Seconds; written in YAML as 30s, 15m, 7d or a number of seconds."""
Size = Annotated[int, BeforeValidator(size_value)]
"""Bytes; written in YAML as 512KiB, 64MiB or a number of bytes."""


def time_zone(value: str) -> str:
    """`value` if zoneinfo knows the zone (through tzdata where the OS has no database)."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


TimeZone = Annotated[str, AfterValidator(time_zone)]
"""An IANA time zone name, e.g. Asia/Ho_Chi_Minh."""


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
            lines.append(f"{source}: {key_path(err['loc'])}: {msg}")
        raise ConfigError("\n".join(lines)) from None


def load_model(model: type[M], path: Path) -> M:
    """Read the YAML file at `path` and validate it as `model`."""
    return parse_model(model, read_yaml(path), str(path))
