"""Meeting schedule: recurring and one-off meetings, fresh-check requests, go/no-go per room."""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from canhgac_common.config import Duration, StrictModel, TimeZone
from canhgac_common.i18n import gettext_ as _
from collector.errors import NotFoundError
from collector.model import (
    MEETING_ROLE,
    MEETING_SECTION,
    AgentRecord,
    Meeting,
    MeetingSummary,
    RoomState,
    RoomVerdict,
)

if TYPE_CHECKING:
    from collector.store import Store

__all__ = [
    "WEEKDAYS",
    "MeetingBook",
    "MeetingsConfig",
    "OneOffMeeting",
    "RecurringMeeting",
    "check_points",
    "fresh_check_due",
    "nth_weekday",
    "occurrences",
    "parse_local_time",
    "room_in_meeting",
    "room_names",
    "summarize",
]

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class RecurringMeeting(StrictModel):
    """E.g. 08:00 on the first Monday of each month: at "08:00", weekday monday, nth 1."""

    title: str
    at: str = Field(pattern=_HHMM.pattern)
    weekday: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    # 1..5: the nth such weekday of the month (months without a 5th are skipped); -1: the last.
    nth: int = Field(ge=-1, le=5)
    duration: Duration = Field(default=7200.0, gt=0)
    # "all" or names of communes, units, districts or hosts whose meeting rooms take part.
    rooms: list[str] = ["all"]

    @field_validator("nth")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("must be 1..5 or -1 (last)")
        return value


class OneOffMeeting(StrictModel):
    title: str
    at: str  # "YYYY-MM-DD HH:MM" in the schedule's time zone
    duration: Duration = Field(default=7200.0, gt=0)
    rooms: list[str] = ["all"]


class MeetingsConfig(StrictModel):
    timezone: TimeZone = "Asia/Ho_Chi_Minh"
    # Before each meeting the rooms are asked for a fresh check at these leads.
    checks_before: list[Duration] = Field(default=[3600.0, 900.0], min_length=1)
    recurring: list[RecurringMeeting] = []
    one_off: list[OneOffMeeting] = []

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def parse_local_time(text: str, zone: ZoneInfo) -> float:
    """Unix seconds of "YYYY-MM-DD HH:MM" in `zone`; ValueError when malformed."""
    naive = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M")
    return naive.replace(tzinfo=zone).timestamp()


def nth_weekday(year: int, month: int, weekday: int, nth: int) -> date | None:
    """The nth `weekday` (0 = Monday) of the month, -1 = the last; None when there is none."""
    days = [
        d
        for d in range(1, calendar.monthrange(year, month)[1] + 1)
        if date(year, month, d).weekday() == weekday
    ]
    index = nth - 1 if nth > 0 else len(days) + nth
    return date(year, month, days[index]) if 0 <= index < len(days) else None


def occurrences(cfg: MeetingsConfig, start: float, end: float) -> list[Meeting]:
    """Every meeting (config recurring and one-off) starting in [start, end), by start time."""
    zone = cfg.zone
    out: list[Meeting] = []
    first = datetime.fromtimestamp(start, zone).date().replace(day=1)
    last = datetime.fromtimestamp(end, zone).date()
    for index, r in enumerate(cfg.recurring, 1):
        hour, minute = (int(x) for x in r.at.split(":"))
        year, month = first.year, first.month
        while (year, month) <= (last.year, last.month):
            day = nth_weekday(year, month, WEEKDAYS.index(r.weekday), r.nth)
            if day is not None:
                at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).timestamp()
                if start <= at < end:
                    mid = f"r{index}-{day:%Y%m%d}"
                    out.append(Meeting(mid, r.title, at, r.duration, tuple(r.rooms), "recurring"))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    for index, o in enumerate(cfg.one_off, 1):
        at = parse_local_time(o.at, zone)
        if start <= at < end:
            out.append(Meeting(f"c{index}", o.title, at, o.duration, tuple(o.rooms), "config"))
    return sorted(out, key=lambda m: (m.starts_at, m.id))


