"""Meeting schedule: nth-weekday rule, month and year boundaries, fresh checks, go/no-go, store."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import inspect, text

import collector.config
from collector.alerts.notify.reasons import READINESS_REASONS, reason_sentence
from collector.errors import NotFoundError
from collector.meetings import (
    MeetingBook,
    MeetingsConfig,
    RecurringMeeting,
    fresh_check_due,
    nth_weekday,
    occurrences,
    parse_local_time,
    room_in_meeting,
    summarize,
)
from collector.model import MEETING_ROLE, AgentRecord, Meeting, Placement, RoomState
from collector.store import Store
from collector.store.schema import SCHEMA_VERSION
from collector.store.store import MachineFacts
from tests.downgrade import TO_V6

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
CONFIGS = Path(__file__).parent.parent.parent / "configs"
MONDAY = RecurringMeeting(
    title="Giao ban tháng", at="08:00", weekday="monday", nth=1, duration=10800
)


def local(text: str) -> float:
    return parse_local_time(text, HCM)


def test_nth_weekday_first_last_and_missing_fifth() -> None:
    assert nth_weekday(2026, 12, 0, 1) == date(2026, 12, 7)  # 1 Dec 2026 is a Tuesday
    assert nth_weekday(2027, 2, 0, 1) == date(2027, 2, 1)  # the month starts on a Monday
    assert nth_weekday(2026, 11, 0, 1) == date(2026, 11, 2)  # starts on a Sunday
    assert nth_weekday(2026, 12, 4, -1) == date(2026, 12, 25)  # last Friday
    assert nth_weekday(2027, 2, 0, 4) == date(2027, 2, 22)
    assert nth_weekday(2027, 2, 0, 5) is None  # February 2027 has four Mondays
    assert nth_weekday(2026, 11, 0, 5) == date(2026, 11, 30)


def test_recurring_occurrences_across_month_and_year_boundaries() -> None:
    cfg = MeetingsConfig(recurring=[MONDAY])
    found = occurrences(cfg, local("2026-11-20 00:00"), local("2027-02-10 00:00"))
    assert [m.id for m in found] == ["r1-20261207", "r1-20270104", "r1-20270201"]
    # 08:00 in Asia/Ho_Chi_Minh (UTC+7, no DST) is 01:00 UTC.
    assert datetime.fromtimestamp(found[0].starts_at, ZoneInfo("UTC")).hour == 1
    assert datetime.fromtimestamp(found[0].starts_at, HCM).strftime("%H:%M") == "08:00"
    # [start, end): a meeting exactly at the end is the next window's.
    at = found[0].starts_at
    assert [m.id for m in occurrences(cfg, at, at + 1)] == ["r1-20261207"]
    assert occurrences(cfg, at - 3600, at) == []


def test_one_off_from_config_and_other_zone() -> None:
    cfg = MeetingsConfig(
        timezone="Asia/Bangkok",
        one_off=[{"title": "Họp", "at": "2026-12-15 14:00"}],  # type: ignore[list-item]
    )
    (m,) = occurrences(cfg, 0, 2e9)
    assert (m.id, m.source, m.rooms) == ("c1", "config", ("all",))
    assert m.starts_at == parse_local_time("2026-12-15 14:00", ZoneInfo("Asia/Bangkok"))
    with pytest.raises(ValueError, match="unknown time zone"):
        MeetingsConfig(timezone="Asia/Hà_Nội")


MEETING = Meeting("1", "Giao ban", 100_000.0, 7200.0, ("all",), "store")
LEADS = [3600.0, 900.0]


@pytest.mark.parametrize(
    ("now", "checked_at", "due"),
    [
        (100_000 - 3601, None, False),  # before T-60: nothing asked yet
        (100_000 - 3600, None, True),  # at T-60
        (100_000 - 3600, 100_000 - 3600, False),  # answered at T-60
        (100_000 - 2000, 100_000 - 3700, True),  # last check older than T-60
        (100_000 - 900, 100_000 - 3000, True),  # T-15: the T-60 answer no longer counts
        (100_000 - 600, 100_000 - 800, False),  # answered after T-15
        (100_000, None, False),  # the meeting has started: no more requests
    ],
)
def test_fresh_check_due(now: float, checked_at: float | None, due: bool) -> None:
    assert fresh_check_due(MEETING, LEADS, now, checked_at) is due


def room(name: str, state: str, checked_at: float | None, *codes: str) -> RoomState:
    reasons = tuple({"code": c, "severity": "red", "detail": "x"} for c in codes)
    return RoomState(f"id-{name}", name, state, reasons, checked_at)


def test_go_no_go_per_room_and_silent_rooms() -> None:
    rooms = [
        room("An Lạc", "green", 100_000 - 600),
        room("Thanh Nhật", "amber", 100_000 - 700),
        room("Đức Quang", "red", 100_000 - 600, "device_missing"),
        room("Kim Loan", "green", 100_000 - 3000),  # answered T-60, silent since T-15
        room("Quang Long", "", None),  # never reported a check
    ]
    s = summarize(MEETING, rooms, LEADS, now=100_000 - 300)
    assert s.verdict == "no-go" and (s.ready, s.expected) == (2, 5)
    got = {v.name: (v.verdict, v.state) for v in s.rooms}
    assert got == {
        "An Lạc": ("go", "green"),
        "Thanh Nhật": ("go", "amber"),
        "Đức Quang": ("no-go", "red"),
        "Kim Loan": ("no-go", "silent"),
        "Quang Long": ("no-go", "silent"),
    }
    red = next(v for v in s.rooms if v.name == "Đức Quang")
    assert red.reasons == ("device_missing: x",)
    # Before any check point the last known state stands.
    early = summarize(MEETING, rooms[:2], LEADS, now=0)
    assert early.verdict == "go" and early.ready == 2
    assert summarize(MEETING, [], LEADS, now=0).verdict == "no-go"  # no room at all


def agent(
    role: str = "meeting-room", commune: str = "An Lạc", host: str = "phong-hop"
) -> AgentRecord:
    return AgentRecord(
        "a1",
        "m",
        host,
        "Windows",
        "11",
        "0.1.0",
        Placement("Cao Bằng", "Hạ Lang", commune, "", role),
        0.0,
        None,
        None,
        None,
        0,
    )


def test_room_selection() -> None:
    assert room_in_meeting(agent(), ["all"])
    assert room_in_meeting(agent(), ["an lạc"])
    assert room_in_meeting(agent(), ["Hạ Lang"])  # every room of the district
    assert not room_in_meeting(agent(), ["Thanh Nhật"])
    assert not room_in_meeting(agent(role="workstation"), ["all"])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'c.db'}")
    yield s
    s.close()


def enroll_room(store: Store, commune: str, host: str) -> str:
    _, token = store.create_token(
        Placement("Cao Bằng", "Hạ Lang", commune, "", "meeting-room"), 60, 0
    )
    return store.enroll(token, MachineFacts(host, host, "Windows", "11", "0.1.0"), 1).agent.agent_id


def test_book_add_get_cancel_and_fresh_checks(store: Store) -> None:
    book = MeetingBook(store, MeetingsConfig(recurring=[MONDAY]))
    at = local("2026-12-10 14:00")
    added = store.meetings.add_meeting("Họp đột xuất", at, 3600, ["Thanh Nhật"], 0)
    assert book.get(added.id) == added
    assert [m.id for m in book.between(local("2026-12-01 00:00"), local("2026-12-31 00:00"))] == [
        "r1-20261207",
        added.id,
    ]
    assert book.get("r1-20261207").title == "Giao ban tháng"
    for missing in ("r1-20261208", "c1", "999"):
        with pytest.raises(NotFoundError):
            book.get(missing)
    thanh_nhat = enroll_room(store, "Thanh Nhật", "phong-hop-tn")
    enroll_room(store, "An Lạc", "phong-hop-al")
    rooms = {a.placement.commune: a for a, _, _ in store.with_section(MEETING_ROLE, "meeting_room")}
    assert book.fresh_checks(rooms["Thanh Nhật"], at - 1800) == ["meeting_room"]
    assert book.fresh_checks(rooms["An Lạc"], at - 1800) == []  # not in this meeting
    assert book.fresh_checks(rooms["Thanh Nhật"], at - 7200) == []  # too early
    summary = book.status(added.id, at - 1800)
    assert [(r.agent_id, r.state) for r in summary.rooms] == [(thanh_nhat, "silent")]
    store.meetings.cancel_meeting(int(added.id), 1)
    with pytest.raises(NotFoundError):
        store.meetings.cancel_meeting(int(added.id), 2)
    assert book.fresh_checks(rooms["Thanh Nhật"], at - 1800) == []


def test_schema_3_store_gains_the_meetings_tables(tmp_path: Path) -> None:
    db = tmp_path / "v3.db"
    Store(f"sqlite:///{db}").close()
    with sqlite3.connect(db) as conn:  # make it what a schema 3 collector left behind
        for statement in TO_V6:
            conn.execute(statement)
        conn.execute("DROP TABLE meetings")
        conn.execute("DROP TABLE meeting_results")
        conn.execute("ALTER TABLE reports DROP COLUMN wire")
        conn.execute("ALTER TABLE agents DROP COLUMN snapshot_version")
        conn.execute("UPDATE schema_version SET version = 3")
    store = Store(f"sqlite:///{db}")
    try:
        assert "meetings" in inspect(store._engine).get_table_names()
        store.meetings.add_meeting("Họp", 1.0, 60.0, ["all"], 0.0)
        with store._engine.connect() as conn:
            assert (
                conn.execute(text("SELECT version FROM schema_version")).scalar() == SCHEMA_VERSION
            )
    finally:
        store.close()


def test_example_collector_config_meetings() -> None:
    cfg = collector.config.load_config(CONFIGS / "collector.example.yaml").meetings
    assert cfg.timezone == "Asia/Ho_Chi_Minh" and cfg.checks_before == [3600.0, 900.0]
    assert cfg.recurring[0].weekday == "monday" and cfg.recurring[0].nth == 1
    assert occurrences(cfg, local("2026-12-01 00:00"), local("2027-01-01 00:00"))[0].id == (
        "r1-20261207"
    )


def test_verdicts_are_recorded_once_when_the_meeting_starts(store: Store) -> None:
    book = MeetingBook(store, MeetingsConfig())
    at = local("2026-12-10 14:00")
    m = store.meetings.add_meeting("Họp", at, 3600, ["all"], 0)
    enroll_room(store, "Thanh Nhật", "phong-hop-tn")
    assert book.record_started(at - 1) == []  # not started yet
    (summary,) = book.record_started(at + 30)
    assert [(r.verdict, r.state) for r in summary.rooms] == [("no-go", "silent")]
    assert book.record_started(at + 60) == []  # once per meeting
    # After the start the recorded verdicts stand, whatever the room reports later.
    recorded = book.status(m.id, at + 7200)
    assert (recorded.verdict, recorded.ready, recorded.expected) == ("no-go", 0, 1)
    assert recorded.rooms[0].reasons == (
        "no_fresh_check: the room did not answer the check request",
    )


def test_every_readiness_reason_has_a_sentence_in_both_languages() -> None:
    """The codes of docs/probes.md's table, the codes the agent's probe emits, and the
    collector's no_fresh_check all read as sentences in the meeting summaries."""
    root = Path(__file__).parent.parent.parent
    doc = (root / "docs" / "probes.md").read_text(encoding="utf-8")
    table = doc[doc.index("| code | severity | English | Tiếng Việt |") :].split("\n\n")[0]
    documented = {
        code for row in table.splitlines()[2:] for code in re.findall(r"`(\w+)`", row.split("|")[1])
    }
    probe = (root / "agent" / "probes" / "meeting_room.py").read_text(encoding="utf-8")

    def emitted(code: str) -> bool:  # literally, or as f"{code}_low" of "throughput"/"upload"
        prefix, _, suffix = code.rpartition("_")
        return f'"{code}"' in probe or (f'"{prefix}"' in probe and f'f"{{code}}_{suffix}"' in probe)

    assert [code for code in sorted(documented) if not emitted(code)] == []
    assert set(READINESS_REASONS) == documented | {"no_fresh_check"}
    assert reason_sentence("device_missing: camera 'Logi*': expected 1, working 0", "vi") == (
        "Thiếu thiết bị (camera, micrô, loa, màn hình) hoặc thiết bị có nhưng bị lỗi"
        " (camera 'Logi*': expected 1, working 0)."
    )
    assert reason_sentence("loss_high: collector: 3.0% (RED from 2.0%)", "en") == (
        "Packet loss is high (collector: 3.0% (RED from 2.0%))."
    )
    assert reason_sentence("something_new: x", "vi") == "something_new: x"
