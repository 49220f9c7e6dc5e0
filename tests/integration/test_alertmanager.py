"""Firing and resolved alerts reach a real Alertmanager (Debian prometheus-alertmanager)
started by the test on loopback."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.alerts.notify.config import NotifyConfig
from collector.alerts.notify.notifier import Notifier
from collector.compliance.loader import load_pack
from collector.model import Alert, Labels
from collector.store import AlertWrite, Store

RULES = Path(__file__).parent.parent.parent / "rules"
BINARY = "prometheus-alertmanager"


def _free_port() -> int:
    # Alertmanager does not report the port it bound, so ask the kernel for a free one first.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def run_alertmanager(tmp_path: Path, config_text: str) -> Iterator[str]:
    """Debian's Alertmanager on loopback with `config_text`; yields its URL."""
    exe = shutil.which(BINARY) or shutil.which(BINARY, path="/usr/bin")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{BINARY} is not installed (scripts/install-test-deps.sh)")
        pytest.skip(f"{BINARY} is not installed: apt-get install prometheus-alertmanager")
    config = tmp_path / "alertmanager.yml"
    config.write_text(config_text, encoding="utf-8")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            exe,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "alertmanager.log").open("w"),
    )
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        else:
            pytest.fail("alertmanager not ready: " + (tmp_path / "alertmanager.log").read_text())
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    with run_alertmanager(
        tmp_path, 'route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n'
    ) as url:
        yield url


def _alerts(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5) as r:
        out: list[dict[str, Any]] = json.loads(r.read())
        return out


def _ts(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_firing_then_resolved_in_alertmanager(tmp_path: Path, alertmanager: str) -> None:
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    pack = load_pack(RULES, 300.0)
    cfg = NotifyConfig.model_validate(
        {
            "enabled": True,
            "grafana_url": "http://grafana.hoaan.local/d/canhgac",
            "alertmanager": {"url": alertmanager, "resend_every": "60s"},
        }
    )
    n = Notifier(store, cfg, pack=lambda: pack)
    lab = Labels("district.uplink-down", "district:Hòa An", "critical", "Hòa An", "", "", "")
    now = time.time()
    alert = Alert(lab, "firing", started_at=now - 60, last_observed_at=now, fired_at=now - 30)
    pending = Alert(
        Labels("agent.silent", "a1", "high", "Hòa An", "Thanh Nhật", "UBND", "pc-1"),
        "pending",
        started_at=now,
        last_observed_at=now,
    )
    notified = Alert(**{**alert.__dict__, "notified": True})
    # Notified, but medium: not what the routing forwards (notify.alertmanager.severities).
    medium = Alert(
        Labels("hardware.disk-free", "a2", "medium", "Hòa An", "Thanh Nhật", "UBND", "pc-2"),
        "firing",
        started_at=now - 60,
        last_observed_at=now,
        fired_at=now - 30,
        notified=True,
    )
    upserts = {a.key: a for a in (notified, pending, medium)}
    store.alerts.apply_alerts(AlertWrite(upserts=upserts, now=now))
    try:
        n.tick(now)
        (got,) = _alerts(alertmanager)  # neither the pending nor the medium alert is sent
        assert got["labels"] == {
            "alertname": "district.uplink-down",
            "subject": "district:Hòa An",
            "severity": "critical",
            "district": "Hòa An",
            "source": "canhgac",
        }
        uplink = pack.get("district.uplink-down")
        assert uplink is not None
        assert got["annotations"]["summary"] == uplink.title.vi
        assert got["annotations"]["summary_en"] == uplink.title.en
        assert got["generatorURL"] == "http://grafana.hoaan.local/d/canhgac"
        assert got["status"]["state"] == "active"
        first_end = _ts(got["endsAt"])
        assert first_end > now
        n.tick(now + 30)  # within resend_every, nothing changed: no post
        assert _ts(_alerts(alertmanager)[0]["endsAt"]) == first_end
        n.tick(now + 60)  # re-sent while firing: endsAt moves on
        assert _ts(_alerts(alertmanager)[0]["endsAt"]) == pytest.approx(first_end + 60, abs=1)
        store.alerts.apply_alerts(AlertWrite(deletes=[notified.key], now=now + 61))
        resolved_at = time.time()
        n.tick(resolved_at)
        # Alertmanager lists only unresolved alerts: gone long before the endsAt of the last
        # re-send means the resolve post set endsAt to the resolve time.
        assert _alerts(alertmanager) == []
        assert time.time() < first_end
    finally:
        store.close()


def test_example_route_passes_amtool() -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("amtool (prometheus-alertmanager) is not installed")
        pytest.skip("amtool is not installed: apt-get install prometheus-alertmanager")
    example = Path(__file__).parent.parent.parent / "configs" / "alertmanager" / "alertmanager.yml"
    out = subprocess.run(
        [amtool, "check-config", str(example)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout
