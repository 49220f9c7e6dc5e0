"""Pure conversion of wire reports into collector records, with per-report validation."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from canhgac_proto.v1 import collector_pb2 as pb
from collector.model import MAX_SEQ, Report

__all__ = [
    "SECTIONS",
    "SECTION_TYPES",
    "InvalidReport",
    "decode_report",
    "message_to_plain",
    "report_from_wire",
    "stored_report",
]

# Report fields that carry a probe's section (numbers 10..19 in the proto).
SECTIONS = tuple(f.name for f in pb.Report.DESCRIPTOR.fields if 10 <= f.number < 20)
# Their message descriptors: what the rule checker derives snapshot fields from.
SECTION_TYPES: dict[str, Any] = {
    s: pb.Report.DESCRIPTOR.fields_by_name[s].message_type for s in SECTIONS
}

_EARLIEST = 946684800.0  # 2000-01-01: anything older is a broken clock, not history
_FUTURE_SLACK = 86400.0  # commune PCs drift; a day ahead is tolerated and kept as sent


class InvalidReport(ValueError):
    """One report that the collector will never store; its seq is acked as rejected."""


# How message_to_plain copies a set field: as is, a list of it, as a message, a list of them.
_SCALAR, _SCALARS, _MESSAGE, _MESSAGES = range(4)


@functools.cache
def _layout(
    desc: Descriptor,
) -> tuple[dict[str, Any], tuple[str, ...], dict[FieldDescriptor, tuple[str, int]]]:
    """Per message type: scalar defaults, the repeated fields (each needs a fresh list), and
    each field's name and how to copy it, keyed by its descriptor (a dict lookup is cheaper
    than asking the descriptor for its name or type each time).

    Messages and proto3 `optional` fields have no default here: left unset they are absent.
    """
    defaults = {
        f.name: f.default_value
        for f in desc.fields
        if not f.is_repeated and f.type != FieldDescriptor.TYPE_MESSAGE and not f.has_presence
    }
    kinds = {
        f: (
            f.name,
            (_MESSAGE if f.type == FieldDescriptor.TYPE_MESSAGE else _SCALAR) + f.is_repeated,
        )
        for f in desc.fields
    }
    return defaults, tuple(f.name for f in desc.fields if f.is_repeated), kinds


def message_to_plain(msg: Message) -> dict[str, Any]:
    """Every field (defaults included) as plain Python values; 64-bit ints stay ints
    (unlike json_format, which turns them into strings). An unset message or proto3
    `optional` field is absent: it means "unknown", not zero."""
    defaults, repeated, kinds = _layout(msg.DESCRIPTOR)
    out = dict(defaults)
    for name in repeated:
        out[name] = []
    # ListFields() (implemented in C) yields only what is set: far cheaper than getattr on all.
    for f, value in msg.ListFields():
        name, kind = kinds[f]
        if kind == _SCALAR:
            out[name] = value
        elif kind == _MESSAGE:
            out[name] = message_to_plain(value)
        elif kind == _MESSAGES:
            out[name] = [message_to_plain(v) for v in value]
        else:
            out[name] = list(value)
    return out


class _Sections(Mapping[str, Any]):
    """The sections of one wire report, each turned into plain data on first read: the
    history keeps the wire bytes and the snapshot takes only the newest report's sections,
    so on the ack path most are never decoded."""

    __slots__ = ("_msg", "_names", "_plain")

    def __init__(self, msg: pb.Report) -> None:
        self._msg = msg
        self._names = [name for name in SECTIONS if msg.HasField(name)]
        self._plain: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        plain = self._plain.get(name)
        if plain is None:
            if name not in self._names:
                raise KeyError(name)
            plain = self._plain[name] = message_to_plain(getattr(self._msg, name))
        return plain

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def _record(r: pb.Report, collected_at: float, wire: bytes) -> Report:
    # Each read of a message field builds a wrapper: spool is read once, errors only when any.
    spool = r.spool
    return Report(
        seq=r.seq,
        boot_id=r.boot_id,
        collected_at=collected_at,
        agent_version=r.agent_version,
        sections=_Sections(r),
        errors=[{"probe": e.probe, "message": e.message} for e in r.errors] if r.errors else [],
        spool={
            "dropped_total": spool.dropped_total,
            "depth": spool.depth,
            "unspooled_total": spool.unspooled_total,
            "resets_total": spool.resets_total,
            "reset_lost_total": spool.reset_lost_total,
        },
        wire=wire,
        spool_id=r.spool_id,
        settings={
            "hash": r.settings.hash,
            "refused_hash": r.settings.refused_hash,
            "refused_reason": r.settings.refused_reason,
        }
        if r.HasField("settings")
        else {},
        update=_update(r) if r.HasField("update") else None,
    )


def _update(r: pb.Report) -> dict[str, Any]:
    """The agent's version and its update state: the snapshot's `update` (collector.releases)."""
    u = r.update
    return {
        "agent_version": r.agent_version,
        "target_version": u.target_version,
        "state": u.state,
        "detail": u.detail,
        "downloaded_bytes": u.downloaded_bytes,
        "channel": u.channel,
        "refused_total": u.refused_total,
    }


def decode_report(r: pb.Report, now: float) -> Report:
    """Check one report and turn it into a record; raises InvalidReport with the reason."""
    if not 1 <= r.seq <= MAX_SEQ:
        raise InvalidReport(f"seq {r.seq} is outside 1..{MAX_SEQ}")
    collected_at = r.collected_at_ms / 1000.0
    if not _EARLIEST <= collected_at <= now + _FUTURE_SLACK:
        raise InvalidReport(f"collected_at_ms {r.collected_at_ms} is not a plausible time")
    if len(r.boot_id) > 64:
        raise InvalidReport("boot_id longer than 64 characters")
    s = r.settings
    if len(s.hash) > 64 or len(s.refused_hash) > 64 or len(s.refused_reason) > 2000:
        raise InvalidReport("settings: hash longer than 64 or reason longer than 2000 characters")
    return _record(r, collected_at, r.SerializeToString())


def stored_report(wire: bytes | None, payload: str) -> Report:
    """A report as the store's history keeps it: the protobuf received (schema 5 on), else
    the JSON older rows and in-process reports were kept as."""
    return report_from_wire(wire) if wire is not None else Report(**json.loads(payload))


def report_from_wire(wire: bytes) -> Report:
    """A report the history kept as received (checked when it arrived)."""
    r = pb.Report.FromString(wire)
    return _record(r, r.collected_at_ms / 1000.0, wire)
