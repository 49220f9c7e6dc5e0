"""Plain records the collector works on once a wire message has been decoded and checked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AgentRecord", "Placement", "Report", "TokenRecord"]


@dataclass(frozen=True)
class Placement:
    province: str = ""
    district: str = ""
    commune: str = ""
    unit: str = ""
    role: str = ""


@dataclass(frozen=True)
class Report:
    seq: int
    boot_id: str
    collected_at: float  # Unix seconds, agent clock
    agent_version: str
    # Probe name -> that probe's section as plain JSON-able data; absent = did not run.
    # From the wire each section is decoded on first read (most are never read).
    sections: Mapping[str, Any] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    spool: dict[str, int] = field(default_factory=dict)
    # The report as the agent encoded it (protobuf): what the history keeps. Empty for a
    # report built in-process, which the history keeps as JSON instead.
    wire: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    placement: Placement
    created_at: float
    expires_at: float
    revoked_at: float | None
    max_uses: int | None
    uses: int
    note: str
    replaces: str | None = None  # the agent an enrollment with this token re-enrolls


@dataclass(frozen=True)
class AgentRecord:
    agent_id: str
    machine_id: str
    hostname: str
    os_name: str
    os_version: str
    agent_version: str
    placement: Placement
    enrolled_at: float
    revoked_at: float | None
    last_seen_at: float | None
    last_report_at: float | None
    last_seq: int
    # The active agent whose machine id this one enrolled with, without proof (possible clone).
    clone_of: str | None = None
