"""The collector watches itself: grpc.health.v1, build and process metrics, the mail outbox and
failed sends, the alert timer, store write errors (a full disk), /metrics gzip. Real gRPC,
real HTTP, a real SMTP port with nobody behind it, a real small tmpfs."""

from __future__ import annotations

import gzip
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from canhgac_proto.v1 import collector_pb2 as pb
from collector import __version__
from collector.alerts.engine import notification_payload
from collector.model import Alert, Labels
from collector.store import AlertWrite
from tests.integration.harness import Running, collector_config, start_collector
from tests.integration.smtp_server import smtp_server
from tests.integration.test_field_reliability import _fill, _small_disk

RULES = Path(__file__).parent.parent.parent / "rules"


Samples = dict[str, list[tuple[dict[str, str], float]]]


def _scrape(running: Running, gzip_ok: bool, path: str = "/metrics") -> tuple[str, Samples]:
    req = urllib.request.Request(f"http://127.0.0.1:{running.app.http_port}{path}")
    if gzip_ok:
        req.add_header("Accept-Encoding", "gzip")
    with urllib.request.urlopen(req, timeout=10) as r:
        encoding = r.headers.get("Content-Encoding", "")
        body = r.read()
    text = (gzip.decompress(body) if encoding == "gzip" else body).decode()
    out: Samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return encoding, out


def test_health_and_own_metrics(tmp_path: Path) -> None:
    with smtp_server() as (_, dead_port):
        pass  # nobody listens there any more: every delivery attempt fails
    notify = {
        "enabled": True,
        "every": 3600,
        "smtp": {"host": "127.0.0.1", "port": dead_port, "security": "plain"},
        "recipients": [{"name": "it", "to": ["it@x.vn"], "role": "it", "severities": ["high"]}],
        "digest": {"daily_at": None, "weekly_on": None},
    }
    cfg = collector_config(
        tmp_path / "c.db", rules={"path": str(RULES), "evaluate_every": 3600}, notify=notify
    )
    running = start_collector(cfg)
    app = running.app
    try:
        assert app.alerts is not None and app.notifier is not None
        with grpc.insecure_channel(running.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            serving = health_pb2.HealthCheckResponse.SERVING
            for service in ("", "canhgac_proto.v1.Collector"):
                got = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                assert got.status == serving
            with pytest.raises(grpc.RpcError) as unknown:
                stub.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=5)
            assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
            with pytest.raises(grpc.RpcError) as watch:
                next(iter(stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=5)))
            assert watch.value.code() == grpc.StatusCode.UNIMPLEMENTED

        pack = app.alerts.pack
        rule = pack.get("commune.link-down")
        assert rule is not None
        now = time.time()
        lab = Labels(rule.id, "commune:Hạ Lang/Thanh Nhật", "high", "Hạ Lang", "Thanh Nhật")
        alert = Alert(lab, "firing", now - 60, now, fired_at=now, notified=True)
        w = AlertWrite(upserts={alert.key: alert}, now=now)
        w.notify.append(("firing", lab, notification_payload(rule, alert)))
        app.store.alerts.apply_alerts(w)
        app.notifier.tick(now)  # connection refused: one failed attempt, retried later
        app.alerts.tick().result(30)

        plain_encoding, plain = _scrape(running, gzip_ok=False)
        encoding, m = _scrape(running, gzip_ok=True)
        assert (plain_encoding, encoding) == ("", "gzip")
        assert set(plain) == set(m)
        assert m["canhgac_build_info"][0][0]["version"] == __version__
        assert m["process_resident_memory_bytes"][0][1] > 0
        assert m["process_open_fds"][0][1] > 0
        assert m["canhgac_collector_mail_send_failures_total"] == [({}, 1.0)]
        outbox = {labels["state"]: v for labels, v in m["canhgac_collector_mail_outbox_messages"]}
        assert outbox == {"pending": 1.0, "failed": 0.0}
        assert m["canhgac_collector_alert_tick_duration_seconds"][0][1] > 0
        assert m["canhgac_collector_alert_timer_lag_seconds"][0][1] >= 0
        # The collector's own series alone, for the job that scrapes every collector.
        _, own = _scrape(running, gzip_ok=True, path="/metrics/collector")
        assert set(own) == {
            n for n in m if n.startswith(("canhgac_collector_", "canhgac_build_", "process_"))
        }
    finally:
        app.stop(grace=0)


def _report(seq: int) -> bytes:
    return pb.Report(
        seq=seq, boot_id="b", collected_at_ms=int(time.time() * 1000), agent_version="0.1.0"
    ).SerializeToString()


def test_store_write_errors_are_counted_on_a_full_disk(tmp_path: Path) -> None:
    with _small_disk(tmp_path / "disk", "8m") as disk:
        running = start_collector(collector_config(disk / "c.db"))
        app = running.app
        try:
            secret = running.enroll()
            client = running.client(secret)
            assert client.submit([_report(1)]).stored == [1]
            filler = _fill(disk)
            big = [_report(seq) for seq in range(2, 200)]
            with pytest.raises(Exception, match=r"UNAVAILABLE|store unavailable"):
                for _ in range(20):  # the WAL may still have room for the first few
                    client.submit(big)
            # The collectors' own job scrapes /metrics/collector: it renders no fleet, so it
            # answers on a full disk too (the fleet renderer cannot even open the store).
            _, m = _scrape(running, gzip_ok=False, path="/metrics/collector")
            errors = dict(
                (labels["part"], v) for labels, v in m["canhgac_collector_store_write_errors_total"]
            )
            assert errors.get("reports", 0) >= 1
            filler.unlink()  # room again: the same reports are stored, nothing was lost
            assert client.submit(big).stored == list(range(2, 200))
        finally:
            app.stop(grace=0)
