"""Disk health, power and software probes on this machine's real tools (smartctl, a real NUT
upsd, dpkg-query), through the real runner, gRPC and store, to /metrics and the kept list."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from agent.config import DeliveryConfig
from agent.probes.disk_health import DiskHealthProbe
from agent.probes.power import PowerOptions, PowerProbe
from agent.probes.software import SoftwareProbe
from agent.runner import Runner, Scheduled
from agent.spool import Spool
from tests.integration.harness import Running
from tests.integration.nut import DRIVER, UPSD, running_ups
from tests.integration.test_end_to_end import samples, scrape

pytestmark = pytest.mark.skipif(
    not (DRIVER.exists() and UPSD.exists() and shutil.which("upsc")),
    reason="needs nut-server and nut-client (scripts/install-test-deps.sh installs them)",
)


def _installed_packages() -> int:
    done = subprocess.run(
        ["dpkg-query", "--show", "--showformat", "${db:Status-Abbrev}\\n"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return sum(1 for line in done.stdout.splitlines() if line.strip() in ("ii", "hi"))


def test_power_disk_health_and_software_reach_metrics(collector: Running, tmp_path: Path) -> None:
    secret = collector.enroll(hostname="ubnd-thanhnhat-01")
    agent_id = collector.app.store.list_agents()[0].agent_id
    with running_ups(
        tmp_path / "nut",
        ups_status="OB DISCHRG",
        battery_charge="64",
        battery_runtime="1380",
        ups_load="21",
    ) as ups:
        probes = {
            "power": PowerProbe(PowerOptions(ups=[ups.name])),
            "disk_health": DiskHealthProbe(),
            "software": SoftwareProbe(),
        }
        spool = Spool(tmp_path / "spool.db", 16 << 20, 86400)
        runner = Runner(
            {name: Scheduled(p, 15) for name, p in probes.items()},
            spool,
            collector.client(secret).submit,
            DeliveryConfig(),
            boot_id="boot-1",
        )
        runner.collect_due(list(probes))
        assert runner.deliver_batch() is False
        _, text = scrape(collector)
        on = {lb["state"]: v for lb, v in samples(text, "canhgac_ups_status")}
        assert on["on_battery"] == 1.0 and on["online"] == 0.0
        assert [v for _, v in samples(text, "canhgac_power_on_battery")] == [1.0]
        assert [v for _, v in samples(text, "canhgac_ups_runtime_seconds")] == [1380.0]
        packages = _installed_packages()
        assert [v for _, v in samples(text, "canhgac_software_programs")] == [float(packages)]

        # Power back: the next report says online, and the software hash alone travels.
        ups.set(ups_status="OL CHRG", battery_charge="65", battery_runtime="1400", ups_load="20")
        ups.wait_for("OL CHRG")
        runner.collect_due(["power", "software"])
        assert runner.deliver_batch() is False
        _, text = scrape(collector)
        assert [v for _, v in samples(text, "canhgac_power_on_battery")] == [0.0]

    snapshot = collector.app.store.snapshot(agent_id)
    assert snapshot["software"]["complete"] is False
    assert "programs" not in snapshot["software"] or not snapshot["software"]["programs"]
    kept = collector.app.store.inventory.software(agent_id)
    assert kept is not None and kept.source == "dpkg"
    assert len(kept.programs) == packages and kept.hash == snapshot["software"]["hash"]
    # This VM: smartctl finds no drive with SMART (virtio), said as a note, not as a failure.
    if shutil.which("smartctl"):
        assert snapshot["status:disk_health"] == {"ok": True, "error": ""}
        assert snapshot["disk_health"]["notes"] or snapshot["disk_health"]["drives"]
    else:
        assert snapshot["status:disk_health"]["ok"] is False
