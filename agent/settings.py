"""Agent config sections: frozen dataclasses checked from parsed YAML, without pydantic.

pydantic and its schema machinery are ≈ 11 MB of resident memory that the running service would
keep for a check done once at start (docs/performance.md). A section declares its keys as typed
fields with `option(...)` limits; `Section.model_validate` rejects unknown keys, wrong types and
out-of-range values, collecting every error with its key path, as the collector's pydantic
models do (canhgac_common.config).
"""

from __future__ import annotations

import dataclasses
import operator
import re
import types
from collections.abc import Callable
from pathlib import Path
from typing import (
    Annotated,
    Any,
    Literal,
    Self,
    TypeVar,
    Union,
    dataclass_transform,
    get_args,
    get_origin,
    get_type_hints,
)

from canhgac_common.i18n import N_
from canhgac_common.i18n import gettext_ as _
from canhgac_common.units import duration_value, size_value
from canhgac_common.yamlfile import ConfigError, key_path

__all__ = ["ConfigError", "Duration", "Section", "Size", "option", "parse_section"]

Duration = Annotated[float, duration_value]
"""Seconds; written in YAML as 30s, 15m, 7d or a number of seconds."""
Size = Annotated[int, size_value]
"""Bytes; written in YAML as 512KiB, 64MiB or a number of bytes."""

Loc = tuple[int | str, ...]
S = TypeVar("S", bound="Section")


@dataclasses.dataclass(frozen=True)
class _Limits:
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    pattern: str | None = None
    min_length: int | None = None
    check: Callable[[Any], Any] | None = None

    def apply(self, value: Any) -> Any:
        """`value` (already of the field's type) within the limits, or ValueError."""
        if isinstance(value, int | float):
            # The collector's pydantic errors say the same (canhgac_common.config._PROBLEMS).
            for bound, ok, message in (
                (self.ge, operator.ge, N_("must be at least {ge}, not {input!r}")),
                (self.gt, operator.gt, N_("must be greater than {gt}, not {input!r}")),
                (self.le, operator.le, N_("must be at most {le}, not {input!r}")),
                (self.lt, operator.lt, N_("must be less than {lt}, not {input!r}")),
            ):
                if bound is not None and not ok(value, bound):
                    b = f"{bound:g}"
                    raise ValueError(_(message).format(ge=b, gt=b, le=b, lt=b, input=value))
        if (
            self.pattern is not None
            and isinstance(value, str)
            and not re.match(self.pattern, value)
        ):
            raise ValueError(
                _("must match {pattern}, not {input!r}").format(pattern=self.pattern, input=value)
            )
        if self.min_length is not None and len(value) < self.min_length:
            raise ValueError(
                _("must have at least {min_length} item(s)").format(min_length=self.min_length)
            )
        return value if self.check is None else self.check(value)


