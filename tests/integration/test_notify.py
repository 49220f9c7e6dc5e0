"""Alert mail through a real SMTP server (aiosmtpd on loopback): content, routing, storms,
escalation, digests, retries and refusals, restarts; the notify CLI."""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import ValidationError

from canhgac_proto.v1 import collector_pb2 as pb
from collector.alerts.engine import notification_payload
from collector.alerts.notify.config import NotifyConfig
from collector.alerts.notify.notifier import Notifier
from collector.cli import main
from collector.compliance.loader import load_pack
from collector.compliance.model import RulePack
from collector.config import CollectorConfig
from collector.meetings import MeetingBook, MeetingsConfig
from collector.model import Alert, Labels, Placement, Report
from collector.store import AlertWrite, HistoryEntry, MachineFacts, Store
from tests.integration.harness import collector_config, start_collector
from tests.integration.smtp_server import Recorder, parts, smtp_server

RULES = Path(__file__).parent.parent.parent / "rules"
IT = "it@caobang.gov.vn"
CHAIR_TN = "chutich.thanhnhat@caobang.gov.vn"
CHAIR_AL = "chutich.anlac@caobang.gov.vn"
LEADER = "lanhdao@hoaan.gov.vn"
HCM = ZoneInfo("Asia/Ho_Chi_Minh")  # the config's timezone by default
# A Tuesday 21:00 in Hạ Lang: the 07:30 digest is out of its grace until the next morning.
T0 = datetime.datetime(2026, 11, 24, 21, 0, tzinfo=HCM).timestamp()


def notify_cfg(port: int, **over: Any) -> NotifyConfig:
    raw: dict[str, Any] = {
        "enabled": True,
        "grafana_url": "http://grafana.hoaan.local/d/canhgac",
        "rate_limit": "10m",
        "smtp": {
            "host": "127.0.0.1",
            "port": port,
            "security": "plain",
            "from_address": "canhgac@hoaan.gov.vn",
        },
        "recipients": [
            {"name": "it", "to": [IT], "role": "it", "severities": ["critical", "high"]},
            {
                "name": "chu-tich-thanh-nhat",
                "to": [CHAIR_TN],
                "role": "commune",
                "district": "Hòa An",
                "commune": "Thanh Nhật",
                "severities": ["critical"],
            },
            {
                "name": "chu-tich-an-lac",
                "to": [CHAIR_AL],
                "role": "commune",
                "district": "Hòa An",
                "commune": "An Lạc",
                "severities": ["critical"],
            },
            {"name": "lanh-dao-huyen", "to": [LEADER], "role": "district", "district": "Hòa An"},
        ],
        "digest": {"daily_at": "07:30", "weekly_on": "mon", "weekly_at": "08:00"},
        "escalation": {"after": "4h", "severities": ["critical"], "to": "district"},
        "retry": {"max_attempts": 5, "backoff": "60s", "max_backoff": "1h"},
    }
    raw.update(over)
    return NotifyConfig.model_validate(raw)


@pytest.fixture
def pack() -> RulePack:
    return load_pack(RULES, 300.0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'c.db'}")
    yield s
    s.close()


def labels(rule: str, severity: str, commune: str = "Thanh Nhật", host: str = "ubnd-01") -> Labels:
    return Labels(rule, f"agent-{commune}-{host}", severity, "Hòa An", commune, "UBND", host)


def firing(store: Store, pack: RulePack, lab: Labels, at: float, *, notify: bool = True) -> None:
    """What the alert engine writes when an alert fires: the open alert and its outbox row."""
    rule = pack.get(lab.rule_id)
    assert rule is not None
    alert = Alert(
        lab, "firing", started_at=at - 60, last_observed_at=at, fired_at=at, notified=True
    )
    w = AlertWrite(upserts={alert.key: alert}, now=at)
    if notify:
        w.notify.append(("firing", lab, notification_payload(rule, alert)))
    store.alerts.apply_alerts(w)


