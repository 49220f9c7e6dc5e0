"""Loading YAML config files into strict pydantic models (the collector's), with errors that name
file and key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError

from canhgac_common.i18n import N_
from canhgac_common.i18n import gettext_ as _
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
    "problem",
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
        raise ValueError(_("unknown time zone {value!r}").format(value=value)) from None
    return value


TimeZone = Annotated[str, AfterValidator(time_zone)]
"""An IANA time zone name, e.g. Asia/Ho_Chi_Minh."""


# pydantic's error types in our words (the agent's checks in agent/settings.py say the same),
# with the error's context ({ge}, {expected}…) and the value given ({input!r}). A type not
# listed keeps pydantic's English message.
_PROBLEMS = {
    "extra_forbidden": N_("unknown key"),
    "missing": N_("required key missing"),
    "int_parsing": N_("must be an integer, not {input!r}"),
    "int_type": N_("must be an integer, not {input!r}"),
    "int_from_float": N_("must be an integer, not {input!r}"),
    "float_parsing": N_("must be a number, not {input!r}"),
    "float_type": N_("must be a number, not {input!r}"),
    "bool_parsing": N_("must be a boolean, not {input!r}"),
    "bool_type": N_("must be a boolean, not {input!r}"),
    "string_type": N_("must be a string, not {input!r}"),
    "list_type": N_("must be a list, not {input!r}"),
    "dict_type": N_("must be a mapping of keys, not {input!r}"),
    "model_type": N_("must be a mapping of keys, not {input!r}"),
    "model_attributes_type": N_("must be a mapping of keys, not {input!r}"),
    "greater_than": N_("must be greater than {gt}, not {input!r}"),
    "greater_than_equal": N_("must be at least {ge}, not {input!r}"),
    "less_than": N_("must be less than {lt}, not {input!r}"),
    "less_than_equal": N_("must be at most {le}, not {input!r}"),
    "literal_error": N_("must be one of {expected}, not {input!r}"),
    "enum": N_("must be one of {expected}, not {input!r}"),
    "string_pattern_mismatch": N_("must match {pattern}, not {input!r}"),
    "too_short": N_("must have at least {min_length} item(s)"),
    "string_too_short": N_("must have at least {min_length} character(s)"),
    "string_too_long": N_("must have at most {max_length} character(s)"),
}


def problem(err: Any) -> str:
    """One pydantic error (an item of `ValidationError.errors()`) in the chosen language:
    ours for the common types, the validator's own words for a ValueError it raised."""
    kind, context = err["type"], err.get("ctx") or {}
    if kind in ("value_error", "assertion_error") and "error" in context:
        return str(context["error"])  # our validators' message, translated where raised
    template = _PROBLEMS.get(kind)
    if template is None:
        return str(err["msg"])
    if isinstance(context.get("expected"), str):  # pydantic joins the choices in English
        context = {**context, "expected": context["expected"].replace(" or ", _(" or "))}
    try:
        return _(template).format(**context, input=err.get("input"))
    except (KeyError, IndexError, ValueError):  # a context this pydantic names otherwise
        return str(err["msg"])


def parse_model(model: type[M], data: Any, source: str) -> M:
    """Validate `data` (already parsed YAML) as `model`; `source` names where it came from."""
    if data is None:
        data = {}
    try:
        return model.model_validate(data)
    except ValidationError as e:
        lines = [f"{source}: {key_path(err['loc'])}: {problem(err)}" for err in e.errors()]
        raise ConfigError("\n".join(lines)) from None


def load_model(model: type[M], path: Path) -> M:
    """Read the YAML file at `path` and validate it as `model`."""
    return parse_model(model, read_yaml(path), str(path))
