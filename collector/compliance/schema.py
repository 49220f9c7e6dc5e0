"""The variables a rule condition sees, derived from the proto descriptors of Report sections."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from collector.decode import SECTION_TYPES, SECTIONS

__all__ = [
    "AGENT_FIELDS",
    "AGENT_VARIABLES",
    "FLEET_VARIABLES",
    "GROUP_FIELDS",
    "RULE_KEY",
    "SECTIONS",
    "Schema",
    "sample",
]

# A schema is a nested dict: field name -> sub-schema; a leaf is a sample value (its type);
# a list schema is a one-element list; MAP_KEY maps any key (probe names) to one sub-schema.
Schema = dict[str, Any]
MAP_KEY = "*"
# RULE_KEY maps an agent rule id of the pack to one sub-schema (`passing["antivirus.present"]`).
RULE_KEY = "<agent rule>"

# Report fields that carry a probe's section (numbers 10..19) are each a variable of their own.

# Derived by the collector, not reported by the probe: identity, place and silence.
AGENT_FIELDS: Schema = {
    "id": "",
    "hostname": "",
    "province": "",
    "district": "",
    "commune": "",
    "unit": "",
    "role": "",
    "agent_version": "",
    "report_interval": 0.0,  # seconds the agent was told to report at
    "silent_seconds": 0.0,  # since the collector last heard from it (collector clock)
    "silent_intervals": 0.0,  # silent_seconds / report_interval
}

# One unit (commune or district) of a fleet rule.
GROUP_FIELDS: Schema = {
    "province": "",
    "district": "",
    "commune": "",  # "" for a district group
    "expected_machines": 0,  # from sites.yaml, 0 when unknown
    "expected_meeting_rooms": 0,
    "machines": 0,  # expected_machines, or enrolled agents when the plan does not say
    "agents": 0,  # enrolled, not revoked
    "reporting": 0,  # agents heard from within the silence limit
    "silent": 0,
    "meeting_rooms_reporting": 0,
}

_SCALAR_SAMPLES: dict[int, Any] = {
    FieldDescriptor.CPPTYPE_STRING: "",
    FieldDescriptor.CPPTYPE_BOOL: False,
    FieldDescriptor.CPPTYPE_DOUBLE: 0.0,
    FieldDescriptor.CPPTYPE_FLOAT: 0.0,
    FieldDescriptor.CPPTYPE_INT32: 0,
    FieldDescriptor.CPPTYPE_INT64: 0,
    FieldDescriptor.CPPTYPE_UINT32: 0,
    FieldDescriptor.CPPTYPE_UINT64: 0,
    FieldDescriptor.CPPTYPE_ENUM: 0,
}


def _message_schema(d: Any) -> Schema:
    out: Schema = {}
    for f in d.fields:
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            value: Any = _message_schema(f.message_type)
        elif f.type == FieldDescriptor.TYPE_BYTES:
            value = b""
        else:
            value = _SCALAR_SAMPLES[f.cpp_type]
        out[f.name] = [value] if f.is_repeated else value
    return out


def _agent_variables() -> Schema:
    sections = {s: _message_schema(t) for s, t in SECTION_TYPES.items()}
    return {
        "agent": AGENT_FIELDS,
        "probes": {MAP_KEY: {"ok": True, "error": ""}},
        "spool": {"dropped_total": 0, "depth": 0},
        "now": 0.0,  # Unix seconds of the observation (the report's collected_at)
        **sections,
    }


AGENT_VARIABLES: Schema = _agent_variables()
"""Top-level variables of an agent rule."""

FLEET_VARIABLES: Schema = {
    "group": GROUP_FIELDS,
    # Every enrolled agent of the group with its latest snapshot (agent-rule variables, no `now`).
    "members": [{k: v for k, v in AGENT_VARIABLES.items() if k != "now"}],
    # Per agent rule: active members whose latest verdict passes / who have a verdict at all.
    "passing": {RULE_KEY: 0},
    "judged": {RULE_KEY: 0},
    "now": 0.0,
}
"""Top-level variables of a fleet rule."""


def sample(schema: Any, fill: bool, agent_rules: Collection[str] = ()) -> Any:
    """A value shaped like `schema`: zeros and empty strings, or (fill) ones and "x";
    a RULE_KEY map has one entry per id of `agent_rules`."""
    if isinstance(schema, dict):
        if MAP_KEY in schema:
            return {"sample": sample(schema[MAP_KEY], fill, agent_rules)}
        if RULE_KEY in schema:
            return {r: sample(schema[RULE_KEY], fill, agent_rules) for r in agent_rules}
        return {k: sample(v, fill, agent_rules) for k, v in schema.items()}
    if isinstance(schema, list):
        return [sample(schema[0], fill, agent_rules)]
    return _FILLED[type(schema)] if fill else schema


_FILLED: dict[type, Any] = {bool: True, int: 1, float: 1.0, bytes: b"x", str: "x"}
