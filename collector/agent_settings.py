"""Central agent settings: layers, their merge into one agent's effective settings, the hash
that names them, and the check against the schema the agent publishes (docs/fleet.md).

A layer is a partial agent config (the keys of agent.yaml) for a scope: `defaults`, a role, a
district, a commune, a unit, one agent. An agent's effective settings merge the layers that
apply to it in that order (mappings key by key, a later layer's list or value replacing an
earlier one's), then the public services declared in the collector config
(`probes.link.services`). The agent merges them over its own file and checks the result with
the validator of that file; the collector checks each layer before it is stored, against
`canhgac_common/agent.schema.json`, so a push an agent would refuse rarely leaves the collector.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jsonschema

from canhgac_common.i18n import gettext_ as _
from canhgac_common.units import parse_duration, parse_size
from collector.errors import CollectorError
from collector.model import AgentRecord

__all__ = [
    "KINDS",
    "Layer",
    "SettingsError",
    "SettingsResolver",
    "changes",
    "check_layer",
    "effective",
    "settings_hash",
    "with_value",
    "without_key",
]

# Merge order, least specific first.
KINDS = ("defaults", "role", "district", "commune", "unit", "agent")
# Set from the collector config's `services:`, never by a layer.
SERVICES_PATH = ("probes", "link", "services")


class SettingsError(CollectorError):
    """A layer, key or value that cannot be stored; one line per problem, naming the layer and
    the key path."""


@dataclass(frozen=True)
class Layer:
    """`defaults`, `role:NAME`, `district:NAME`, `commune:[DISTRICT/]NAME`,
    `unit:[DISTRICT/COMMUNE/]NAME` or `agent:ID`; a commune or unit named without its district
    (and commune) applies wherever the name is used."""

    kind: str
    name: str = ""

    @classmethod
    def parse(cls, text: str) -> Layer:
        kind, _sep, name = text.strip().partition(":")
        if kind not in KINDS:
            raise SettingsError(
                _("{layer}: a layer is one of {kinds}").format(
                    layer=text,
                    kinds=", ".join(f"{k}:NAME" if k != "defaults" else k for k in KINDS),
                )
            )
        if (kind == "defaults") != (name == ""):
            raise SettingsError(
                _("{layer}: `defaults` takes no name, every other layer needs one").format(
                    layer=text
                )
            )
        return cls(kind, name.strip())

    def __str__(self) -> str:
        return self.kind if self.kind == "defaults" else f"{self.kind}:{self.name}"

    def applies_to(self, agent: AgentRecord) -> bool:
        p = agent.placement
        if self.kind == "defaults":
            return True
        if self.kind == "agent":
            return self.name == agent.agent_id
        if self.kind == "role":
            return self.name == p.role
        path = {
            "district": (p.district,),
            "commune": (p.district, p.commune),
            "unit": (p.district, p.commune, p.unit),
        }[self.kind]
        parts = tuple(s.strip() for s in self.name.split("/"))
        return len(parts) <= len(path) and path[len(path) - len(parts) :] == parts

    def order(self) -> int:
        return KINDS.index(self.kind)


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`: mappings merged key by key, anything else replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def effective(
    layers: Mapping[Layer, Mapping[str, Any]],
    agent: AgentRecord,
    services: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], dict[tuple[str, ...], Layer]]:
    """The agent's effective settings, and which layer set each leaf key."""
    doc: dict[str, Any] = {}
    origin: dict[tuple[str, ...], Layer] = {}
    for layer in sorted((x for x in layers if x.applies_to(agent)), key=Layer.order):
        doc = merge(doc, layers[layer])
        for path in _leaves(layers[layer]):
            origin = {p: o for p, o in origin.items() if p[: len(path)] != path}
            origin[path] = layer
    if services:
        doc = merge(doc, {"probes": {"link": {"services": services}}})
    return doc, origin


def settings_hash(doc: Mapping[str, Any]) -> str:
    """What names a set of settings on the wire: 16 hex digits of the SHA-256 of its canonical
    JSON; "" for none (the agent runs its file only)."""
    if not doc:
        return ""
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _leaves(doc: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, value in doc.items():
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, (*prefix, key))
        else:
            yield (*prefix, key)


