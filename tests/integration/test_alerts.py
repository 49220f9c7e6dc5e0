"""Alerts end to end: a commune that goes silent raises one incident; broken packs are refused."""

from __future__ import annotations

import datetime
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from canhgac_proto.v1 import collector_pb2 as pb
from collector.app import CollectorApp
from collector.errors import RuleError
from collector.store.alerts import MaintenanceWindow
from tests.integration.harness import Running, collector_config, start_collector

RULES = Path(__file__).parent.parent.parent / "rules"


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _report(seq: int, at: float) -> bytes:
    return pb.Report(
        seq=seq, boot_id="b", collected_at_ms=int(at * 1000), agent_version="0.1.0"
    ).SerializeToString()


def test_silent_commune_raises_one_incident_and_no_agent_notifications(tmp_path: Path) -> None:
    clock = FakeClock()
    cfg = collector_config(
        tmp_path / "c.db", rules={"path": str(RULES), "evaluate_every": 3600, "hold": 60}
    )
    running = start_collector(cfg, clock=clock)
    app = running.app
    assert app.alerts is not None
    try:
        secrets = [running.enroll(f"m-{i}", f"ubnd-thanhnhat-{i:02d}") for i in range(30)]
        # Ten machines of another commune keep reporting: the district uplink is fine.
        others = [running.enroll(f"o-{i}", f"ubnd-anlac-{i:02d}", "An Lạc") for i in range(10)]
        seq = 0

        def others_report() -> None:
            nonlocal seq
            seq += 1
            for s in others:
                assert running.client(s).submit([_report(seq, clock.now)]).stored == [seq]

        for s in secrets:
            assert running.client(s).submit([_report(1, clock.now)]).stored == [1]
        others_report()
        app.alerts.drain()
        app.alerts.tick(clock.now).result(30)
        assert app.store.alerts.open_alerts() == []

        clock.now += 4 * 15  # every agent of Thanh Nhật silent for more than 3 intervals
        others_report()
        app.alerts.tick(clock.now).result(30)
        clock.now += 150  # longer than agent.silent's for: 2m
        others_report()
        app.alerts.drain()
        app.alerts.tick(clock.now).result(30)
        firing = [a for a in app.store.alerts.open_alerts() if a.state == "firing"]
        assert sorted({a.labels.rule_id for a in firing}) == ["agent.silent", "commune.link-down"]
        assert sum(a.labels.rule_id == "agent.silent" for a in firing) == 30
        sent = [(n.kind, n.rule_id, n.subject) for n in app.store.alerts.notifications()]
        assert sent == [("firing", "commune.link-down", "commune:Hạ Lang/Thanh Nhật")]

        clock.now += 10  # the link returns: every agent reports again
        for s in secrets:
            assert running.client(s).submit([_report(2, clock.now)]).stored == [2]
        others_report()
        app.alerts.drain()
        app.alerts.tick(clock.now).result(30)
        clock.now += 61  # past the hold time; everyone keeps reporting
        for s in secrets:
            assert running.client(s).submit([_report(3, clock.now)]).stored == [3]
        others_report()
        app.alerts.drain()
        app.alerts.tick(clock.now).result(30)
        assert [a for a in app.store.alerts.open_alerts() if a.state == "firing"] == []
        sent = [(n.kind, n.rule_id, n.subject) for n in app.store.alerts.notifications()]
        assert sent == [
            ("firing", "commune.link-down", "commune:Hạ Lang/Thanh Nhật"),
            ("resolved", "commune.link-down", "commune:Hạ Lang/Thanh Nhật"),
        ]
        (agent_id, *_) = [
            a.agent_id for a in app.store.list_agents() if a.placement.commune == "Thanh Nhật"
        ]
        events = [h.event for h in app.store.alerts.alert_history("agent.silent", agent_id)]
        assert events == ["pending", "firing", "resolved"]
    finally:
        app.stop(grace=0)


QUIET_PACK = """version: 1
rules:
  - id: quiet.short
    title: {vi: Im lặng, en: Quiet}
    remediation: {vi: Xem, en: Look}
    rationale: {vi: Thử, en: Test}
    severity: low
    condition: agent.silent_seconds <= 10.0
"""


def test_the_timer_judges_silence_only_past_one_report_interval(tmp_path: Path) -> None:
    """A machine heard from within one report interval is not silent: the tick leaves it to
    the verdict of its last arrival (so a tick costs per silent machine, not per machine)."""
    pack = tmp_path / "rules.yaml"
    pack.write_text(QUIET_PACK)
    clock = FakeClock()
    cfg = collector_config(tmp_path / "c.db", rules={"path": str(pack), "evaluate_every": 3600})
    running = start_collector(cfg, clock=clock)  # report_interval: 15 s
    app = running.app
    assert app.alerts is not None
    try:
        secret = running.enroll()
        assert running.client(secret).submit([_report(1, clock.now)]).stored == [1]
        app.alerts.drain()
        clock.now += 12  # past the rule's 10 s, within the 15 s interval
        app.alerts.tick(clock.now).result(30)
        assert app.store.alerts.open_alerts() == []
        clock.now += 8  # 20 s: more than one interval without a report
        app.alerts.tick(clock.now).result(30)
        assert [a.labels.rule_id for a in app.store.alerts.open_alerts()] == ["quiet.short"]
    finally:
        app.stop(grace=0)


