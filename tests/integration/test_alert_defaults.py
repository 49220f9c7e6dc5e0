"""The shipped defaults reach a person: with configs/collector.example.yaml, rules/ and
configs/sites.example.yaml as shipped (only paths and the mail server changed), a silent
machine and a silent commune are mailed to IT staff, an unacknowledged high alert escalates to
the district's leadership, and the shipped Alertmanager route mails what is forwarded. Real
SMTP sink, real Alertmanager, real gRPC collector."""

from __future__ import annotations

import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml

from canhgac_proto.v1 import collector_pb2 as pb
from collector.alerts.notify.digest import build_digest
from collector.config import CollectorConfig, load_config
from tests.integration.harness import Running, start_collector, wait_until
from tests.integration.smtp_server import Recorder, parts, smtp_server
from tests.integration.test_alertmanager import _alerts, run_alertmanager

ROOT = Path(__file__).parent.parent.parent
EXAMPLE = ROOT / "configs" / "collector.example.yaml"
ALERTMANAGER = ROOT / "configs" / "alertmanager" / "alertmanager.yml"
# The shipped recipients (configs/collector.example.yaml).
IT = "cntt@halang.caobang.gov.vn"
LEADERS = ["chutich@halang.caobang.gov.vn", "vanphong@halang.caobang.gov.vn"]


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def shipped_config(tmp_path: Path, smtp_port: int, alertmanager_url: str = "") -> CollectorConfig:
    """The example config with only what a site must set for itself: where the files are,
    its mail server (here the sink, no TLS), mail on; the test drives the timers."""
    raw: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    raw["store"]["url"] = f"sqlite:///{tmp_path / 'c.db'}"
    raw["sites_file"] = str(ROOT / "configs" / "sites.example.yaml")
    raw["rules"]["path"] = str(ROOT / "rules")
    raw["rules"]["evaluate_every"] = "1h"
    notify = raw["notify"]
    notify["enabled"] = True
    notify["every"] = "1h"
    notify["smtp"].update(host="127.0.0.1", port=smtp_port, security="plain", username="")
    notify["alertmanager"]["url"] = alertmanager_url
    path = tmp_path / "collector.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return load_config(path)


def _report(seq: int, at: float) -> bytes:
    return pb.Report(
        seq=seq, boot_id="b", collected_at_ms=int(at * 1000), agent_version="0.1.0"
    ).SerializeToString()


class Fleet:
    """Thanh Nhật: five machines that go silent together; An Lạc: four machines, of which
    `an-lac-03` alone goes silent."""

    def __init__(self, running: Running, clock: FakeClock) -> None:
        self.running = running
        self.clock = clock
        self.thanh_nhat = [running.enroll(f"tn-{i}", f"ubnd-thanhnhat-{i:02d}") for i in range(5)]
        self.an_lac = [running.enroll(f"al-{i}", f"an-lac-{i:02d}", "An Lạc") for i in range(4)]
        self.seq = 0

    def report(self, secrets: list[str]) -> None:
        self.seq += 1
        for s in secrets:
            stored = self.running.client(s).submit([_report(self.seq, self.clock.now)]).stored
            assert stored == [self.seq]

    def go_silent(self) -> None:
        """Everyone reports, then Thanh Nhật and an-lac-03 stop; ticks past agent.silent."""
        app = self.running.app
        assert app.alerts is not None
        self.report(self.thanh_nhat + self.an_lac)
        app.alerts.drain()
        app.alerts.tick(self.clock.now).result(30)
        for step in (60, 150):  # > 3 report intervals, then > agent.silent's for: 2m
            self.clock.now += step
            self.report(self.an_lac[:3])
            app.alerts.drain()
            app.alerts.tick(self.clock.now).result(30)


def _alert_mails(rec: Recorder, to: str) -> list[EmailMessage]:
    return [m for m in rec.to(to) if "Cảnh báo" in m["Subject"] or "cảnh báo" in m["Subject"]]