def room_in_meeting(agent: AgentRecord, rooms: Iterable[str]) -> bool:
    """Whether this agent is a meeting room the meeting's `rooms` list names."""
    if agent.placement.role != MEETING_ROLE or agent.revoked_at is not None:
        return False
    p = agent.placement
    names = {n.casefold() for n in (p.district, p.commune, p.unit, agent.hostname) if n}
    wanted = {r.casefold() for r in rooms}
    return "all" in wanted or bool(names & wanted)


def room_names(agents: Iterable[AgentRecord]) -> set[str]:
    """The names by which a meeting's `rooms` can pick these agents' meeting rooms."""
    return {
        n
        for a in agents
        if a.placement.role == MEETING_ROLE and a.revoked_at is None
        for n in (a.placement.district, a.placement.commune, a.placement.unit, a.hostname)
        if n
    }


def check_points(meeting: Meeting, checks_before: Sequence[float]) -> list[float]:
    """When the rooms are asked for a fresh check, earliest first."""
    return sorted(meeting.starts_at - lead for lead in checks_before)


def fresh_check_due(
    meeting: Meeting, checks_before: Sequence[float], now: float, checked_at: float | None
) -> bool:
    """True from each check point until the meeting starts while the room's last check is
    older than the latest check point passed."""
    if now >= meeting.starts_at:
        return False
    passed = [p for p in check_points(meeting, checks_before) if p <= now]
    return bool(passed) and (checked_at is None or checked_at < passed[-1])


def summarize(
    meeting: Meeting, rooms: Sequence[RoomState], checks_before: Sequence[float], now: float
) -> MeetingSummary:
    """Go/no-go per room. After a check point only a check at or after it counts: a room that
    did not answer is silent, hence not ready. GREEN and AMBER rooms are "go"."""
    passed = [p for p in check_points(meeting, checks_before) if p <= now]
    since = passed[-1] if passed else float("-inf")
    verdicts: list[RoomVerdict] = []
    for room in sorted(rooms, key=lambda r: r.name):
        fresh = room.checked_at is not None and room.checked_at >= since and room.state
        if not fresh:
            verdicts.append(
                RoomVerdict(
                    room.agent_id,
                    room.name,
                    "no-go",
                    "silent",
                    ("no_fresh_check: the room did not answer the check request",),
                    room.checked_at,
                )
            )
            continue
        reasons = tuple(
            f"{r.get('code', '')}: {r.get('detail', '')}"
            for r in room.reasons
            if r.get("severity") in ("red", "amber")
        )
        verdict = "no-go" if room.state == "red" else "go"
        verdicts.append(
            RoomVerdict(room.agent_id, room.name, verdict, room.state, reasons, room.checked_at)
        )
    ready = sum(1 for v in verdicts if v.verdict == "go")
    overall = "go" if verdicts and ready == len(verdicts) else "no-go"
    return MeetingSummary(meeting, overall, ready, len(verdicts), tuple(verdicts))


_RECURRING_ID = re.compile(r"^r(\d+)-(\d{8})$")
_CONFIG_ID = re.compile(r"^c(\d+)$")


