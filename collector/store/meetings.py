"""Meeting persistence (mixed into Store): one-off meetings and what the rooms last reported."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert, select, update

from canhgac_common.i18n import gettext_ as _
from collector.errors import NotFoundError
from collector.model import Meeting, MeetingSummary, RoomVerdict
from collector.store.base import Part
from collector.store.schema import meeting_results, meetings

__all__ = ["MeetingTables"]


def _meeting(row: Any) -> Meeting:
    return Meeting(
        id=str(row.meeting_id),
        title=row.title,
        starts_at=row.starts_at,
        duration=row.duration,
        rooms=tuple(json.loads(row.rooms)),
        source="store",
    )


class MeetingTables(Part):
    """One-off meetings from the CLI and each room's recorded verdicts."""

    def add_meeting(
        self, title: str, starts_at: float, duration: float, rooms: list[str], now: float
    ) -> Meeting:
        with self._write() as conn:
            meeting_id = conn.execute(
                insert(meetings)
                .values(
                    title=title,
                    starts_at=starts_at,
                    duration=duration,
                    rooms=json.dumps(rooms, ensure_ascii=False),
                    created_at=now,
                )
                .returning(meetings.c.meeting_id)
            ).scalar_one()
        return Meeting(str(meeting_id), title, starts_at, duration, tuple(rooms), "store")

    def stored_meetings(self, start: float, end: float) -> list[Meeting]:
        """Meetings not cancelled that start in [start, end)."""
        with self._read() as conn:
            rows = conn.execute(
                select(meetings)
                .where(meetings.c.cancelled_at.is_(None))
                .where(meetings.c.starts_at >= start, meetings.c.starts_at < end)
                .order_by(meetings.c.starts_at, meetings.c.meeting_id)
            ).all()
        return [_meeting(r) for r in rows]

    def get_meeting(self, meeting_id: int) -> Meeting:
        with self._read() as conn:
            row = conn.execute(
                select(meetings).where(meetings.c.meeting_id == meeting_id)
            ).one_or_none()
        if row is None or row.cancelled_at is not None:
            raise NotFoundError(_("no meeting {id}").format(id=meeting_id))
        return _meeting(row)

    def cancel_meeting(self, meeting_id: int, now: float) -> None:
        self._change_one(
            update(meetings)
            .where(meetings.c.meeting_id == meeting_id, meetings.c.cancelled_at.is_(None))
            .values(cancelled_at=now),
            _("no meeting {id} to cancel").format(id=meeting_id),
        )

    def record_meeting(self, summary: MeetingSummary, now: float) -> None:
        """Keep each room's verdict for a meeting that has started (once per meeting)."""
        m = summary.meeting
        rows = [
            {
                "meeting_id": m.id,
                "agent_id": r.agent_id,
                "title": m.title,
                "starts_at": m.starts_at,
                "room": r.name,
                "verdict": r.verdict,
                "state": r.state,
                "reasons": json.dumps(list(r.reasons), ensure_ascii=False),
                "checked_at": r.checked_at,
                "recorded_at": now,
            }
            for r in summary.rooms
        ]
        if rows:
            with self._write() as conn:
                conn.execute(insert(meeting_results), rows)

    def recorded_meetings(self, meeting_ids: list[str]) -> set[str]:
        with self._read() as conn:
            rows = conn.execute(
                select(meeting_results.c.meeting_id)
                .where(meeting_results.c.meeting_id.in_(meeting_ids))
                .distinct()
            ).scalars()
            return set(rows)

    def results_between(
        self, start: float, end: float
    ) -> list[tuple[str, str, float, RoomVerdict]]:
        """(meeting id, title, start, one room's verdict) of the meetings that started in
        [start, end), by start then room: each room's go/no-go as recorded at the start."""
        m = meeting_results
        with self._read() as conn:
            rows = conn.execute(
                select(m)
                .where(m.c.starts_at >= start, m.c.starts_at < end)
                .order_by(m.c.starts_at, m.c.meeting_id, m.c.room)
            ).all()
        return [
            (
                r.meeting_id,
                r.title,
                r.starts_at,
                RoomVerdict(
                    r.agent_id,
                    r.room,
                    r.verdict,
                    r.state,
                    tuple(json.loads(r.reasons)),
                    r.checked_at,
                ),
            )
            for r in rows
        ]

    def meeting_results(self, meeting_id: str) -> list[RoomVerdict]:
        with self._read() as conn:
            rows = conn.execute(
                select(meeting_results)
                .where(meeting_results.c.meeting_id == meeting_id)
                .order_by(meeting_results.c.room)
            ).all()
        return [_verdict(r) for r in rows]


def _verdict(r: Any) -> RoomVerdict:
    return RoomVerdict(
        r.agent_id, r.room, r.verdict, r.state, tuple(json.loads(r.reasons)), r.checked_at
    )