def _antivirus_report(seq: int, at: float, products: int, age_days: float) -> bytes:
    """A report whose antivirus section has `products` enabled products (0 or 1) updated
    `age_days` ago."""
    product = pb.AntivirusProduct(
        name="Windows Defender", source="security_center", state="on", signatures="up_to_date"
    )
    return pb.Report(
        seq=seq,
        boot_id="b",
        collected_at_ms=int(at * 1000),
        agent_version="0.1.0",
        antivirus=pb.Antivirus(
            products=[product] * products,
            realtime="on" if products else "unknown",
            signature_updated_at=at - age_days * 86400,
        ),
    ).SerializeToString()


def test_commune_signatures_fires_and_resolves_from_the_agents_verdicts(tmp_path: Path) -> None:
    clock = FakeClock()
    cfg = collector_config(
        tmp_path / "c.db", rules={"path": str(RULES), "evaluate_every": 3600, "hold": 60}
    )
    running = start_collector(cfg, clock=clock)
    app = running.app
    alerts = app.alerts
    assert alerts is not None
    subject = "commune:Hạ Lang/Thanh Nhật"
    try:
        # 20 machines (no plan: the enrolled agents): 95 % current is 19 of them.
        secrets = [running.enroll(f"m-{i}", f"ubnd-thanhnhat-{i:02d}") for i in range(20)]
        seq = 0

        def round_then_tick(stale: int, without_product: int) -> list[str]:
            """Every machine reports (the first ones stale or with no product); one tick;
            the states of the commune's signatures alert."""
            nonlocal seq
            seq += 1
            for i, s in enumerate(secrets):
                products = 0 if i < without_product else 1
                age = 4.0 if without_product <= i < without_product + stale else 1.0
                report = _antivirus_report(seq, clock.now, products, age)
                assert running.client(s).submit([report]).stored == [seq]
            alerts.drain()
            alerts.tick(clock.now).result(30)
            return [
                a.state
                for a in app.store.alerts.open_alerts()
                if (a.labels.rule_id, a.labels.subject) == ("commune.signatures", subject)
            ]

        assert round_then_tick(stale=1, without_product=0) == []  # 19 of 20 current
        # One stale and one without any antivirus: 18 current, and `for: 1h` starts.
        assert round_then_tick(stale=1, without_product=1) == ["pending"]
        clock.now += 3601
        assert round_then_tick(stale=1, without_product=1) == ["firing"]
        sent = [(n.kind, n.rule_id, n.subject) for n in app.store.alerts.notifications()]
        assert ("firing", "commune.signatures", subject) in sent
        assert round_then_tick(stale=0, without_product=1) == ["firing"]  # 19: passing again
        clock.now += 61  # past the hold time
        assert round_then_tick(stale=0, without_product=1) == []
        events = [h.event for h in app.store.alerts.alert_history("commune.signatures", subject)]
        assert events == ["pending", "firing", "resolved"]
    finally:
        app.stop(grace=0)


