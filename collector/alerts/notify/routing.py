"""Who receives what: alerts by severity and place, escalations, digest schedule, meeting
summaries."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from collector.alerts.notify.config import NotifyConfig, Recipient
from collector.model import Meeting, Placement, RoomVerdict

__all__ = [
    "due_digests",
    "due_meeting_summaries",
    "escalation_targets",
    "meeting_rooms_for",
    "recipients_for",
]

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A digest whose time passed while the collector was down still goes, this late at most.
DIGEST_GRACE = 12 * 3600.0


def _in_place(r: Recipient, labels: Mapping[str, str]) -> bool:
    return (not r.district or labels.get("district") == r.district) and (
        not r.commune or labels.get("commune") == r.commune
    )


def recipients_for(payload: Mapping[str, Any], recipients: Sequence[Recipient]) -> list[Recipient]:
    """IT staff and commune chairmen get alerts of their severities in their place at once;
    district leadership gets digests and escalations instead of raw alerts."""
    return [
        r
        for r in recipients
        if r.role != "district"
        and payload["severity"] in r.severities
        and _in_place(r, payload.get("labels", {}))
    ]


def escalation_targets(cfg: NotifyConfig, labels: Mapping[str, str]) -> list[Recipient]:
    """The next level: the alert's commune chairman or its district's leadership."""
    return [r for r in cfg.recipients if r.role == cfg.escalation.to and _in_place(r, labels)]


def _at(day: datetime.date, hhmm: str, zone: datetime.tzinfo) -> float:
    h, m = (int(x) for x in hhmm.split(":"))
    return datetime.datetime.combine(day, datetime.time(h, m), zone).timestamp()


def due_digests(cfg: NotifyConfig, now: float) -> list[tuple[str, str, float]]:
    """(period, key, since) of each digest due at `now` (its times in `cfg.timezone`); the
    key names the occurrence so that it is sent once however often this is asked."""
    zone = cfg.zone
    today = datetime.datetime.fromtimestamp(now, zone).date()
    out: list[tuple[str, str, float]] = []
    for back in (0, 1):
        day = today - datetime.timedelta(days=back)
        if cfg.digest.daily_at is not None:
            t = _at(day, cfg.digest.daily_at, zone)
            if t <= now < t + DIGEST_GRACE:
                out.append(("daily", f"daily:{day.isoformat()}", t - 86400.0))
        if cfg.digest.weekly_on is not None and _WEEKDAYS[day.weekday()] == cfg.digest.weekly_on:
            t = _at(day, cfg.digest.weekly_at, zone)
            if t <= now < t + DIGEST_GRACE:
                year, week, _ = day.isocalendar()
                out.append(("weekly", f"weekly:{year}-W{week:02d}", t - 7 * 86400.0))
    return out


def due_meeting_summaries(
    cfg: NotifyConfig, meetings: Sequence[Meeting], now: float
) -> list[Meeting]:
    """The meetings whose summary time (`meeting_summary_before` their start) has come and
    which have not started yet: a go/no-go after the start helps nobody."""
    before = cfg.meeting_summary_before
    if before is None:
        return []
    return [m for m in meetings if m.starts_at - before <= now < m.starts_at]


def meeting_rooms_for(
    r: Recipient,
    cfg: NotifyConfig,
    rooms: Sequence[RoomVerdict],
    places: Mapping[str, Placement],
) -> list[RoomVerdict]:
    """The rooms of a meeting one recipient hears about: those in its place (all for an IT
    recipient without one, its commune's room for a chairman); none when its role is not in
    `meeting_summary_roles`."""
    if r.role not in cfg.meeting_summary_roles:
        return []
    out = []
    for v in rooms:
        p = places.get(v.agent_id)
        if p is not None and _in_place(r, {"district": p.district, "commune": p.commune}):
            out.append(v)
    return out
