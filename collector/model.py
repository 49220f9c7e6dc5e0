"""Plain records the collector works on once a wire message has been decoded and checked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_SEQ", "SEQ_BITS", "AgentRecord", "Placement", "Report", "TokenRecord", "stored_seq"]

# A report's seq counts within one spool of its agent; the store keeps it as one number per
# agent, `stored_seq`: the spool's ordinal (0 for the agent's first spool, 1 for the spool
# after a reinstall, …) above SEQ_BITS bits of seq. 2^40 reports is 35,000 years at one a
# second; a seq beyond it is rejected when decoded, never stored.
SEQ_BITS = 40
MAX_SEQ = (1 << SEQ_BITS) - 1


def stored_seq(ordinal: int, seq: int) -> int:
    """The store's seq of report `seq` of the agent's spool number `ordinal`: ordered by spool,
    then by seq, so a reinstalled machine's reports come after its earlier ones."""
    return ordinal << SEQ_BITS | seq


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
    # The agent's spool that numbered `seq` (0: an agent older than spool ids).
    spool_id: int = 0


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