def test_alert_mail_content_and_routing(store: Store, pack: RulePack) -> None:
    with smtp_server() as (rec, port):
        n = Notifier(store, notify_cfg(port), pack=lambda: pack)
        firing(store, pack, labels("district.uplink-down", "critical"), T0)
        firing(store, pack, labels("hardware.supported-os", "high", "An Lạc"), T0)
        n.tick(T0)
    assert len(rec.to(IT)) == 1  # both alerts, one message
    (tn,) = rec.to(CHAIR_TN)  # critical in his commune
    assert rec.to(CHAIR_AL) == []  # his commune's alert is only "high"
    assert rec.to(LEADER) == []  # leadership gets digests, not raw alerts
    uplink = pack.get("district.uplink-down")
    assert uplink is not None
    assert tn["Subject"] == (
        f"[Canh Gác] Cảnh báo (nghiêm trọng): {uplink.title.vi} — Hòa An / Thanh Nhật / UBND"
    )
    text, html = parts(tn)
    for body in (text, html):
        assert uplink.title.vi in body
        assert uplink.remediation.vi.split("\n")[0].strip() in body
        assert "ubnd-01" in body
    assert "Vì sao quan trọng" in text and uplink.rationale.vi.split("\n")[0].strip() in text
    assert 'href="http://grafana.hoaan.local/d/canhgac"' in html
    it_text, _ = parts(rec.to(IT)[0])
    assert rec.to(IT)[0]["Subject"] == "[Canh Gác] 2 thông báo cảnh báo"
    assert "Hòa An / An Lạc / UBND" in it_text
    # Times in the config's timezone with their offset, whatever the server's zone.
    assert "Từ lúc: 20:59 24/11/2026 (UTC+07:00)" in it_text
    assert [m.state for m in store.mail.outbox()] == ["sent", "sent"]
    assert all(x.sent_at is not None for x in store.alerts.notifications())


def test_english_recipient_gets_english(store: Store, pack: RulePack) -> None:
    with smtp_server() as (rec, port):
        cfg = notify_cfg(
            port, recipients=[{"name": "it", "to": [IT], "role": "it", "language": "en"}]
        )
        firing(store, pack, labels("district.uplink-down", "critical"), T0)
        Notifier(store, cfg, pack=lambda: pack).tick(T0)
    (msg,) = rec.to(IT)
    text, _ = parts(msg)
    assert msg["Subject"].startswith("[Canh Gác] Alert (critical): District uplink down")
    assert "What to do:" in text and "Cần làm" not in text


def test_a_storm_becomes_one_message_per_rate_limit(store: Store, pack: RulePack) -> None:
    with smtp_server() as (rec, port):
        n = Notifier(store, notify_cfg(port), pack=lambda: pack)
        for i in range(30):
            firing(store, pack, labels("hardware.supported-os", "high", host=f"may-{i:02d}"), T0)
        n.tick(T0)
        assert len(rec.to(IT)) == 1
        assert "may-29" in parts(rec.to(IT)[0])[0]
        firing(store, pack, labels("hardware.supported-os", "high", host="may-30"), T0 + 60)
        firing(store, pack, labels("hardware.supported-os", "high", host="may-31"), T0 + 120)
        n.tick(T0 + 300)  # inside the 10 minutes: waits
        assert len(rec.to(IT)) == 1
        n.tick(T0 + 601)
        assert len(rec.to(IT)) == 2
        later = parts(rec.to(IT)[1])[0]
        assert "may-30" in later and "may-31" in later
        n.tick(T0 + 1300)
    assert len(rec.to(IT)) == 2


