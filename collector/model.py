"""The collector's value types: what a decoded report, an agent, an alert and a meeting are.

Everything above the store works on these; the store returns them and imports nothing above
this module (tests/unit/test_layout.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

__all__ = [
    "MAX_SEQ",
    "MEETING_ROLE",
    "MEETING_SECTION",
    "ROLES",
    "ROLLUP_AVAILABILITY",
    "ROLLUP_INDICATOR",
    "ROLLUP_RULE",
    "ROLLUP_SERVICE",
    "SEQ_BITS",
    "SETTINGS_KEY",
    "SOFTWARE_SECTION",
    "SPOOL_KEY",
    "UPDATE_KEY",
    "AgentRecord",
    "Alert",
    "Event",
    "InstalledProgram",
    "Labels",
    "Meeting",
    "MeetingSummary",
    "Placement",
    "Release",
    "ReleasePlace",
    "Report",
    "Role",
    "Rollup",
    "RollupKey",
    "RoomState",
    "RoomVerdict",
    "SoftwareInventory",
    "Stat",
    "TokenRecord",
    "probe_of_status_key",
    "status_key",
    "stored_seq",
]

Role = Literal["workstation", "server", "meeting-room"]
"""What a machine is for (its token says so at enrollment); rules can be scoped by it."""
ROLES: tuple[Role, ...] = get_args(Role)
MEETING_ROLE: Final = "meeting-room"
# The report section a meeting room's checks come in (the proto's Report.meeting_room).
MEETING_SECTION: Final = "meeting_room"

# The report section whose full list the store keeps apart (table software_inventories): a
# report carries the list only when it changed, so the snapshot alone would lose it.
SOFTWARE_SECTION: Final = "software"

# Keys of an agent's latest snapshot besides its probes' sections (which are keyed by probe).
SPOOL_KEY: Final = "spool"
"""The agent's spool counters (`SpoolStats`) as of its latest report."""
SETTINGS_KEY: Final = "settings"
"""The central settings the agent runs and the last push it refused, as of its latest report."""
UPDATE_KEY: Final = "update"
"""The agent's version and where it stands with the release offered (`Report.update`)."""
_STATUS = "status:"


def status_key(probe: str) -> str:
    """The snapshot key of a probe's last outcome: `{"ok": bool, "error": str}`."""
    return _STATUS + probe


def probe_of_status_key(key: str) -> str | None:
    """The probe a snapshot key is the status of, or None when it is not a status key."""
    return key[len(_STATUS) :] if key.startswith(_STATUS) else None


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
    # The central settings the agent ran (`SettingsState`: hash, refused_hash,
    # refused_reason); empty from an agent older than central settings.
    settings: dict[str, str] = field(default_factory=dict)
    # Report.update with the agent's version (None: the report carried no update state).
    update: dict[str, Any] | None = None


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
    # When this agent's own reports came from two machines (two live spools, or a seq again
    # with other content): a cloned image still holding the one credential.
    clone_suspected_at: float | None = None
    # When the machine was taken out of service (`agent retire`; revoked_at is set too), why.
    retired_at: float | None = None
    retired_reason: str = ""


# ---- alerts: the lifecycle's records (collector.alerts.lifecycle evolves them) -----------

Event = Literal["pending", "firing", "resolved", "cleared"]
"""cleared: a pending alert whose condition passed before `for:` elapsed (never fired)."""


@dataclass(frozen=True)
class Labels:
    """Who and where: what silences and maintenance windows match on."""

    rule_id: str
    subject: str
    severity: str
    district: str = ""
    commune: str = ""
    unit: str = ""
    host: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "rule": self.rule_id,
            "subject": self.subject,
            "severity": self.severity,
            "district": self.district,
            "commune": self.commune,
            "unit": self.unit,
            "host": self.host,
        }


@dataclass(frozen=True)
class Alert:
    """The open alert of one (rule, subject); there is never more than one."""

    labels: Labels
    state: Literal["pending", "firing"]
    started_at: float
    last_observed_at: float
    fired_at: float | None = None
    passing_since: float | None = None
    notified: bool = False  # a firing notification went out for this alert
    acked_by: str | None = None
    acked_at: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.labels.rule_id, self.labels.subject

    @property
    def failing(self) -> bool:
        """Firing and still failing (not in its hold time)."""
        return self.state == "firing" and self.passing_since is None


# ---- meetings: what the schedule and the rooms' checks come to (collector.meetings) -----


@dataclass(frozen=True)
class Meeting:
    id: str  # "c<n>" one-off from config, "<n>" stored one-off, "r<n>-YYYYMMDD" recurring
    title: str
    starts_at: float  # Unix seconds
    duration: float
    rooms: tuple[str, ...]
    source: str  # "recurring", "config", "store"