def test_shipped_defaults_mail_a_silent_machine_a_silent_commune_and_escalate(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    with smtp_server() as (rec, port):
        running = start_collector(shipped_config(tmp_path, port), clock=clock)
        app = running.app
        try:
            assert app.alerts is not None and app.notifier is not None
            fleet = Fleet(running, clock)
            fleet.go_silent()
            # The commune incident leaves at once: the engine wakes the notifier (its own
            # period here is 1 h). The machine, silent 2 minutes later, waits for the
            # recipient's rate limit.
            wait_until(lambda: bool(_alert_mails(rec, IT)), 10, "the incident's mail")
            app.notifier.tick(clock.now)
            (incident,) = _alert_mails(rec, IT)
            text, _ = parts(incident)
            assert incident["Subject"].startswith("[Canh Gác] Cảnh báo (cao): Mất kết nối xã")
            assert incident["Subject"].endswith("— Hạ Lang / Thanh Nhật")
            # The five silent machines of Thanh Nhật are the incident, not five more lines.
            assert "ubnd-thanhnhat-" not in text
            clock.now += 600
            app.notifier.tick(clock.now)
            wait_until(lambda: len(_alert_mails(rec, IT)) == 2, 10, "the machine's mail")
            _, machine = _alert_mails(rec, IT)
            text, _ = parts(machine)
            assert "Máy không gửi báo cáo quá 3 chu kỳ" in text and "an-lac-03" in text
            assert "ubnd-thanhnhat-" not in text

            clock.now += 4 * 3600  # nobody acknowledged either: the leadership hears
            app.notifier.tick(clock.now)
            for leader in LEADERS:
                (esc,) = [m for m in rec.to(leader) if "Chưa xử lý" in parts(m)[0]]
                body, _ = parts(esc)
                assert "Mất kết nối xã" in body and "an-lac-03" in body
        finally:
            app.stop(grace=0)


def test_shipped_alertmanager_route_mails_the_forwarded_incident(tmp_path: Path) -> None:
    """The collector forwards the commune incident (high) and the machine (high), not the
    medium/low group findings of An Lạc; the shipped route mails IT staff."""
    route = yaml.safe_load(ALERTMANAGER.read_text(encoding="utf-8"))
    with smtp_server() as (rec, port):
        # The site's mail server: here the sink, without TLS or login. Routes as shipped.
        route["global"] = {
            "smtp_smarthost": f"127.0.0.1:{port}",
            "smtp_from": route["global"]["smtp_from"],
            "smtp_require_tls": False,
        }
        text = yaml.safe_dump(route, allow_unicode=True)
        with run_alertmanager(tmp_path, text) as am_url:
            clock = FakeClock()
            running = start_collector(shipped_config(tmp_path, port, am_url), clock=clock)
            app = running.app
            try:
                assert app.alerts is not None and app.notifier is not None
                Fleet(running, clock).go_silent()
                clock.now = time.time()  # Alertmanager judges startsAt/endsAt on its clock
                app.notifier.tick(clock.now)
                forwarded = sorted(a["labels"]["alertname"] for a in _alerts(am_url))
                assert forwarded == ["agent.silent", "commune.link-down"]
                wait_until(
                    lambda: any(r.mail_from.startswith("alertmanager@") for r in rec.received),
                    40,
                    "Alertmanager's mail in the sink",
                )
            finally:
                app.stop(grace=0)
    am_mails = [r for r in rec.received if r.mail_from.startswith("alertmanager@")]
    assert {to for r in am_mails for to in r.rcpt_tos} == {IT}


def test_a_commune_outage_explains_its_commune_rules_too(tmp_path: Path) -> None:
    """An hour into Thanh Nhật's outage its commune rules (no reporting meeting room,
    coverage) fire as An Lạc's do, but only An Lạc's are notified: the outage explains them."""
    clock = FakeClock()
    with smtp_server() as (_, port):
        running = start_collector(shipped_config(tmp_path, port), clock=clock)
        app = running.app
        try:
            assert app.alerts is not None
            fleet = Fleet(running, clock)
            fleet.go_silent()
            for _ in range(5):  # past commune.meeting-room's and commune.coverage's for: 1h
                clock.now += 900
                fleet.report(fleet.an_lac[:3])
                app.alerts.drain()
                app.alerts.tick(clock.now).result(30)
            firing = {
                (a.labels.rule_id, a.labels.commune)
                for a in app.store.alerts.open_alerts()
                if a.state == "firing"
            }
            for rule in ("commune.meeting-room", "commune.coverage"):
                assert {(rule, "Thanh Nhật"), (rule, "An Lạc")} <= firing
            sent = {(n.rule_id, n.subject) for n in app.store.alerts.notifications()}
            assert ("commune.meeting-room", "commune:Hạ Lang/An Lạc") in sent
            assert ("commune.coverage", "commune:Hạ Lang/An Lạc") in sent
            assert {s for s in sent if "Thanh Nhật" in s[1]} == {
                ("commune.link-down", "commune:Hạ Lang/Thanh Nhật")
            }
        finally:
            app.stop(grace=0)


@pytest.mark.parametrize("ending", ["revoked", "retired"])
def test_revoking_or_retiring_an_agent_closes_its_open_alerts(tmp_path: Path, ending: str) -> None:
    """an-lac-03's agent is revoked (`agent revoke`) or the machine retired (`agent retire`):
    its silent alert closes at the next tick with that reason in its history, and the IT staff
    who heard of it hear it is closed — not that it was fixed."""
    clock = FakeClock()
    with smtp_server() as (rec, port):
        running = start_collector(shipped_config(tmp_path, port), clock=clock)
        app = running.app
        try:
            assert app.alerts is not None and app.notifier is not None
            fleet = Fleet(running, clock)
            fleet.go_silent()
            app.notifier.tick(clock.now)
            (retired,) = [a for a in app.store.list_agents() if a.hostname == "an-lac-03"]
            open_before = [
                a for a in app.store.alerts.open_alerts() if a.labels.host == "an-lac-03"
            ]
            assert [a.labels.rule_id for a in open_before] == ["agent.silent"]

            if ending == "revoked":
                app.store.revoke_agent(retired.agent_id, clock.now)
            else:
                app.store.retire_agent(retired.agent_id, clock.now, "thanh lý")
            clock.now += 15
            fleet.report(fleet.an_lac[:3])
            app.alerts.drain()
            app.alerts.tick(clock.now).result(30)
            assert [a for a in app.store.alerts.open_alerts() if a.labels.host == "an-lac-03"] == []
            history = app.store.alerts.alert_history("agent.silent", retired.agent_id)
            assert [(h.event, h.detail) for h in history][-1] == ("resolved", f"agent {ending}")
            clock.now += 600  # past the rate limit
            app.notifier.tick(clock.now)

            # The firing and the resolved notice of an-lac-03 waited for the rate limit
            # together: one message with both.
            def texts() -> list[str]:
                return [t for t in (parts(m)[0] for m in rec.to(IT)) if "an-lac-03" in t]

            wait_until(lambda: bool(texts()), 10, "an-lac-03's mail")
            (both,) = texts()
            # Closed because the machine was revoked or retired, and said so: not a fix.
            closed = "máy bị thu hồi" if ending == "revoked" else "máy ngừng sử dụng"
            assert "Cảnh báo" in both and f"Đã đóng: {closed}" in both
            assert "Đã khắc phục" not in both and "khắc phục lúc" not in both
            assert "không phải vì sự cố đã được khắc phục" in both
            # Nor does the leadership's digest list it among the fixed.
            digest = build_digest(
                app.store,
                retired.placement.district,
                period="daily",
                since=clock.now - 86400,
                now=clock.now,
                stale_after=45,
                sites=None,
                title=str,
            )
            fixed = {(f["title"], f["place"]) for f in digest["fixed"]}
            assert ("agent.silent", retired.placement.commune) not in fixed
        finally:
            app.stop(grace=0)