def test_unacknowledged_critical_escalates_once(store: Store, pack: RulePack) -> None:
    with smtp_server() as (rec, port):
        n = Notifier(store, notify_cfg(port), pack=lambda: pack)
        crit = labels("district.uplink-down", "critical")
        acked = labels("district.uplink-down", "critical", "An Lạc")
        firing(store, pack, crit, T0)
        firing(store, pack, acked, T0)
        store.alerts.ack_alert(acked.rule_id, acked.subject, "anh Tuấn", "đang xử lý", T0 + 600)
        n.tick(T0)
        n.tick(T0 + 4 * 3600 - 1)
        assert rec.to(LEADER) == []
        n.tick(T0 + 4 * 3600 + 1)
        (esc,) = rec.to(LEADER)
        assert "Chưa xử lý" in esc["Subject"] and "Thanh Nhật" in esc["Subject"]
        n.tick(T0 + 5 * 3600)
        n.tick(T0 + 6 * 3600)
    assert len(rec.to(LEADER)) == 1


def _agent(store: Store, name: str, commune: str, role: str, now: float) -> str:
    _, token = store.create_token(Placement("Cao Bằng", "Hòa An", commune, "UBND", role), 3600, now)
    e = store.enroll(token, MachineFacts(f"m-{name}", name, "Windows", "11", "0.1.0"), now)
    return e.agent.agent_id


def test_daily_and_weekly_digest(store: Store, pack: RulePack) -> None:
    day = datetime.date(2026, 11, 23)  # a Monday; the schedule is in the config's timezone
    before = datetime.datetime.combine(day, datetime.time(7, 29), HCM).timestamp()
    daily = datetime.datetime.combine(day, datetime.time(7, 31), HCM).timestamp()
    weekly = datetime.datetime.combine(day, datetime.time(8, 1), HCM).timestamp()
    room = _agent(store, "phonghop-tn", "Thanh Nhật", "meeting-room", before)
    pc = _agent(store, "ketoan-tn", "Thanh Nhật", "workstation", before)
    _agent(store, "vanthu-al", "An Lạc", "workstation", before)  # never reports
    av = {"antivirus": {"realtime": "on", "signature_updated_at": before - 3600}}
    ready = {"meeting_room": {"readiness": {"state": "amber"}}}  # AMBER is still a go
    store.ingest(room, [Report(1, "b", before, "0.1.0", sections={**av, **ready})], before)
    store.ingest(pc, [Report(1, "b", before, "0.1.0", sections={})], before)
    # The verdicts the engine would write for these reports (the indicators rest on them).
    passed = [
        "antivirus.present",
        "antivirus.enabled",
        "antivirus.realtime",
        "antivirus.signatures",
        "meeting-room.ready",
        "security.firewall",
    ]
    store.alerts.apply_alerts(
        AlertWrite(
            results=[
                *((Labels(r, room, "high", "Hòa An", "Thanh Nhật"), True, before) for r in passed),
                (Labels("security.firewall", pc, "high", "Hòa An", "Thanh Nhật"), False, before),
            ],
            now=before,
        )
    )
    firing(
        store, pack, labels("hardware.supported-os", "high", "An Lạc"), before - 7200, notify=False
    )
    fixed = labels("hardware.disk-free", "medium")
    store.alerts.apply_alerts(
        AlertWrite(history=[HistoryEntry(fixed, "resolved", before - 3600, before - 9000, before)])
    )
    with smtp_server() as (rec, port):
        n = Notifier(store, notify_cfg(port), pack=lambda: pack, stale_after=86400.0)
        n.tick(before)
        assert rec.to(LEADER) == []
        n.tick(daily)
        n.tick(daily + 300)  # the same day's digest is sent once
        n.tick(weekly)
    subjects = [m["Subject"] for m in rec.to(LEADER)]
    assert subjects == [
        "[Canh Gác] Báo cáo hằng ngày Hòa An",
        "[Canh Gác] Báo cáo hằng tuần Hòa An",
    ]
    text, html = parts(rec.to(LEADER)[0])
    supported = pack.get("hardware.supported-os")
    disk = pack.get("hardware.disk-free")
    assert supported is not None and disk is not None
    assert "Xã có kết nối mạng tới huyện: 50% (1/2)" in text
    assert "Xã có phòng họp trực tuyến sẵn sàng: 50% (1/2)" in text
    assert "Máy có phần mềm diệt virus hoạt động, cập nhật, tự kiểm tra đạt: 33% (1/3)" in text
    assert "Máy bật tường lửa: 33% (1/3)" in text
    assert "Máy cập nhật hệ điều hành: 0% (0/3)" in text
    assert "Máy đang gửi báo cáo: 67% (2/3)" in text
    assert "kế hoạch" not in text  # no sites file: nothing planned, no made-up denominator
    assert f"An Lạc: 1 ({supported.title.vi})" in text
    assert f"{disk.title.vi} — Thanh Nhật, lúc" in text
    assert "<b>50% (1/2)</b>" in html
    assert rec.to(IT) == []