def option(
    *,
    default: Any = dataclasses.MISSING,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    pattern: str | None = None,
    min_length: int | None = None,
    check: Callable[[Any], Any] | None = None,
) -> Any:
    """A field with limits (checked only when the value is not None); `check` may also turn the
    value into its canonical form. No default: the key is required."""
    limits = _Limits(ge, gt, le, lt, pattern, min_length, check)
    return dataclasses.field(
        default=default, default_factory=default_factory, metadata={"limits": limits}
    )


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(option,))
class Section:
    """Base of a config section: each subclass is a frozen, keyword-only dataclass."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(frozen=True, kw_only=True)(cls)

    @classmethod
    def model_validate(cls, data: Any) -> Self:
        """The section from parsed YAML; ConfigError lists every bad key (`key.path: why`)."""
        errors: list[str] = []
        section = _section(cls, {} if data is None else data, (), errors)
        if errors:
            raise ConfigError("\n".join(errors))
        assert isinstance(section, cls)
        return section


def parse_section(section: type[S], data: Any, source: str) -> S:
    """`section.model_validate(data)` with every error line prefixed by `source` (the file)."""
    try:
        return section.model_validate(data)
    except ConfigError as e:
        raise ConfigError("\n".join(f"{source}: {line}" for line in str(e).splitlines())) from None


class _Bad:
    """Marks a value that failed; its error is already recorded."""


_BAD = _Bad()
_FIELDS: dict[type, dict[str, tuple[Any, dataclasses.Field[Any]]]] = {}
_SCALARS: dict[type, tuple[type | tuple[type, ...], str]] = {
    bool: (bool, N_("must be a boolean, not {input!r}")),
    int: (int, N_("must be an integer, not {input!r}")),
    float: ((int, float), N_("must be a number, not {input!r}")),
    str: (str, N_("must be a string, not {input!r}")),
    Path: (str, N_("must be a path, not {input!r}")),
}


def _fields(cls: type) -> dict[str, tuple[Any, dataclasses.Field[Any]]]:
    fields = _FIELDS.get(cls)
    if fields is None:
        hints = get_type_hints(cls, include_extras=True)
        fields = _FIELDS[cls] = {f.name: (hints[f.name], f) for f in dataclasses.fields(cls)}
    return fields


def _fail(errors: list[str], loc: Loc, message: str) -> _Bad:
    errors.append(f"{key_path(loc)}: {message}")
    return _BAD


def _section(cls: type, data: Any, loc: Loc, errors: list[str]) -> Any:
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        return _fail(errors, loc, _("must be a mapping of keys, not {input!r}").format(input=data))
    fields = _fields(cls)
    failed = len(errors)
    for key in data:
        if key not in fields:
            _fail(errors, (*loc, key), _("unknown key"))
    values = {}
    for name, (hint, field) in fields.items():
        if name not in data:
            if (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            ):
                _fail(errors, (*loc, name), _("required key missing"))
            continue
        value = _value(hint, data[name], (*loc, name), errors)
        if value is None or isinstance(value, _Bad):
            values[name] = value
            continue
        try:
            values[name] = field.metadata["limits"].apply(value) if field.metadata else value
        except ValueError as e:
            _fail(errors, (*loc, name), str(e))
    return _BAD if len(errors) > failed else cls(**values)


def _value(hint: Any, value: Any, loc: Loc, errors: list[str]) -> Any:
    """`value` as the type `hint` describes, or _BAD with the reason recorded."""
    origin = get_origin(hint)
    if origin is Union or origin is types.UnionType:
        args = [a for a in get_args(hint) if a is not type(None)]
        if value is None and len(args) < len(get_args(hint)):
            return None
        (hint,) = args
        origin = get_origin(hint)
    try:
        if origin is Annotated:
            return hint.__metadata__[0](value)
        if origin is list or origin is dict:
            return _container(hint, value, loc, errors)
        if isinstance(hint, type) and issubclass(hint, Section):
            return _section(hint, value, loc, errors)
        return _scalar(hint, value)
    except ValueError as e:
        return _fail(errors, loc, str(e))


def _container(hint: Any, value: Any, loc: Loc, errors: list[str]) -> Any:
    if get_origin(hint) is list:
        if not isinstance(value, list):
            raise ValueError(_("must be a list, not {input!r}").format(input=value))
        (item,) = get_args(hint)
        items = [_value(item, v, (*loc, i), errors) for i, v in enumerate(value)]
        return _BAD if any(isinstance(v, _Bad) for v in items) else items
    if not isinstance(value, dict):
        raise ValueError(_("must be a mapping, not {input!r}").format(input=value))
    key_hint, item_hint = get_args(hint)
    out = {
        _value(key_hint, k, (*loc, str(k)), errors): _value(item_hint, v, (*loc, str(k)), errors)
        for k, v in value.items()
    }
    return _BAD if any(isinstance(v, _Bad) for v in (*out, *out.values())) else out


def _scalar(hint: Any, value: Any) -> Any:
    if get_origin(hint) is Literal:
        if isinstance(value, str) and value in get_args(hint):
            return value
        allowed = ", ".join(repr(a) for a in get_args(hint))
        raise ValueError(
            _("must be one of {expected}, not {input!r}").format(expected=allowed, input=value)
        )
    accepted, message = _SCALARS[hint]
    # YAML's true/false are ints to Python: never a number here.
    if not isinstance(value, accepted) or (hint is not bool and isinstance(value, bool)):
        raise ValueError(_(message).format(input=value))
    return hint(value)


# ---- JSON Schema ---------------------------------------------------------------------------
# The same sections, described for whoever cannot import the agent: the collector checks
# central settings against it before pushing them (collector/agent_settings.py), and editors
# check an agent.yaml with it. Durations and sizes are numbers or text ("15s", "64MiB"); the
# keyword `x-canhgac-unit` names which, and `x-canhgac-limits` holds their limits, applied to
# the value in seconds or bytes (plain JSON Schema cannot parse "15s"). A field with its own
# `check` function is described by its type only: the agent applies the rest.

UNIT_KEYWORD = "x-canhgac-unit"
LIMITS_KEYWORD = "x-canhgac-limits"


def json_schema(section: type[Section]) -> dict[str, Any]:
    """`section` as a JSON Schema (draft 2020-12) object: unknown keys refused, as here."""
    properties: dict[str, Any] = {}
    required = []
    for name, (hint, field) in _fields(section).items():
        properties[name] = _type_schema(hint, field.metadata.get("limits"))
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            required.append(name)
    out: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        out["required"] = required
    return out


def _type_schema(hint: Any, limits: _Limits | None) -> dict[str, Any]:  # noqa: PLR0911
    origin = get_origin(hint)
    if origin is Union or origin is types.UnionType:
        (inner,) = [a for a in get_args(hint) if a is not type(None)]
        return {"anyOf": [_type_schema(inner, limits), {"type": "null"}]}
    bounds = _bounds(limits)
    if origin is Annotated:
        unit = "duration" if hint.__metadata__[0] is duration_value else "size"
        number = {"type": "number" if unit == "duration" else "integer", **bounds}
        out: dict[str, Any] = {"anyOf": [number, {"type": "string"}], UNIT_KEYWORD: unit}
        if bounds:
            out[LIMITS_KEYWORD] = bounds
        return out
    if origin is list:
        (item,) = get_args(hint)
        out = {"type": "array", "items": _type_schema(item, None)}
        if limits is not None and limits.min_length is not None:
            out["minItems"] = limits.min_length
        return out
    if origin is dict:
        _, item = get_args(hint)
        return {"type": "object", "additionalProperties": _type_schema(item, None)}
    if isinstance(hint, type) and issubclass(hint, Section):
        return json_schema(hint)
    if origin is Literal:
        return {"enum": list(get_args(hint))}
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", Path: "string"}
    out = {"type": kind[hint], **bounds}
    if limits is not None and limits.pattern is not None:
        out["pattern"] = limits.pattern
    return out


def _bounds(limits: _Limits | None) -> dict[str, float]:
    if limits is None:
        return {}
    words = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}
    return {
        word: getattr(limits, name)
        for name, word in words.items()
        if getattr(limits, name) is not None
    }