@dataclass(frozen=True)
class RoomState:
    """A meeting room as the store last saw it."""

    agent_id: str
    name: str
    state: str  # "green", "amber", "red"; "" when the room never reported a check
    reasons: tuple[dict[str, Any], ...]
    checked_at: float | None  # collector clock (agent time corrected by its clock offset)


@dataclass(frozen=True)
class RoomVerdict:
    agent_id: str
    name: str
    verdict: str  # "go", "no-go"
    state: str  # "green", "amber", "red", "silent"
    reasons: tuple[str, ...]
    checked_at: float | None


@dataclass(frozen=True)
class MeetingSummary:
    meeting: Meeting
    verdict: str  # "go" when every room is go, else "no-go"
    ready: int
    expected: int
    rooms: tuple[RoomVerdict, ...]


# ---- rollups: what the history keeps of raw reports past their retention (collector.rollup) -

# The section of a rollup's availability metrics, and of its rule verdicts (metric = rule id).
ROLLUP_AVAILABILITY: Final = "availability"
"""Metrics: `received` (1 per report collected in the bucket), `reachable` (1 when the report
reached the collector within the silence limit of its collection, else 0: a replayed backlog
counts as an outage), `expected` (once per closed hour: the reports the agent's interval asks
for in the part of the hour it was enrolled)."""
ROLLUP_RULE: Final = "rule"
"""Metric = an agent rule's id; 1 per verdict that passed, 0 per verdict that failed."""
ROLLUP_SERVICE: Final = "service"
"""Metric = the name of an HTTP check of the link probe (a public service: VNPT-iGate, the
provincial portal); 1 per report in which the service answered, else 0."""
ROLLUP_INDICATOR: Final = "indicator"
"""Metric = a machine indicator's id (collector.indicators); per report its defining rule
judged: 1 when the machine met the indicator in that report, else 0."""


@dataclass(frozen=True)
class Stat:
    """Observations of one value: how many, their sum, the least and the greatest. Merging two
    is exact and order-free, so a bucket may be filled by any number of passes."""

    count: int
    total: float
    low: float
    high: float

    @staticmethod
    def of(value: float) -> Stat:
        return Stat(1, value, value, value)

    def merge(self, other: Stat) -> Stat:
        return Stat(
            self.count + other.count,
            self.total + other.total,
            min(self.low, other.low),
            max(self.high, other.high),
        )

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0


@dataclass(frozen=True, order=True)
class RollupKey:
    """One bucket of one agent's metric: `span` seconds (3600 an hour, 86400 a day) from
    `start` (Unix seconds; a day starts at local midnight of the retention time zone)."""

    agent_id: str
    span: int
    start: float
    section: str
    metric: str


@dataclass(frozen=True)
class Rollup:
    """One agent's metric over a period, summed from its buckets (Store.rollups.totals)."""

    agent_id: str
    section: str
    metric: str
    stat: Stat


@dataclass(frozen=True)
class InstalledProgram:
    name: str
    version: str
    publisher: str
    installed_at: float  # Unix seconds; 0 unknown
    origin: str  # "hklm64", "hklm32", "hkcu", "dpkg", "rpm"


@dataclass(frozen=True)
class SoftwareInventory:
    """The last full software list an agent sent (hash-only reports never replace it)."""

    agent_id: str
    collected_at: float  # of the report that carried the list
    hash: str
    source: str  # "windows_registry", "dpkg", "rpm"
    programs: tuple[InstalledProgram, ...]


# ---- agent releases (collector.releases; schema 12) ---------------------------------------


@dataclass(frozen=True)
class ReleasePlace:
    """A rollout target: a district, a commune of it, a unit of that (empty = any)."""

    district: str = ""
    commune: str = ""
    unit: str = ""

    def holds(self, p: Placement) -> bool:
        return all(
            not want or want == have
            for want, have in (
                (self.district, p.district),
                (self.commune, p.commune),
                (self.unit, p.unit),
            )
        )

    def as_dict(self) -> dict[str, str]:
        return {"district": self.district, "commune": self.commune, "unit": self.unit}


@dataclass(frozen=True)
class Release:
    version: str
    channel: str
    manifest: bytes
    signature: bytes
    added_at: float
    rolled_out_at: float | None
    share: int  # percent
    places: tuple[ReleasePlace, ...]
    report_within: float
    withdrawn_at: float | None

    @property
    def live(self) -> bool:
        return self.rolled_out_at is not None and self.withdrawn_at is None
