"""The go/no-go summary of one meeting for one recipient: its rooms' verdicts and reasons."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from collector.model import Meeting, RoomVerdict

__all__ = ["build_meeting_summary"]


def _local(ts: float | None, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, zone).strftime("%H:%M %d/%m/%Y") if ts else "-"


def build_meeting_summary(
    meeting: Meeting, rooms: Sequence[RoomVerdict], zone: ZoneInfo
) -> dict[str, Any]:
    """Template context; times in the meeting schedule's zone (Asia/Ho_Chi_Minh by default)."""
    ready = sum(1 for v in rooms if v.verdict == "go")
    return {
        "title": meeting.title,
        "starts_at": _local(meeting.starts_at, zone),
        "timezone": zone.key,
        "verdict": "go" if rooms and ready == len(rooms) else "no-go",
        "ready": ready,
        "expected": len(rooms),
        "rooms": [
            {
                "name": v.name,
                "verdict": v.verdict,
                "state": v.state,
                "reasons": list(v.reasons),
                "checked_at": _local(v.checked_at, zone),
            }
            for v in rooms
        ],
    }
