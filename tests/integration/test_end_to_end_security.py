"""Antivirus (real clamd) and security sections go agent -> collector -> /metrics with labels."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.config import DeliveryConfig
from agent.probes.antivirus import AntivirusOptions, AntivirusProbe
from agent.probes.security import SecurityOptions, SecurityProbe
from agent.runner import Runner, Scheduled
from agent.spool import Spool
from tests.integration.clamav import build_daily_cud, need_clamav, running_clamd
from tests.integration.harness import Running
from tests.integration.test_end_to_end import samples, scrape

pytestmark = pytest.mark.timeout(600)


def test_antivirus_and_security_metrics_reach_the_collector(
    collector: Running, tmp_path: Path
) -> None:
    need_clamav()
    db = tmp_path / "db"
    build_daily_cud(db, tmp_path / "build")
    secret = collector.enroll(hostname="ubnd-thanhnhat-02")
    spool = Spool(tmp_path / "spool.db", 1 << 20, 86400)
    with running_clamd(tmp_path, db) as (address, _):
        antivirus = AntivirusProbe(
            AntivirusOptions.model_validate(
                {"clamd": {"socket": address.path, "database_dir": str(db), "timeout": "30s"}}
            )
        )
        security = SecurityProbe(SecurityOptions())
        sched = {"antivirus": Scheduled(antivirus, 15), "security": Scheduled(security, 15)}
        runner = Runner(
            sched, spool, collector.client(secret).submit, DeliveryConfig(), boot_id="b"
        )
        runner.collect_due(["antivirus", "security"])
    assert runner.deliver_batch() is False
    assert spool.status().depth == 0

    _, text = scrape(collector)
    success = {labels["probe"]: v for labels, v in samples(text, "canhgac_probe_success")}
    assert success == {"antivirus": 1.0, "security": 1.0}
    [(labels, enabled)] = samples(text, "canhgac_antivirus_enabled")
    assert (labels["product"], enabled) == ("ClamAV", 1.0)
    assert labels["commune"] == "Thanh Nhật" and labels["district"] == "Hạ Lang"
    assert [v for _, v in samples(text, "canhgac_antivirus_self_test_ok")] == [1.0]
    # No clamonacc runs here: clamd scans on demand only, "not_configured" (0 in real time).
    assert [v for _, v in samples(text, "canhgac_antivirus_realtime_enabled")] == [0.0]
    [(_, snap)] = collector.app.store.fleet()
    assert snap["antivirus"]["realtime"] == "not_configured"
    [(_, age)] = samples(text, "canhgac_antivirus_signature_age_seconds")
    assert 0 <= age < 3600  # the database was built moments ago

    [(_, snapshot)] = collector.app.store.fleet()
    sec = snapshot["security"]
    risky = samples(text, "canhgac_risky_listeners")
    assert [v for _, v in risky] == [float(len(sec.get("risky_listeners", [])))]
    firewall = {labels["profile"]: v for labels, v in samples(text, "canhgac_firewall_enabled")}
    expected = {p["name"]: p["state"] for p in sec["firewall"] if p["state"] in ("on", "off")}
    assert firewall == {name: 1.0 if s == "on" else 0.0 for name, s in expected.items()}
    if sec["os_updated_at"]:
        [(_, update_age)] = samples(text, "canhgac_os_update_age_seconds")
        assert update_age == pytest.approx(time.time() - sec["os_updated_at"], abs=600)
