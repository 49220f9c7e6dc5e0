"""Pure conversion of agent records to the wire contract (and to JSON for `once --print`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from google.protobuf import json_format

from agent.model import Report
from canhgac_proto.v1 import collector_pb2 as pb

__all__ = ["encode_report", "plain"]


def plain(value: Any) -> Any:
    """Dataclasses to dicts, tuples to lists, None-valued fields left out (absent on the wire)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) is not None
        }
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def to_pb(report: Report) -> pb.Report:
    # ParseDict rejects any name the proto lacks, so model and wire cannot drift apart silently.
    return json_format.ParseDict(plain(report), pb.Report())


def encode_report(report: Report) -> bytes:
    return to_pb(report).SerializeToString()