def _value_at(doc: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key path, old, new) for each leaf that differs; None on the side that lacks it."""
    missing = object()
    out = []
    paths = sorted(set(_leaves(old)) | set(_leaves(new)))
    for path in paths:
        values = []
        for doc in (old, new):
            try:
                values.append(_value_at(doc, path))
            except (KeyError, TypeError):
                values.append(missing)
        if values[0] != values[1]:
            old_value, new_value = (None if v is missing else v for v in values)
            out.append((".".join(path), old_value, new_value))
    return out


def with_value(doc: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    """`doc` with the dotted `key` set to `value` (intermediate mappings made as needed)."""
    path = _path(key)
    out = dict(doc)
    node = out
    for part in path[:-1]:
        child = node.get(part)
        node[part] = dict(child) if isinstance(child, Mapping) else {}
        node = node[part]
    node[path[-1]] = value
    return out


def without_key(doc: Mapping[str, Any], key: str) -> dict[str, Any]:
    """`doc` without the dotted `key` (and without mappings it leaves empty)."""
    path = _path(key)

    def drop(node: Mapping[str, Any], rest: tuple[str, ...]) -> dict[str, Any]:
        out = dict(node)
        if len(rest) == 1:
            if rest[0] not in out:
                raise SettingsError(_("{key}: not set in this layer").format(key=key))
            del out[rest[0]]
            return out
        child = out.get(rest[0])
        if not isinstance(child, Mapping):
            raise SettingsError(_("{key}: not set in this layer").format(key=key))
        out[rest[0]] = drop(child, rest[1:])
        if not out[rest[0]]:
            del out[rest[0]]
        return out

    return drop(doc, path)


def _path(key: str) -> tuple[str, ...]:
    path = tuple(key.split("."))
    if not all(path):
        raise SettingsError(_("{key}: not a key path (keys joined by dots)").format(key=key))
    return path


# ---- the check against the agent's schema ---------------------------------------------------

_UNIT = "x-canhgac-unit"
_LIMITS = "x-canhgac-limits"
_LOCAL_ONLY = "x-canhgac-local-only"
_WORDS = {
    "minimum": "at least",
    "exclusiveMinimum": "greater than",
    "maximum": "at most",
    "exclusiveMaximum": "less than",
}


def _unit(validator: Any, unit: str, value: Any, schema: Mapping[str, Any]) -> Iterator[Any]:
    """Durations and sizes written as text: parsed as the agent parses them, then limited."""
    if not isinstance(value, str):
        return
    try:
        number = parse_duration(value) if unit == "duration" else parse_size(value)
    except ValueError as e:
        yield jsonschema.ValidationError(str(e))
        return
    for word, bound in schema.get(_LIMITS, {}).items():
        text = _WORDS[word]
        ok = {
            "minimum": number >= bound,
            "exclusiveMinimum": number > bound,
            "maximum": number <= bound,
            "exclusiveMaximum": number < bound,
        }[word]
        if not ok:
            yield jsonschema.ValidationError(f"must be {text} {bound:g}, not {value!r}")


def _load_schema() -> dict[str, Any]:
    text = resources.files("canhgac_common").joinpath("agent.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


_SCHEMA = _load_schema()
LOCAL_ONLY: tuple[str, ...] = tuple(_SCHEMA[_LOCAL_ONLY])
_Validator = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator, {_UNIT: _unit}
)
_VALIDATOR = _Validator(_SCHEMA)


def check_layer(layer: Layer, doc: Any) -> None:
    """Raise SettingsError listing every problem of `doc` as `layer: key.path: why`."""
    problems = []
    if not isinstance(doc, Mapping):
        raise SettingsError(
            _("{layer}: a layer is a mapping of agent config keys").format(layer=layer)
        )
    for key in LOCAL_ONLY:
        if key in doc:
            problems.append(
                _("{layer}: {key}: set only in the agent's own file, never centrally").format(
                    layer=layer, key=key
                )
            )
    try:
        _value_at(doc, SERVICES_PATH)
    except (KeyError, TypeError):
        pass
    else:
        problems.append(
            _("{layer}: {key}: set from the collector config's `services:`").format(
                layer=layer, key=".".join(SERVICES_PATH)
            )
        )
    rest = {k: v for k, v in doc.items() if k not in LOCAL_ONLY}
    for error in sorted(_VALIDATOR.iter_errors(rest), key=lambda e: list(map(str, e.path))):
        where = ".".join(str(p) for p in error.absolute_path) or "(top)"
        problems.append(f"{layer}: {where}: {_reason(error)}")
    if problems:
        raise SettingsError("\n".join(problems))


def _reason(error: jsonschema.ValidationError) -> str:
    """The agent's words where JSON Schema's would confuse (`anyOf` says little)."""
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if error.validator == "additionalProperties":
        given = error.instance if isinstance(error.instance, Mapping) else {}
        extra = sorted(set(given) - set(schema.get("properties", {})))
        return _("unknown key {keys}").format(keys=", ".join(extra))
    if error.validator == "anyOf" and _UNIT in schema:
        unit = schema[_UNIT]
        return _("must be a {unit} (a number or text such as {example}), not {value!r}").format(
            unit=unit, example="15s" if unit == "duration" else "64MiB", value=error.instance
        )
    return str(error.message)


# ---- what the Submit ack and GetSettings answer -------------------------------------------


@dataclass(frozen=True)
class Effective:
    hash: str
    document: dict[str, Any]


class SettingsResolver:
    """Each agent's effective settings from the stored layers, cached: the Submit ack asks for
    every call. The layers are read again when a change was stored (checked at most every
    `refresh` seconds: `settings set` runs in another process)."""

    def __init__(
        self,
        layers: Callable[[], tuple[int, dict[str, dict[str, Any]]]],
        latest_change: Callable[[], int],
        services: Callable[[AgentRecord], list[dict[str, Any]]],
        *,
        refresh: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load, self._latest, self._services = layers, latest_change, services
        self._refresh, self._clock = refresh, clock
        self._lock = threading.Lock()
        self._change = -1
        self._checked = -float("inf")
        self._layers: dict[Layer, dict[str, Any]] = {}
        self._cache: dict[str, Effective] = {}

    def for_agent(self, agent: AgentRecord) -> Effective:
        with self._lock:
            now = self._clock()
            if now - self._checked >= self._refresh:
                self._checked = now
                if self._latest() != self._change:
                    self._change, stored = self._load()
                    self._layers = {Layer.parse(k): v for k, v in stored.items()}
                    self._cache.clear()
            found = self._cache.get(agent.agent_id)
            if found is None:
                doc, _origin = effective(self._layers, agent, self._services(agent))
                found = self._cache[agent.agent_id] = Effective(settings_hash(doc), doc)
            return found


def services_for(declared: Iterable[Any]) -> Callable[[AgentRecord], list[dict[str, Any]]]:
    """The public services of the collector config (`services:`) an agent of each role checks,
    in the agent's `probes.link.services` form."""
    entries = list(declared)

    def pick(agent: AgentRecord) -> list[dict[str, Any]]:
        return [s.as_check() for s in entries if not s.roles or agent.placement.role in s.roles]

    return pick
