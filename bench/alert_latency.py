"""How fast an alert reaches a person: a failing report submitted to a collector with the
shipped config and rules, to the mail in a real SMTP sink; beside it, in the same run, the
Prometheus stack's default path for the same failure (the collector's canhgac_alert_firing
scraped every 15 s, a rule evaluated every 15 s, Alertmanager's group_wait 30 s) as baseline.

Each collector trial is a new machine whose report has no antivirus product (antivirus.present:
high, no `for:`, mailed to IT staff by the example routing). The example's rate limit (10 min
per recipient) is set to 0, or every trial after the first would wait for it. The baseline
trials run together, each in its own commune (its own Alertmanager group), started at random
moments so that they fall at every phase of the scrape and evaluation cycles. Run with
`make bench` (about two minutes, most of it the baseline's waiting).
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from agent.model import Antivirus, Report
from agent.transport.client import CollectorClient, MachineFacts
from agent.transport.encode import encode_report
from collector.app import CollectorApp
from collector.config import load_config
from collector.model import Placement
from tests.integration.smtp_server import Recorder, smtp_server

ROOT = Path(__file__).resolve().parent.parent
TRIALS = 20
BASELINE_TRIALS = 5
BASELINE_DEADLINE = 150.0  # seconds; the expected path is 30-75 s
COMMUNES = ("Thanh Nhật", "An Lạc", "Cô Ngân", "Đồng Loan", "Đức Quang", "Kim Loan")
GOAL = 2.0
FROM = "canhgac@halang.caobang.gov.vn"  # the example config's from_address
AM_FROM = "alertmanager@bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _config(tmp: Path, smtp_port: int) -> Any:
    raw: dict[str, Any] = yaml.safe_load(
        (ROOT / "configs" / "collector.example.yaml").read_text(encoding="utf-8")
    )
    raw["store"]["url"] = f"sqlite:///{tmp / 'c.db'}"
    raw["sites_file"] = str(ROOT / "configs" / "sites.example.yaml")
    raw["rules"]["path"] = str(ROOT / "rules")
    notify = raw["notify"]
    notify["enabled"] = True
    notify["rate_limit"] = 0
    notify["smtp"].update(host="127.0.0.1", port=smtp_port, security="plain", username="")
    path = tmp / "collector.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return load_config(path)


class _Stamped(Recorder):
    """The sink, stamping each accepted message with the time its DATA was accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[float] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        self.stamps.append(time.perf_counter())
        return reply


def _arrival(rec: _Stamped, sender: str, word: str, timeout: float) -> float | None:
    """When the sink accepted the first message from `sender` naming `word` (a host or a
    commune)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for r, at in zip(list(rec.received), list(rec.stamps), strict=False):
            if r.mail_from != sender:
                continue
            text = str(r.message["Subject"]) + "".join(
                str(p.get_content()) for p in r.message.walk() if p.get_content_maintype() == "text"
            )
            if word in text:
                return at
        time.sleep(0.005)
    return None


def _enroll(address: str, token: str, host: str) -> CollectorClient:
    with CollectorClient(address) as c:
        e = c.enroll(token, MachineFacts(f"bench-{host}", host, "Windows", "10", "bench"))
    return CollectorClient(address, secret=e.secret)


def _failing_report() -> bytes:
    """A report whose antivirus section has no product: antivirus.present fails at once."""
    return encode_report(
        Report(
            collected_at_ms=int(time.time() * 1000),
            boot_id="bench",
            agent_version="bench",
            seq=1,
            antivirus=Antivirus(products=(), realtime="unknown"),
        )
    )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _collector_trials(app: CollectorApp, address: str, rec: _Stamped) -> list[float]:
    place = Placement("Cao Bằng", "Hạ Lang", "Thanh Nhật", "", "workstation")
    _, token = app.store.create_token(place, 3600, time.time(), max_uses=TRIALS)
    out = []
    for i in range(TRIALS):
        host = f"bench-latency-{i:02d}"
        client = _enroll(address, token, host)
        start = time.perf_counter()
        assert client.submit([_failing_report()]).stored == [1]
        got = _arrival(rec, FROM, host, 30.0)
        client.close()
        if got is None:
            raise RuntimeError(f"no mail for {host} within 30 s")
        out.append(got - start)
    return out


_PROM_RULES = """groups:
  - name: bench
    rules:
      - alert: CanhGacHighAlert
        expr: canhgac_alert_firing{severity="high", rule="antivirus.present"} > 0
        labels:
          severity: high