class MeetingBook:
    """The schedule (config + store) and the rooms' state, as the server and the CLI need it."""

    def __init__(self, store: Store, cfg: MeetingsConfig) -> None:
        self._store = store
        self.cfg = cfg

    def between(self, start: float, end: float) -> list[Meeting]:
        found = occurrences(self.cfg, start, end) + self._store.meetings.stored_meetings(start, end)
        return sorted(found, key=lambda m: (m.starts_at, m.id))

    def get(self, meeting_id: str) -> Meeting:
        """A meeting by the id `meeting list` shows; NotFoundError when there is none."""
        if meeting_id.isdigit():
            return self._store.meetings.get_meeting(int(meeting_id))
        recurring, config = _RECURRING_ID.match(meeting_id), _CONFIG_ID.match(meeting_id)
        if recurring:
            day = datetime.strptime(recurring.group(2), "%Y%m%d").replace(tzinfo=self.cfg.zone)
            start = day.timestamp()
            for m in occurrences(self.cfg, start, start + 86400):
                if m.id == meeting_id:
                    return m
        elif config and 1 <= int(config.group(1)) <= len(self.cfg.one_off):
            o = self.cfg.one_off[int(config.group(1)) - 1]
            at = parse_local_time(o.at, self.cfg.zone)
            return Meeting(meeting_id, o.title, at, o.duration, tuple(o.rooms), "config")
        raise NotFoundError(_("no meeting {id}").format(id=meeting_id))

    def room_states(self, meeting: Meeting) -> list[RoomState]:
        out: list[RoomState] = []
        for agent, collected_at, section in self._store.with_section(MEETING_ROLE, MEETING_SECTION):
            if not room_in_meeting(agent, meeting.rooms):
                continue
            out.append(_room_state(agent, collected_at, section))
        return out

    def fresh_checks(self, agent: AgentRecord, now: float) -> list[str]:
        """[MEETING_SECTION] when this agent's room should run a fresh check now, else []."""
        if agent.placement.role != MEETING_ROLE:
            return []
        leads = self.cfg.checks_before
        upcoming = [
            m
            for m in self.between(now - 1, now + max(leads) + 1)
            if room_in_meeting(agent, m.rooms)
        ]
        if not upcoming:
            return []
        state = next(s for s in self.room_states(upcoming[0]) if s.agent_id == agent.agent_id)
        due = any(fresh_check_due(m, leads, now, state.checked_at) for m in upcoming)
        return [MEETING_SECTION] if due else []

    def status(self, meeting_id: str, now: float) -> MeetingSummary:
        """The recorded verdicts once the meeting has started and been recorded, else live."""
        meeting = self.get(meeting_id)
        recorded = self._store.meetings.meeting_results(meeting.id)
        if recorded:
            ready = sum(1 for r in recorded if r.verdict == "go")
            verdict = "go" if ready == len(recorded) else "no-go"
            return MeetingSummary(meeting, verdict, ready, len(recorded), tuple(recorded))
        return summarize(meeting, self.room_states(meeting), self.cfg.checks_before, now)

    def record_started(self, now: float, window: float = 86400.0) -> list[MeetingSummary]:
        """Record the per-room verdicts of meetings that started in the last `window` seconds
        and are not recorded yet (the collector calls this on a timer)."""
        started = [m for m in self.between(now - window, now) if m.starts_at <= now]
        if not started:
            return []
        done = self._store.meetings.recorded_meetings([m.id for m in started])
        out = []
        for m in started:
            if m.id in done:
                continue
            # Judged as at the start: only checks since the last check point count.
            summary = summarize(m, self.room_states(m), self.cfg.checks_before, m.starts_at)
            self._store.meetings.record_meeting(summary, now)
            out.append(summary)
        return out


def _room_state(
    agent: AgentRecord, collected_at: float | None, section: dict[str, Any] | None
) -> RoomState:
    p = agent.placement
    place = " / ".join(n for n in (p.district, p.commune, p.unit) if n)
    name = f"{place} ({agent.hostname})" if place else agent.hostname
    if section is None or collected_at is None:
        return RoomState(agent.agent_id, name, "", (), None)
    clock = section.get("clock") or {}
    # Agent clock to collector clock, when the agent measured its offset.
    checked_at = collected_at + (clock.get("offset_seconds", 0.0) if clock.get("known") else 0.0)
    readiness = section.get("readiness") or {}
    return RoomState(
        agent.agent_id,
        name,
        readiness.get("state", ""),
        tuple(readiness.get("reasons", [])),
        checked_at,
    )