def _one_message(store: Store, port: int, pack: RulePack) -> Notifier:
    n = Notifier(store, notify_cfg(port), pack=lambda: pack)
    firing(store, pack, labels("district.uplink-down", "critical"), T0)
    return n


def test_421_then_451_then_accepted_is_delivered_once(store: Store, pack: RulePack) -> None:
    rec = Recorder(data_replies=["421 4.3.0 try later", "451 4.3.0 busy"])
    with smtp_server(rec) as (_, port):
        cfg = notify_cfg(port, recipients=[{"name": "it", "to": [IT], "role": "it"}])
        n = Notifier(store, cfg, pack=lambda: pack)
        firing(store, pack, labels("district.uplink-down", "critical"), T0)
        n.tick(T0)
        (m,) = store.mail.outbox()
        assert (m.state, m.attempts, m.next_attempt_at) == ("pending", 1, T0 + 60)
        assert m.last_error.startswith("421")
        n.tick(T0 + 30)  # backoff not over: no attempt
        assert rec.data_attempts == 1
        n.tick(T0 + 60)
        (m,) = store.mail.outbox()
        assert (m.state, m.attempts, m.next_attempt_at) == ("pending", 2, T0 + 60 + 120)
        n.tick(T0 + 180)
        n.tick(T0 + 10_000)
    assert rec.data_attempts == 3
    assert len(rec.received) == 1
    (m,) = store.mail.outbox()
    assert (m.state, m.attempts, m.last_error) == ("sent", 3, "")


def test_550_fails_without_retry(store: Store, pack: RulePack) -> None:
    rec = Recorder(data_replies=["550 5.7.1 rejected by policy"] * 5)
    with smtp_server(rec) as (_, port):
        cfg = notify_cfg(port, recipients=[{"name": "it", "to": [IT], "role": "it"}])
        n = Notifier(store, cfg, pack=lambda: pack)
        firing(store, pack, labels("district.uplink-down", "critical"), T0)
        for k in range(4):
            n.tick(T0 + k * 3600)
    assert rec.data_attempts == 1
    (m,) = store.mail.outbox()
    assert (m.state, m.attempts) == ("failed", 1)
    assert m.last_error == "550 5.7.1 rejected by policy"


def test_one_of_two_recipients_refused_is_recorded(store: Store, pack: RulePack) -> None:
    gone = "nguoi.cu@caobang.gov.vn"
    rec = Recorder(refuse={gone: "550 5.1.1 no such user"})
    with smtp_server(rec) as (_, port):
        cfg = notify_cfg(port, recipients=[{"name": "it", "to": [IT, gone], "role": "it"}])
        n = Notifier(store, cfg, pack=lambda: pack)
        firing(store, pack, labels("district.uplink-down", "critical"), T0)
        n.tick(T0)
        n.tick(T0 + 3600)
    assert [r.rcpt_tos for r in rec.received] == [[IT]]
    (m,) = store.mail.outbox()
    assert (m.state, m.attempts) == ("partial", 1)
    assert m.refused == {gone: "550 5.1.1 no such user"}