def _post(running: Running, path: str) -> tuple[int, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{running.app.http_port}{path}", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_reload_with_a_broken_pack_keeps_the_running_one(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    cfg = collector_config(tmp_path / "c.db", rules={"path": str(rules), "evaluate_every": 3600})
    running = start_collector(cfg)
    try:
        assert running.app.alerts is not None
        before = running.app.alerts.pack
        pack = rules / "default.yaml"
        pack.write_text(pack.read_text().replace("agent.silent_intervals <= 3.0", "agent.silnt"))
        code, body = _post(running, "/-/reload")
        assert code == 422
        assert (
            f"{pack}:" in body and "rule agent.silent: unknown snapshot field agent.silnt" in body
        )
        assert running.app.alerts.pack is before
        pack.write_text(pack.read_text().replace("agent.silnt", "agent.silent_intervals <= 4.0"))
        code, body = _post(running, "/-/reload")
        assert code == 200 and body.startswith(f"{len(before.rules)} rules loaded")
        rule = running.app.alerts.pack.get("agent.silent")
        assert rule is not None and rule.condition == "agent.silent_intervals <= 4.0"
    finally:
        running.app.stop(grace=0)


def test_collector_refuses_to_start_on_a_broken_pack(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - id: x\n")
    cfg = collector_config(tmp_path / "c.db", rules={"path": str(bad)})
    with pytest.raises(RuleError, match=r"bad\.yaml:3: rule x: missing field 'title'"):
        CollectorApp(cfg, grpc_address="127.0.0.1:0", http_address="127.0.0.1:0")


SPOOL_RULE = """version: 1
rules:
  - id: spool.full
    title: {vi: Hàng đợi đầy, en: Spool full}
    remediation: {vi: Kiểm tra, en: Check}
    rationale: {vi: Mất dữ liệu, en: Data loss}
    severity: low
    condition: spool.depth < 100
"""


def _spooled(seq: int, at: float, depth: int) -> bytes:
    return pb.Report(
        seq=seq,
        boot_id="b",
        collected_at_ms=int(at * 1000),
        agent_version="0.1.0",
        spool=pb.SpoolStats(depth=depth),
    ).SerializeToString()


def test_silence_mutes_until_it_expires_and_late_data_never_notifies(tmp_path: Path) -> None:
    clock = FakeClock()
    (tmp_path / "rules.yaml").write_text(SPOOL_RULE)
    rules = {"path": str(tmp_path / "rules.yaml"), "evaluate_every": 3600, "hold": 0}
    running = start_collector(collector_config(tmp_path / "c.db", rules=rules), clock=clock)
    app = running.app
    assert app.alerts is not None
    try:
        store = app.store
        late, live = running.enroll("m-1", "pc-late"), running.enroll("m-2", "pc-live")
        # A replayed backlog: failed an hour ago, passed since; history only, no notification.
        t0 = clock.now - 3600
        backlog = [_spooled(1, t0, 500), _spooled(2, t0 + 60, 500), _spooled(3, t0 + 120, 0)]
        assert running.client(late).submit(backlog).stored == [1, 2, 3]
        silence = store.alerts.add_silence(
            {"host": "pc-live"}, clock.now, clock.now + 600, "an", "test"
        )
        app.alerts.tick(clock.now).result(30)  # the engine reads silences on its timer
        assert running.client(live).submit([_spooled(1, clock.now, 500)]).stored == [1]
        app.alerts.drain()
        app.alerts.tick(clock.now).result(30)
        (late_id,) = [a.agent_id for a in store.list_agents() if a.hostname == "pc-late"]
        assert [h.event for h in store.alerts.alert_history("spool.full", late_id)] == [
            "firing",
            "resolved",
        ]
        firing = [a for a in store.alerts.open_alerts() if a.state == "firing"]
        assert [a.labels.host for a in firing] == ["pc-live"]
        assert store.alerts.notifications() == []  # silenced, and the backlog had already ended
        clock.now += 60
        store.alerts.expire_silence(silence.silence_id, clock.now)
        app.alerts.tick(clock.now).result(30)
        sent = [(n.kind, n.rule_id) for n in store.alerts.notifications()]
        assert sent == [("firing", "spool.full")]  # still firing once the silence is over
    finally:
        app.stop(grace=0)


def _last_saturday_at(hour: int) -> float:
    """`hour`:00 collector local time on the last Saturday before today (in the past)."""
    today = datetime.date.today()
    saturday = today - datetime.timedelta(days=(today.weekday() - 5) % 7 or 7)
    return datetime.datetime.combine(saturday, datetime.time(hour)).timestamp()


def test_maintenance_window_mutes_while_open_even_past_midnight(tmp_path: Path) -> None:
    clock = FakeClock()
    clock.now = _last_saturday_at(23)
    (tmp_path / "rules.yaml").write_text(SPOOL_RULE)
    rules = {"path": str(tmp_path / "rules.yaml"), "evaluate_every": 3600, "hold": 0}
    running = start_collector(collector_config(tmp_path / "c.db", rules=rules), clock=clock)
    app = running.app
    assert app.alerts is not None
    try:
        store = app.store
        inside, outside = running.enroll("m-1", "pc-server"), running.enroll("m-2", "pc-other")
        # Saturday 22:00 for 6 h: open until Sunday 04:00.
        window = MaintenanceWindow(
            "w1", {"host": "pc-server"}, ("sat",), "22:00", 6 * 3600, "an", ""
        )
        store.alerts.add_maintenance(window, clock.now)
        app.alerts.tick(clock.now).result(30)  # the engine reads windows on its timer
        for secret in (inside, outside):
            assert running.client(secret).submit([_spooled(1, clock.now, 500)]).stored == [1]
        app.alerts.drain()
        app.alerts.tick(clock.now).result(30)
        firing = sorted(a.labels.host for a in store.alerts.open_alerts() if a.state == "firing")
        assert firing == ["pc-other", "pc-server"]
        assert [n.subject for n in store.alerts.notifications()] == [_agent_id(running, "pc-other")]

        clock.now += 4 * 3600  # Sunday 03:00: still inside the window
        app.alerts.tick(clock.now).result(30)
        assert len(store.alerts.notifications()) == 1

        clock.now += 3600  # Sunday 04:00: the window has closed, the alert still fails
        app.alerts.tick(clock.now).result(30)
        sent = [(n.kind, n.subject) for n in store.alerts.notifications()]
        assert sent == [
            ("firing", _agent_id(running, "pc-other")),
            ("firing", _agent_id(running, "pc-server")),
        ]
    finally:
        app.stop(grace=0)


def _agent_id(running: Running, hostname: str) -> str:
    (agent_id,) = [a.agent_id for a in running.app.store.list_agents() if a.hostname == hostname]
    return agent_id


def test_reload_judges_unchanged_data_again_with_the_new_condition(tmp_path: Path) -> None:
    clock = FakeClock()
    pack = tmp_path / "rules.yaml"
    pack.write_text(SPOOL_RULE)
    rules = {"path": str(pack), "evaluate_every": 3600, "hold": 0}
    running = start_collector(collector_config(tmp_path / "c.db", rules=rules), clock=clock)
    app = running.app
    assert app.alerts is not None
    try:
        secret = running.enroll("m-1", "pc-01")
        assert running.client(secret).submit([_spooled(1, clock.now, 50)]).stored == [1]
        app.alerts.drain()
        assert app.store.alerts.open_alerts() == []
        # Same rule id, same reported value: only the condition changed.
        pack.write_text(SPOOL_RULE.replace("spool.depth < 100", "spool.depth < 10"))
        assert app.alerts.reload()[0]
        clock.now += 15
        assert running.client(secret).submit([_spooled(2, clock.now, 50)]).stored == [2]
        app.alerts.drain()
        assert [(a.labels.rule_id, a.state) for a in app.store.alerts.open_alerts()] == [
            ("spool.full", "firing")
        ]
    finally:
        app.stop(grace=0)


MEMBERS_PACK = """version: 1
rules:
  - id: commune.spool
    kind: fleet
    group_by: commune
    title: {vi: Hàng đợi, en: Spool}
    remediation: {vi: Xem, en: Look}
    rationale: {vi: Thử, en: Test}
    severity: low
    condition: members.all(m, m.spool.depth < 100)
"""


def test_a_fleet_rule_reading_members_is_judged_on_stored_snapshots(tmp_path: Path) -> None:
    # The shipped pack needs no snapshots on the timer, so the tick skips reading them; a pack
    # whose fleet rule reads `members` must still see each agent's stored data.
    pack = tmp_path / "rules.yaml"
    pack.write_text(MEMBERS_PACK)
    cfg = collector_config(tmp_path / "c.db", rules={"path": str(pack), "evaluate_every": 3600})
    running = start_collector(cfg)
    try:
        assert running.app.alerts is not None
        secret = running.enroll("m-1", "ubnd-thanhnhat-01")
        now = time.time()
        assert running.client(secret).submit([_spooled(1, now, 500)]).stored == [1]
        running.app.alerts.drain()
        running.app.alerts.tick().result(30)
        [alert] = running.app.store.alerts.open_alerts()
        assert (alert.labels.rule_id, alert.state) == ("commune.spool", "firing")
    finally:
        running.app.stop(grace=0)


SPOOL_PACK = """version: 1
rules:
  - id: spool.full
    title: {vi: Hàng đợi, en: Spool}
    remediation: {vi: Xem, en: Look}
    rationale: {vi: Thử, en: Test}
    severity: low
    condition: spool.depth < 100
"""


def test_an_open_alert_seen_again_is_written_only_when_it_changes(tmp_path: Path) -> None:
    pack = tmp_path / "rules.yaml"
    pack.write_text(SPOOL_PACK)
    cfg = collector_config(
        tmp_path / "c.db", rules={"path": str(pack), "evaluate_every": 3600, "hold": 600}
    )
    running = start_collector(cfg)
    try:
        engine = running.app.alerts
        assert engine is not None
        client = running.client(running.enroll("m-1", "ubnd-thanhnhat-01"))
        t0 = float(int(time.time()) - 60)  # whole seconds: exact after the ms round trip
        for seq, (at, depth) in enumerate([(t0, 500), (t0 + 15, 500), (t0 + 30, 0)], start=1):
            assert client.submit([_spooled(seq, at, depth)]).stored == [seq]
            engine.drain()
            [stored] = running.app.store.alerts.open_alerts()
            if seq == 2:  # still failing: only the observation time moved, nothing written
                assert (stored.state, stored.last_observed_at) == ("firing", t0)
        # passing again: a real change (the hold starts), written with the newest observation
        assert (stored.passing_since, stored.last_observed_at) == (t0 + 30, t0 + 30)
    finally:
        running.app.stop(grace=0)
