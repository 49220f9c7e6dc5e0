"""The alert, mail and meeting tables' contract, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import pytest

from collector.errors import NotFoundError
from collector.model import Alert, Labels, Meeting, MeetingSummary, RoomVerdict
from collector.store import Store
from collector.store.alerts import AlertWrite, HistoryEntry, MaintenanceWindow

LAB = Labels("av-enabled", "a1", "critical", "Hạ Lang", "Thanh Nhật", "", "ubnd-01")
OTHER = Labels("av-enabled", "a2", "critical", "Hạ Lang", "Đức Quang", "", "ubnd-02")


@pytest.fixture
def store(store_url: str) -> Store:
    return Store(store_url)


def _firing(labels: Labels, at: float) -> Alert:
    return Alert(labels, "firing", started_at=at, last_observed_at=at, fired_at=at, notified=True)


def test_alert_write_upsert_history_results_and_counts(store: Store) -> None:
    w = AlertWrite(now=100.0)
    w.upserts = {a.key: a for a in [_firing(LAB, 90.0), Alert(OTHER, "pending", 95.0, 95.0)]}
    w.history.append(HistoryEntry(LAB, "firing", 90.0, 90.0, 100.0))
    w.notify.append(("firing", LAB, {"title": "Diệt virus tắt"}))
    w.results += [(LAB, False, 90.0), (OTHER, True, 95.0)]
    store.alerts.apply_alerts(w)

    assert store.alerts.open_alerts() == [_firing(LAB, 90.0), Alert(OTHER, "pending", 95.0, 95.0)]
    assert store.alerts.rule_verdicts() == {("av-enabled", "a1"): False, ("av-enabled", "a2"): True}
    assert store.alerts.firing_counts() == [("av-enabled", "critical", "Hạ Lang", "Thanh Nhật", 1)]
    assert store.alerts.pass_counts() == [
        ("av-enabled", "Hạ Lang", "Thanh Nhật", 0, 1),
        ("av-enabled", "Hạ Lang", "Đức Quang", 1, 1),
    ]
    [n] = store.alerts.unsent_notifications()
    assert (n.kind, n.subject, n.payload) == ("firing", "a1", {"title": "Diệt virus tắt"})
    store.alerts.mark_notification_sent(n.id, now=101.0)
    assert store.alerts.unsent_notifications() == []
    assert store.alerts.notifications()[0].sent_at == 101.0

    # Resolve a1: the upsert of a later write replaces, the delete removes.
    store.alerts.ack_alert("av-enabled", "a1", "anh Tuấn", "đang xử lý", now=102.0)
    assert store.alerts.open_alerts()[0].acked_by == "anh Tuấn"
    again = AlertWrite(now=110.0)
    again.upserts[LAB.rule_id, LAB.subject] = _firing(LAB, 90.0)  # never overwrites the ack
    store.alerts.apply_alerts(again)
    assert store.alerts.open_alerts()[0].acked_by == "anh Tuấn"
    done = AlertWrite(now=120.0, deletes=[("av-enabled", "a1")])
    done.history.append(HistoryEntry(LAB, "resolved", 118.0, 90.0, 120.0))
    store.alerts.apply_alerts(done)
    assert [a.labels.subject for a in store.alerts.open_alerts()] == ["a2"]
    events = [(h.event, h.at, h.detail) for h in store.alerts.alert_history("av-enabled", "a1")]
    assert events == [
        ("firing", 90.0, ""),
        ("ack", 102.0, "anh Tuấn: đang xử lý"),
        ("resolved", 118.0, ""),
    ]
    assert [h.labels.subject for h in store.mail.resolved_between("Hạ Lang", 100.0, 200.0)] == [
        "a1"
    ]
    assert store.mail.resolved_between("Hạ Lang", 119.0, 200.0) == []

    with pytest.raises(NotFoundError, match="no open alert av-enabled on a1"):
        store.alerts.ack_alert("av-enabled", "a1", "x", "", now=130.0)
    store.alerts.forget_rules(set())
    assert store.alerts.open_alerts() == [] and store.alerts.rule_verdicts() == {}
    assert len(store.alerts.alert_history("av-enabled")) == 3  # history stays


def test_silences_and_maintenance_windows(store: Store) -> None:
    s = store.alerts.add_silence({"commune": "Thanh Nhật"}, 100.0, 200.0, "chị Lan", "mất điện")
    later = store.alerts.add_silence({"host": "ubnd-*"}, 300.0, 400.0, "chị Lan", "bảo trì")
    assert [x.silence_id for x in store.alerts.silences(150.0)] == [s.silence_id, later.silence_id]
    assert store.alerts.silences(250.0) == [later]
    store.alerts.expire_silence(later.silence_id, now=260.0)
    assert store.alerts.silences(250.0) == []
    with pytest.raises(NotFoundError, match="no active silence"):
        store.alerts.expire_silence(later.silence_id, now=261.0)

    w = MaintenanceWindow("w1", {"district": "Hạ Lang"}, ("sat", "sun"), "22:00", 7200.0, "a", "")
    store.alerts.add_maintenance(w, now=100.0)
    assert store.alerts.maintenance() == [w]
    store.alerts.delete_maintenance("w1")
    assert store.alerts.maintenance() == []
    with pytest.raises(NotFoundError, match="no maintenance window 'w1'"):
        store.alerts.delete_maintenance("w1")


def test_mail_queue_outbox_and_dedup(store: Store) -> None:
    w = AlertWrite(now=100.0)
    w.notify.append(("firing", LAB, {"title": "x"}))
    store.alerts.apply_alerts(w)
    [n] = store.alerts.unsent_notifications()
    store.mail.route_notifications(
        [(n.id, [("lanh-dao", "firing", {"rule": "av-enabled"})])], 101.0
    )
    assert store.alerts.unsent_notifications() == []
    [item] = store.mail.queued()["lanh-dao"]
    assert (item.kind, item.payload) == ("firing", {"rule": "av-enabled"})

    assert store.mail.queue_once("lanh-dao", "escalation", {"n": 1}, "esc:a1", now=102.0)
    assert not store.mail.queue_once("lanh-dao", "escalation", {"n": 1}, "esc:a1", now=103.0)
    consumed = [i.id for i in store.mail.queued()["lanh-dao"]]
    assert len(consumed) == 2

    assert store.mail.enqueue_mail(
        "lanh-dao",
        ["a@ubnd.vn", "b@ubnd.vn"],
        "firing",
        subject="[Canh Gác] Cảnh báo",
        text="Nội dung",
        html="<p>Nội dung</p>",
        now=110.0,
        consumed=consumed,
        dedup_key="m:1",
    )
    assert not store.mail.enqueue_mail(
        "lanh-dao",
        ["a@ubnd.vn"],
        "firing",
        subject="s",
        text="",
        html="",
        now=111.0,
        dedup_key="m:1",
    )
    assert store.mail.queued() == {}  # both items were consumed by the message
    [m] = store.mail.due_mail(110.0)
    assert (m.to_addrs, m.subject, m.state) == (
        ["a@ubnd.vn", "b@ubnd.vn"],
        "[Canh Gác] Cảnh báo",
        "pending",
    )
    assert store.mail.last_mail_at("lanh-dao", "firing") == 110.0
    assert store.mail.last_mail_at("lanh-dao", "digest") is None

    store.mail.mail_attempted(m.id, state="pending", now=111.0, next_attempt_at=171.0, error="421")
    assert store.mail.due_mail(150.0) == []
    store.mail.mail_attempted(m.id, state="partial", now=172.0, refused={"b@ubnd.vn": "550 no"})
    [done] = store.mail.outbox(["partial"])
    assert (done.attempts, done.sent_at, done.refused) == (2, 172.0, {"b@ubnd.vn": "550 no"})
    assert store.mail.outbox(["pending"]) == []


def test_meetings_and_recorded_verdicts(store: Store) -> None:
    m = store.meetings.add_meeting("Giao ban tuần", 1000.0, 3600.0, ["phong-hop-1"], now=10.0)
    other = store.meetings.add_meeting("Họp khẩn", 5000.0, 600.0, [], now=11.0)
    assert store.meetings.stored_meetings(0.0, 2000.0) == [m]
    assert store.meetings.get_meeting(int(other.id)) == other
    store.meetings.cancel_meeting(int(other.id), now=12.0)
    assert store.meetings.stored_meetings(0.0, 10_000.0) == [m]
    with pytest.raises(NotFoundError, match=f"no meeting {other.id}"):
        store.meetings.get_meeting(int(other.id))
    with pytest.raises(NotFoundError, match="to cancel"):
        store.meetings.cancel_meeting(int(other.id), now=13.0)

    rooms = (
        RoomVerdict("r1", "Phòng họp UBND", "go", "green", (), 990.0),
        RoomVerdict("r2", "Phòng họp xã", "no-go", "red", ("upload 1.2 Mbit/s",), None),
    )
    meeting = Meeting(m.id, m.title, m.starts_at, m.duration, m.rooms, "store")
    store.meetings.record_meeting(MeetingSummary(meeting, "no-go", 1, 2, rooms), now=1000.0)
    assert store.meetings.recorded_meetings([m.id, "r1-20261127"]) == {m.id}
    assert store.meetings.meeting_results(m.id) == sorted(rooms, key=lambda r: r.name)