def test_restart_with_pending_outbox_delivers_once(tmp_path: Path, pack: RulePack) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    with smtp_server() as (_, dead_port):
        pass  # a port where nothing listens any more: connection refused
    first = Store(url)
    cfg = notify_cfg(dead_port, recipients=[{"name": "it", "to": [IT], "role": "it"}])
    firing(first, pack, labels("district.uplink-down", "critical"), T0)
    Notifier(first, cfg, pack=lambda: pack).tick(T0)
    (m,) = first.mail.outbox()
    assert (m.state, m.attempts) == ("pending", 1)
    assert "Connection refused" in m.last_error or "ConnectionRefused" in m.last_error
    first.close()
    with smtp_server() as (rec, port):
        second = Store(url)  # the collector restarted
        cfg = cfg.model_copy(update={"smtp": cfg.smtp.model_copy(update={"port": port})})
        n = Notifier(second, cfg, pack=lambda: pack)
        n.tick(T0 + 30)
        assert rec.received == []  # still in backoff
        n.tick(T0 + 60)
        n.tick(T0 + 120)
        second.close()
        third = Store(url)  # and again, after delivery
        Notifier(third, cfg, pack=lambda: pack).tick(T0 + 7200)
        states = [x.state for x in third.mail.outbox()]
        third.close()
    assert len(rec.received) == 1
    assert states == ["sent"]


def _write_config(tmp_path: Path, port: int, **smtp: Any) -> Path:
    path = tmp_path / "collector.yaml"
    raw = {
        "store": {"url": f"sqlite:///{tmp_path / 'cli.db'}"},
        "notify": {
            "enabled": True,
            "smtp": {
                "host": "127.0.0.1",
                "port": port,
                "security": "plain",
                "from_address": "canhgac@hoaan.gov.vn",
                **smtp,
            },
        },
    }
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_cli_notify_test_logs_in_with_the_env_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CANHGAC_SMTP_PASSWORD", "s3cret-Mk7")
    rec = Recorder(password="s3cret-Mk7")
    with smtp_server(rec, auth=True) as (_, port):
        cfg = _write_config(
            tmp_path, port, username="canhgac", password_env="CANHGAC_SMTP_PASSWORD"
        )
        code = main(["--config", str(cfg), "notify", "test", "--to", IT])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "sent: 250" in out and "accepted for 1/1" in out
    assert "s3cret-Mk7" not in out
    assert rec.logins == [("canhgac", "s3cret-Mk7")]
    (msg,) = rec.to(IT)
    assert msg["Subject"] == "[Canh Gác] Thư thử nghiệm — cấu hình gửi thư hoạt động"
    assert "máy thu thập gửi được thư" in parts(msg)[0]


def test_cli_notify_test_reports_a_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = Recorder(refuse={IT: "550 5.1.1 no such user"})
    with smtp_server(rec) as (_, port):
        code = main(["--config", str(_write_config(tmp_path, port)), "notify", "test", "--to", IT])
    out = capsys.readouterr().out
    assert code == 1
    assert f"refused {IT}: 550 5.1.1 no such user" in out


