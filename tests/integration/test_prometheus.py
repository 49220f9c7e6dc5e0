"""A real Prometheus scrapes a collector fed by a simulated fleet; every dashboard query answers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from bench.fleet import enroll_fleet, enroll_rooms, tokens_for
from collector.alerts.notify.digest import build_digest
from collector.indicators import MACHINE_INDICATORS, current
from collector.model import MEETING_SECTION
from collector.report import Scope, build_report, parse_period
from collector.sites import load_sites
from scripts.dashboards import DASHBOARDS, render
from tests.integration.harness import (
    Running,
    collector_config,
    free_port,
    start_collector,
    wait_until,
)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PROM_DIR = REPO / "configs" / "prometheus"
SITES = REPO / "configs" / "sites.example.yaml"
FLEET = 52
STALE_AFTER = 360.0


def _need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is missing: scripts/install-test-deps.sh should install it")
        pytest.skip(f"{binary} not installed (apt-get install prometheus)")
    return path


def _query(base: str, expr: str) -> dict[str, Any]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        body: dict[str, Any] = json.load(r)
    assert body["status"] == "success", body
    data: dict[str, Any] = body["data"]
    return data


@pytest.fixture(scope="module")
def fleet_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("fleet")
    running = start_collector(
        collector_config(
            tmp / "c.db",
            sites_file=str(SITES),
            rules={"path": str(REPO / "rules")},
            # The fleet reports once: stale only after 3 × 2 min, well past this module's tests.
            report_interval=STALE_AFTER / 3,
        )
    )
    sites = load_sites(SITES)
    tokens = tokens_for(running.app.store, sites)
    agents, rng = enroll_fleet(running.address, tokens, FLEET)
    rooms = enroll_rooms(
        running.address, tokens_for(running.app.store, sites, role="meeting-room"), rng
    )
    for a in agents + rooms:
        assert a.report(rng) == [1]
    yield running
    for a in agents + rooms:
        a.client.close()
    running.app.stop(grace=0)


@pytest.fixture(scope="module")
def prometheus(fleet_collector: Running, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = _need("prometheus")
    tmp = tmp_path_factory.mktemp("prometheus")
    cfg = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    cfg["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    cfg["rule_files"] = [str(PROM_DIR / f) for f in cfg["rule_files"]]
    for job in cfg["scrape_configs"]:  # the fleet job and the collectors' own health job
        job["scrape_timeout"] = "1s"
        job["static_configs"][0]["targets"] = [f"127.0.0.1:{fleet_collector.app.http_port}"]
    config = tmp / "prometheus.yml"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "prometheus.log").open("w"),
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def rules_evaluated() -> bool:
            try:
                return bool(_query(base, "canhgac:coverage:ratio")["result"])
            except OSError:
                return False

        wait_until(rules_evaluated, 60, "Prometheus to scrape and evaluate the rollups")
        time.sleep(3)  # a few more scrapes, so rate() over counters has points to work on
        yield base
    finally:
        proc.terminate()
        proc.wait(30)


def test_every_panel_query_returns_data(prometheus: str) -> None:
    checked = 0
    for d in DASHBOARDS:
        for panel in render(d)["panels"]:
            for target in panel["targets"]:
                expr = target["expr"].replace("$__rate_interval", "1m")
                for var in ("district", "commune", "host"):
                    expr = expr.replace(f"${var}", ".*")
                data = _query(prometheus, expr)
                where = f"{d.uid} / {panel['title']} / {target['expr']}"
                assert data["resultType"] == "vector", where
                assert data["result"], f"no data: {where}"
                if panel["type"] == "stat":
                    assert len(data["result"]) == 1, where
                checked += 1
    assert checked >= 20


def test_rollups_match_the_fleet(prometheus: str, fleet_collector: Running) -> None:
    reporting = _query(prometheus, "sum(canhgac:agents_reporting:sum)")["result"]
    assert float(reporting[0]["value"][1]) == FLEET + 15  # 13 commune rooms + 2 district rooms
    planned = _query(prometheus, "sum(canhgac:meeting_rooms_expected:sum)")["result"]
    assert float(planned[0]["value"][1]) == 15
    communes = _query(prometheus, 'canhgac:coverage:ratio{commune!=""}')["result"]
    assert len(communes) == 13  # every commune-level unit of Hạ Lang has machines reporting
    thanh_nhat = [r for r in communes if r["metric"]["commune"] == "Thanh Nhật"]
    assert thanh_nhat and 0 < float(thanh_nhat[0]["value"][1]) <= 1
    # Meeting rooms: 2 district rooms + 13 communes planned; ready = GREEN or AMBER in the store.
    go = sum(
        1
        for _, snap in fleet_collector.app.store.fleet()
        if snap.get("meeting_room", {}).get("readiness", {}).get("state") in ("green", "amber")
    )
    expected = _query(prometheus, "canhgac:meeting_rooms_expected:sum")["result"]
    ready = _query(prometheus, "canhgac:meeting_rooms_ready:count")["result"]
    assert [(r["metric"]["district"], float(r["value"][1])) for r in expected] == [("Hạ Lang", 15)]
    assert [(r["metric"]["district"], float(r["value"][1])) for r in ready] == [("Hạ Lang", go)]
    assert go > 0


def _values(base: str, expr: str) -> dict[tuple[str, ...], float]:
    out = {}
    for r in _query(base, expr)["result"]:
        m = r["metric"]
        key = tuple(m.get(k, "") for k in ("indicator", "district", "commune"))
        out[key] = float(r["value"][1])
    return out


def test_digest_report_and_recording_rules_agree(prometheus: str, fleet_collector: Running) -> None:
    """One definition: the digest's figures, the report's, the collector's indicator metrics
    and the recording rules a real Prometheus evaluates over them are the same numbers."""
    store = fleet_collector.app.store
    sites = load_sites(SITES)
    district = "Hạ Lang"

    def figures_now() -> tuple[Any, dict[str, str], dict[tuple[str, ...], float]]:
        now = time.time()
        (fig,) = current(store, sites, now=now, stale_after=STALE_AFTER)
        digest = build_digest(
            store,
            district,
            period="daily",
            since=now - 86400,
            now=now,
            stale_after=STALE_AFTER,
            sites=sites,
            title=str,
        )
        printed = {row["en"]: row["value"] for row in digest["indicators"]}
        prom = _values(prometheus, "canhgac:indicator_machines:ratio")
        prom |= _values(prometheus, "canhgac:indicator_communes:ratio")
        return fig, printed, prom

    def agree() -> bool:
        fig, _, prom = figures_now()
        if not fig.machines("antivirus").met:
            return False  # the rules have not judged the fleet yet
        want = {(i.id, district, ""): fig.machines(i.id).share for i in MACHINE_INDICATORS}
        want[("connected", district, "")] = fig.communes_connected().share
        want[("room-ready", district, "")] = fig.communes_room_ready().share
        return all(abs(prom.get(k, -1) - v) < 1e-9 for k, v in want.items() if v is not None)

    wait_until(agree, 60, "Prometheus's recording rules to match the collector's indicators")
    fig, printed, _ = figures_now()
    rooms = fig.communes_room_ready()
    # Independently of the indicator code: communes with a GREEN or AMBER room in the store.
    go = {
        a.placement.commune
        for a, snap in store.fleet()
        if a.placement.commune
        and snap.get(MEETING_SECTION, {}).get("readiness", {}).get("state") in ("green", "amber")
    }
    assert (rooms.met, rooms.of) == (len(go), 13)
    assert printed["Communes with a ready online meeting room"] == str(rooms)
    assert printed["Machines reporting"] == f"100% ({FLEET + 15}/{FLEET + 15})"
    av = fig.machines("antivirus")
    assert printed[MACHINE_INDICATORS[0].en] == str(av)
    assert 0 < av.met <= av.of == FLEET + 15
    # The report prints the same figures (its period part reads the rollups, not these).
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    month = parse_period(datetime.now(zone).strftime("%Y-%m"), None, None, zone)
    report = build_report(
        store, sites, month, Scope(district), now=time.time(), stale_after=STALE_AFTER
    )
    (doc,) = report.as_json()["districts"]
    assert doc["machines"]["antivirus"] == {"met": av.met, "of": av.of, "share": av.share}
    assert doc["communes_room_ready"]["met"] == rooms.met
    shown = dict(report.indicator_rows("en"))
    assert str(shown["Communes with a ready online meeting room"]) == str(rooms)
    per_commune = _values(prometheus, "canhgac:antivirus_current:ratio")
    thanh_nhat = fig.machines("antivirus", "Thanh Nhật")
    assert per_commune[("antivirus", district, "Thanh Nhật")] == thanh_nhat.share


def test_promtool_accepts_the_shipped_config_and_rules() -> None:
    promtool = _need("promtool")
    config = subprocess.run(
        [promtool, "check", "config", str(PROM_DIR / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert config.returncode == 0, config.stdout + config.stderr
    rules = subprocess.run(
        [promtool, "check", "rules", *map(str, sorted(PROM_DIR.glob("canhgac.*.yml")))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_shipped_alerts_group_as_the_collector_does() -> None:
    """promtool test rules (Prometheus' own rule engine) on made-up series: a district out
    is one alert, a commune out one, a machine only outside them; the collectors' health."""
    promtool = _need("promtool")
    test = REPO / "tests" / "fixtures" / "prometheus" / "alerts_test.yml"
    done = subprocess.run(
        [promtool, "test", "rules", str(test)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_finds_no_naming_problems_in_our_metrics(fleet_collector: Running) -> None:
    promtool = _need("promtool")
    url = f"http://127.0.0.1:{fleet_collector.app.http_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read()
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, check=False
    )
    assert lint.returncode == 0, lint.stdout.decode() + lint.stderr.decode()