"""


def _baseline_trials(
    app: CollectorApp, address: str, rec: _Stamped, tmp: Path, smtp_port: int
) -> list[float] | None:
    prometheus, alertmanager = shutil.which("prometheus"), shutil.which("prometheus-alertmanager")
    if prometheus is None or alertmanager is None:
        print("  baseline skipped: prometheus / prometheus-alertmanager not installed")
        return None
    am_port, prom_port = _free_port(), _free_port()
    (tmp / "am.yml").write_text(
        yaml.safe_dump(
            {
                "global": {
                    "smtp_smarthost": f"127.0.0.1:{smtp_port}",
                    "smtp_from": AM_FROM,
                    "smtp_require_tls": False,
                },
                # Alertmanager's defaults for the grouping times, written out.
                "route": {
                    "receiver": "it",
                    "group_by": ["alertname", "district", "commune"],
                    "group_wait": "30s",
                    "group_interval": "5m",
                    "repeat_interval": "4h",
                },
                "receivers": [{"name": "it", "email_configs": [{"to": "it@bench"}]}],
            }
        ),
        encoding="utf-8",
    )
    (tmp / "rules.yml").write_text(_PROM_RULES, encoding="utf-8")
    (tmp / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
                "rule_files": [str(tmp / "rules.yml")],
                "alerting": {
                    "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
                },
                "scrape_configs": [
                    {
                        "job_name": "canhgac",
                        "static_configs": [{"targets": [f"127.0.0.1:{app.http_port}"]}],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    procs = [
        subprocess.Popen(
            [
                alertmanager,
                f"--config.file={tmp / 'am.yml'}",
                f"--storage.path={tmp / 'am'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [
                prometheus,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:
        for url in (f"http://127.0.0.1:{am_port}/-/ready", f"http://127.0.0.1:{prom_port}/-/ready"):
            for _ in range(200):
                try:
                    with urllib.request.urlopen(url, timeout=1):
                        break
                except OSError:
                    time.sleep(0.1)
        rng = random.Random(20)
        starts: dict[str, float] = {}
        lock = threading.Lock()

        def trial(commune: str, delay: float) -> None:
            time.sleep(delay)
            place = Placement("Cao Bằng", "Hạ Lang", commune, "", "workstation")
            _, token = app.store.create_token(place, 3600, time.time())
            client = _enroll(address, token, f"bench-prom-{commune}")
            with lock:
                starts[commune] = time.perf_counter()
            client.submit([_failing_report()])
            client.close()

        communes = COMMUNES[1 : 1 + BASELINE_TRIALS]
        threads = [threading.Thread(target=trial, args=(c, rng.uniform(0, 15.0))) for c in communes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        deadline = time.monotonic() + BASELINE_DEADLINE
        out = []
        for c in communes:  # each waits at most what is left of the common deadline
            got = _arrival(rec, AM_FROM, c, max(0.0, deadline - time.monotonic()))
            if got is not None:
                out.append(got - starts[c])
        return out
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)


def main() -> dict[str, float]:
    stamped = _Stamped()
    with tempfile.TemporaryDirectory() as d, smtp_server(stamped) as (_, smtp_port):
        tmp = Path(d)
        app = CollectorApp(
            _config(tmp, smtp_port), grpc_address="127.0.0.1:0", http_address="127.0.0.1:0"
        )
        app.start()
        address = f"127.0.0.1:{app.grpc_port}"
        try:
            ours = _collector_trials(app, address, stamped)
            baseline = _baseline_trials(app, address, stamped, tmp, smtp_port)
        finally:
            app.stop(grace=0)
    figures = {
        "collector_p50_seconds": _percentile(ours, 0.5),
        "collector_p99_seconds": _percentile(ours, 0.99),
        "collector_max_seconds": max(ours),
    }
    print(f"failing report -> mail in a real SMTP sink ({TRIALS} trials; goal <= {GOAL:g} s)")
    print(f"{'':34}{'p50':>8}{'p99':>8}{'max':>8}")
    print(
        f"{'collector (shipped rules, config)':34}{figures['collector_p50_seconds']:>8.3f}"
        f"{figures['collector_p99_seconds']:>8.3f}{figures['collector_max_seconds']:>8.3f}"
    )
    if baseline:
        figures["baseline_trials"] = len(baseline)
        figures["baseline_p50_seconds"] = _percentile(baseline, 0.5)
        figures["baseline_max_seconds"] = max(baseline)
        figures["baseline_min_seconds"] = min(baseline)
        print(
            f"{f'Prometheus path ({len(baseline)} trials)':34}"
            f"{figures['baseline_p50_seconds']:>8.1f}{'':>8}{figures['baseline_max_seconds']:>8.1f}"
            f"   (min {figures['baseline_min_seconds']:.1f})"
        )
        ratio = figures["baseline_p50_seconds"] / figures["collector_p50_seconds"]
        figures["baseline_over_collector_p50"] = ratio
        print(f"  the collector's mail arrives {ratio:.0f}x sooner at p50")
    return figures


if __name__ == "__main__":
    main()