def test_cli_notify_outbox_lists_pending_and_failed(
    tmp_path: Path, pack: RulePack, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = Recorder(data_replies=["550 5.7.1 rejected"])
    with smtp_server(rec) as (_, port):
        path = _write_config(tmp_path, port)
        store = Store(f"sqlite:///{tmp_path / 'cli.db'}")
        cfg = notify_cfg(port, recipients=[{"name": "it", "to": [IT], "role": "it"}])
        firing(store, pack, labels("district.uplink-down", "critical"), T0)
        Notifier(store, cfg, pack=lambda: pack).tick(T0)
        store.close()
        assert main(["--config", str(path), "notify", "outbox"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == [
        "ID",
        "STATE",
        "KIND",
        "RECIPIENT",
        "CREATED",
        "TRIES",
        "NEXT/SENT",
        "ERROR",
    ]
    assert out[1].split()[:4] == ["1", "failed", "alerts", "it"]
    assert out[1].endswith("550 5.7.1 rejected")


def test_password_is_never_in_the_config_dump() -> None:
    cfg = notify_cfg(25, smtp={"host": "mail", "password_env": "X"})
    assert "password" not in json.dumps(cfg.model_dump(mode="json")).replace(
        "password_env", ""
    ).replace("password_file", "")


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _report(seq: int, at: float) -> bytes:
    return pb.Report(
        seq=seq, boot_id="b", collected_at_ms=int(at * 1000), agent_version="0.1.0"
    ).SerializeToString()


def test_collector_restarted_with_a_pending_outbox_delivers_the_incident_once(
    tmp_path: Path,
) -> None:
    """The whole path: agents go silent, the engine raises one commune incident, the
    notifier cannot reach the mail server, the collector restarts, the mail goes once."""
    with smtp_server() as (_, dead_port):
        pass
    clock = FakeClock()

    def config(port: int) -> Any:
        notify = notify_cfg(
            port,
            every=3600,  # the test ticks the notifier itself
            recipients=[{"name": "it", "to": [IT], "role": "it", "severities": ["high"]}],
            digest={"daily_at": None, "weekly_on": None},
        )
        return collector_config(
            tmp_path / "c.db",
            rules={"path": str(RULES), "evaluate_every": 3600, "hold": 60},
            notify=notify.model_dump(),
        )

    running = start_collector(config(dead_port), clock=clock)
    app = running.app
    try:
        assert app.alerts is not None and app.notifier is not None
        silent = [running.enroll(f"m-{i}", f"ubnd-thanhnhat-{i:02d}") for i in range(5)]
        others = [running.enroll(f"o-{i}", f"ubnd-anlac-{i:02d}", "An Lạc") for i in range(3)]
        for s in silent + others:
            assert running.client(s).submit([_report(1, clock.now)]).stored == [1]
        for seq, step in ((2, 60), (3, 150)):
            clock.now += step
            for s in others:
                assert running.client(s).submit([_report(seq, clock.now)]).stored == [seq]
            app.alerts.drain()
            app.alerts.tick(clock.now).result(30)
        firing = {a.labels.rule_id for a in app.store.alerts.open_alerts() if a.state == "firing"}
        assert "commune.link-down" in firing
        app.notifier.tick(clock.now)
        (m,) = app.store.mail.outbox()
        # Tried when the engine woke the notifier at the incident, and again by this tick
        # if that wake ran before the clock moved past the retry time.
        assert m.state == "pending" and m.attempts in (1, 2)
    finally:
        app.stop(grace=0)

    with smtp_server() as (rec, port):
        running = start_collector(config(port), clock=clock)
        try:
            assert running.app.notifier is not None
            for step in (30, 60, 600):
                clock.now += step
                running.app.notifier.tick(clock.now)
        finally:
            running.app.stop(grace=0)
    (msg,) = rec.to(IT)
    assert "Hạ Lang / Thanh Nhật" in msg["Subject"]
    assert msg["Subject"].startswith("[Canh Gác] Cảnh báo (cao): ")


# ---- meeting go/no-go summaries -----------------------------------------------------------

MEETING_AT = datetime.datetime(2026, 12, 10, 14, 0, tzinfo=HCM).timestamp()


def test_meeting_summary_once_per_recipient_before_the_meeting(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    first = Store(url)
    book = MeetingBook(first, MeetingsConfig())  # checks at T-60 and T-15 min
    first.meetings.add_meeting("Giao ban tháng", MEETING_AT, 3600, ["all"], 0)
    tn = _agent(first, "phonghop-tn", "Thanh Nhật", "meeting-room", 0)
    _agent(first, "phonghop-al", "An Lạc", "meeting-room", 0)  # never answers
    ready = {"readiness": {"state": "green", "reasons": []}}
    first.ingest(tn, [Report(1, "b", MEETING_AT - 720, "0.1.0", {"meeting_room": ready})], 0)
    with smtp_server() as (rec, port):
        cfg = notify_cfg(port, digest={"daily_at": None, "weekly_on": None})  # summaries only
        n = Notifier(first, cfg, meetings=book)
        n.tick(MEETING_AT - 601)
        assert rec.received == []  # not before T-10 min
        n.tick(MEETING_AT - 600)
        n.tick(MEETING_AT - 540)
        first.close()
        second = Store(url)  # the collector restarted
        Notifier(
            second,
            cfg,
            meetings=MeetingBook(second, MeetingsConfig()),
        ).tick(MEETING_AT - 300)
        second.close()
    (it,) = rec.to(IT)
    (leader,) = rec.to(LEADER)
    (chair_tn,) = rec.to(CHAIR_TN)
    (chair_al,) = rec.to(CHAIR_AL)
    assert len(rec.received) == 4
    assert it["Subject"] == (
        "[Canh Gác] Họp 14:00 10/12/2026: 1/2 phòng họp sẵn sàng — Giao ban tháng"
    )
    for msg in (it, leader):
        text, html = parts(msg)
        assert "Kết luận: KHÔNG SẴN SÀNG — 1/2 phòng họp sẵn sàng" in text
        assert "Bắt đầu lúc 14:00 10/12/2026 (Asia/Ho_Chi_Minh)" in text
        assert "- Hòa An / Thanh Nhật / UBND (phonghop-tn): sẵn sàng (trạng thái xanh" in text
        assert (
            "- Hòa An / An Lạc / UBND (phonghop-al): không sẵn sàng (trạng thái không phản hồi"
            in text
        )
        assert (
            "lý do: Phòng họp không trả lời yêu cầu kiểm tra trước cuộc họp (máy tắt hoặc mất"
            " kết nối) (the room did not answer the check request)." in text
        )
        assert "<b>1/2</b>" in html and "Hòa An / An Lạc / UBND (phonghop-al)" in html
    # A chairman hears about his commune's room only.
    assert "1/1 phòng họp sẵn sàng" in chair_tn["Subject"]
    assert "0/1 phòng họp sẵn sàng" in chair_al["Subject"]
    assert "phonghop-al" not in parts(chair_tn)[0]


def test_meeting_summary_in_english_and_not_for_a_cancelled_meeting(store: Store) -> None:
    book = MeetingBook(store, MeetingsConfig())
    store.meetings.add_meeting("Kick-off", MEETING_AT, 3600, ["Thanh Nhật"], 0)
    dropped = store.meetings.add_meeting("Họp bị hủy", MEETING_AT + 3600, 3600, ["all"], 0)
    store.meetings.cancel_meeting(int(dropped.id), 1)
    _agent(store, "phonghop-tn", "Thanh Nhật", "meeting-room", 0)
    english_it = [{"name": "it", "to": [IT], "role": "it", "language": "en"}]
    with smtp_server() as (rec, port):
        cfg = notify_cfg(port, recipients=english_it)
        n = Notifier(store, cfg, meetings=book)
        n.tick(MEETING_AT - 600)
        n.tick(MEETING_AT + 3000)  # the cancelled meeting's summary time
    (msg,) = rec.received  # nothing for the cancelled meeting
    assert (
        msg.message["Subject"] == "[Canh Gác] Meeting 14:00 10/12/2026: 0/1 rooms ready — Kick-off"
    )
    text, _ = parts(msg.message)
    assert "Verdict: NO-GO — 0/1 rooms ready" in text and "(state silent" in text


def test_meeting_summary_must_follow_the_last_check_point() -> None:
    with pytest.raises(ValidationError, match="meeting_summary_before"):
        CollectorConfig.model_validate({"notify": {"meeting_summary_before": "15m"}})
    assert CollectorConfig().notify.meeting_summary_before == 600.0
