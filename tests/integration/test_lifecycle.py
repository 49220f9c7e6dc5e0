"""An agent's end of life, as an operator lives it: `agent revoke` and `agent retire` from the
real CLI against a running collector (port 0, a real SQLite file), real agent processes that
stop delivering for good and say so, and the figures a retired machine leaves (docs/fleet.md)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from collector.config import CollectorConfig
from collector.model import Placement, Report
from collector.store import MachineFacts, Store
from tests.integration.harness import Running, start_collector, stored_seqs, wait_until
from tests.integration.test_cli import collector_cli, run
from tests.integration.test_end_to_end import samples, scrape

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


def _cli_config(running: Running, tmp_path: Path) -> Path:
    """A config for `canhgac-collector` naming the running collector's store."""
    config = tmp_path / "collector.yaml"
    config.write_text(f"store:\n  url: {running.app.cfg.store.url}\n", encoding="utf-8")
    return config


def _agent_config(running: Running, tmp_path: Path) -> Path:
    """An installed agent's config: a token left in its state dir, a short backoff and a
    throughput measurement every second (an agent that kept calling after a refusal would be
    seen doing it many times a second)."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "enroll.token").write_text(running.token() + "\n")
    config = tmp_path / "agent.yaml"
    config.write_text(
        json.dumps(
            {
                "state_dir": str(state),
                "collector": {"address": running.address},
                "delivery": {"backoff_initial": "200ms", "backoff_max": "1s"},
                # Throughput from the collector at every cycle: once refused, it must stop too.
                "probes": {
                    "link": {
                        "ping_gateway": False,
                        "ping_collector": False,
                        "traceroute": False,
                        "throughput": {"every": "1s", "bytes": "1KiB"},
                    }
                },
            }
        )
    )
    return config


def _start(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "canhgac-agent"), "--config", str(config), "run", "--interval", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(agent: subprocess.Popen[str]) -> str:
    agent.send_signal(signal.SIGTERM)
    _, err = agent.communicate(timeout=30)
    assert agent.returncode == 0, err
    return err


def _status(config: Path) -> tuple[int, dict[str, Any], str]:
    """`status` as JSON and as text: (exit code, document, first text line)."""
    agent = str(BIN / "canhgac-agent")
    as_json = run(agent, "--config", str(config), "status", "--json")
    text = run(agent, "--config", str(config), "status")
    assert as_json.returncode == text.returncode, text.stderr
    return as_json.returncode, json.loads(as_json.stdout), text.stdout.splitlines()[0]


def _refusals(running: Running) -> float:
    """Calls the collector refused for their credential, from its own metrics."""
    got = samples(scrape(running, "/metrics/collector")[1], "canhgac_collector_rejections_total")
    return sum(v for labels, v in got if labels["reason"] == "unauthenticated")


def _waiting(config: Path) -> int:
    return int(_status(config)[1]["spool"]["reports_waiting"])


@pytest.mark.parametrize("ending", ["revoke", "retire"])
def test_a_refused_agent_stops_delivering_says_why_and_a_restart_sends_nothing(
    collector: Running, tmp_path: Path, ending: str
) -> None:
    db = Path(collector.app.cfg.store.url.removeprefix("sqlite:///"))
    cli = _cli_config(collector, tmp_path)
    config = _agent_config(collector, tmp_path)
    agent = _start(config)
    try:
        wait_until(lambda: sum(map(len, stored_seqs(db).values())) >= 2, 60, "two reports")
        (record,) = collector.app.store.list_agents()
        assert _status(config)[0] == 0
        extra = ["--reason", "máy hỏng, thay máy mới"] if ending == "retire" else []
        done = collector_cli(cli, "agent", ending, record.agent_id, *extra)
        assert done.returncode == 0, done.stderr
        state = tmp_path / "state"
        wait_until((state / "refused.json").exists, 30, "the refusal recorded")
        before = _refusals(collector)
        # Collection goes on into the spool; delivery does not come back: at 1 report a
        # second and a backoff of at most 1 s, a retrying agent would be refused again here.
        waiting = _waiting(config)
        wait_until(lambda: _waiting(config) >= waiting + 3, 60, "three more reports spooled")
        assert _refusals(collector) == before
    finally:
        err = _stop(agent)
    word = "revoked" if ending == "revoke" else "retired"
    refused = [line for line in err.splitlines() if f"{word} by the collector" in line]
    assert len(refused) == 1, err  # one error line, with what to do
    assert " ERROR " in refused[0]
    if ending == "revoke":
        assert "re-enroll with a new token" in refused[0]
    else:
        assert "out of service" in refused[0] and "máy hỏng, thay máy mới" in refused[0]
    assert "delivery stopped" in refused[0]

    code, document, first = _status(config)
    assert code == 2
    assert first.startswith(f"CRITICAL: {word} by the collector at ")
    assert document["status"] == "CRITICAL"
    assert document["refused"]["reason"] == word
    assert document["agent_id"] == record.agent_id

    # A restart (the service manager, a reboot) does not knock on the collector again.
    stored = stored_seqs(db)
    before = _refusals(collector)
    agent = _start(config)
    try:
        waiting = _waiting(config)
        wait_until(lambda: _waiting(config) >= waiting + 2, 60, "two reports spooled")
    finally:
        err = _stop(agent)
    assert _refusals(collector) == before
    assert stored_seqs(db) == stored
    assert "not delivering" in err and f"{word} by the collector" in err


def test_a_new_token_left_in_the_state_dir_enrolls_a_revoked_agent_again(
    collector: Running, tmp_path: Path
) -> None:
    """How an MSI-installed machine comes back: the operator leaves a new token in
    enroll.token and restarts the service; the spool collected meanwhile is delivered."""
    db = Path(collector.app.cfg.store.url.removeprefix("sqlite:///"))
    config = _agent_config(collector, tmp_path)
    state = tmp_path / "state"
    agent = _start(config)
    try:
        wait_until(lambda: sum(map(len, stored_seqs(db).values())) >= 1, 60, "a report")
        (old,) = collector.app.store.list_agents()
        cli = _cli_config(collector, tmp_path)
        assert collector_cli(cli, "agent", "revoke", old.agent_id).returncode == 0
        wait_until((state / "refused.json").exists, 30, "the refusal recorded")
    finally:
        _stop(agent)
    (state / "enroll.token").write_text(collector.token() + "\n")
    agent = _start(config)
    try:
        wait_until(lambda: len(stored_seqs(db)) == 2, 60, "reports of the new agent id")
    finally:
        err = _stop(agent)
    assert not (state / "refused.json").exists() and not (state / "enroll.token").exists()
    assert "enroll.token deleted" in err
    assert _status(config)[0] == 0


def test_a_retired_machine_leaves_the_figures_and_stays_in_the_audit_trail(
    store_url: str, tmp_path: Path
) -> None:
    """Two machines of Thanh Nhật report; one is retired from the CLI: gone from /metrics'
    fleet and indicators, from `agent list`, still in `agent list --all` and `agent show`.
    On SQLite and on a real PostgreSQL."""
    collector = start_collector(
        CollectorConfig.model_validate({"store": {"url": store_url}, "report_interval": 15})
    )
    try:
        _retire_one_of_two(collector, tmp_path)
    finally:
        collector.app.stop(grace=0)


def _retire_one_of_two(collector: Running, tmp_path: Path) -> None:
    cli = _cli_config(collector, tmp_path)
    keep, gone = collector.enroll("m-1", "tn-01"), collector.enroll("m-2", "tn-02")
    for secret in (keep, gone):
        with collector.client(secret) as c:
            assert c.submit([]).stored == []
    gone_id = gone.split(".")[0]

    def enrolled() -> float:
        got = samples(scrape(collector)[1], "canhgac_indicator_machines_enrolled")
        return sum(v for labels, v in got if labels.get("commune") == "Thanh Nhật")

    def up_agents() -> set[str]:
        return {
            labels["agent_id"] for labels, _ in samples(scrape(collector)[1], "canhgac_agent_up")
        }

    assert enrolled() == 2 and gone_id in up_agents()
    done = collector_cli(cli, "agent", "retire", gone_id, "--reason", "thanh lý")
    assert done.returncode == 0, done.stderr
    assert "retired" in done.stdout
    assert enrolled() == 1 and up_agents() == {keep.split(".")[0]}

    listed = json.loads(collector_cli(cli, "agent", "list", "--json").stdout)
    assert [a["hostname"] for a in listed] == ["tn-01"]
    every = json.loads(collector_cli(cli, "agent", "list", "--all", "--json").stdout)
    (retired,) = [a for a in every if a["agent_id"] == gone_id]
    assert retired["state"] == "retired" and retired["retired_reason"] == "thanh lý"
    assert retired["retired_at"] is not None and retired["revoked_at"] is not None
    shown = json.loads(collector_cli(cli, "agent", "show", gone_id, "--json").stdout)
    assert shown["retired_reason"] == "thanh lý"
    again = collector_cli(cli, "agent", "retire", gone_id)
    assert again.returncode == 1 and "already retired" in again.stderr
    with collector.client(gone) as c, pytest.raises(Exception, match="retired") as e:
        c.submit([])
    assert getattr(e.value, "final", False)


ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
OCTOBER = datetime(2026, 10, 1, tzinfo=ZONE).timestamp()
HOURS = 31 * 24
RETIRED_AFTER = 15 * 24  # pc-b is taken out of service after 15 days


def test_a_period_report_counts_a_retired_machine_for_its_time_in_service(
    tmp_path: Path,
) -> None:
    """October: pc-a reports every hour, pc-b for 15 days and is then retired. The month's
    report expects of pc-b only its reports of those days (all delivered: 100 %), and its
    antivirus share counts those hours; the state now leaves it out."""
    from collector.compliance.loader import load_pack  # noqa: PLC0415
    from collector.config import RetentionConfig  # noqa: PLC0415
    from collector.retention import RetentionPass  # noqa: PLC0415

    db = tmp_path / "c.db"
    config = tmp_path / "collector.yaml"
    config.write_text(
        f"store:\n  url: sqlite:///{db}\nreport_interval: 1h\n"
        f"sites_file: {REPO / 'configs' / 'sites.example.yaml'}\n"
        f"rules:\n  path: {REPO / 'rules'}\n",
        encoding="utf-8",
    )
    store = Store(f"sqlite:///{db}")
    ids = {}
    for name in ("pc-a", "pc-b"):
        place = Placement("Cao Bằng", "Hạ Lang", "Thanh Nhật", "", "workstation")
        _, token = store.create_token(place, 1e9, OCTOBER)
        facts = MachineFacts(f"m-{name}", name, "Windows", "10", "0.1.0")
        ids[name] = store.enroll(token, facts, OCTOBER).agent.agent_id
    for name, agent in ids.items():
        hours = HOURS if name == "pc-a" else RETIRED_AFTER
        for h in range(hours):
            at = OCTOBER + h * 3600 + 60
            av = {
                "products": [{"name": "Windows Defender", "state": "on"}],
                "realtime": "on",
                "signature_updated_at": at - 3600,
            }
            store.ingest(agent, [Report(h + 1, "b", at, "0.1.0", {"antivirus": av})], at + 5)
    store.retire_agent(ids["pc-b"], OCTOBER + RETIRED_AFTER * 3600, "thanh lý")
    rules = load_pack(REPO / "rules")
    RetentionPass(
        store,
        RetentionConfig(raw=400 * 86400.0),
        report_interval=3600.0,
        reachable_within=3 * 3600.0,
        rules=rules.agent_rules,
        pace=lambda: lambda: None,
    ).run(OCTOBER + 40 * 86400)
    store.close()
    out = collector_cli(config, "report", "--period", "2026-10", "--json")
    assert out.returncode == 0, out.stderr
    (d,) = json.loads(out.stdout)["districts"]
    period = d["period"]
    # Expected: 744 of pc-a, 360 of pc-b (none after its retirement); all delivered.
    assert period["reports_delivered_share"] == pytest.approx(1.0)
    assert period["commune_connected_share"]["Thanh Nhật"] == 1.0
    assert period["machine_share"]["antivirus"] == 1.0
    # Now: one machine enrolled, the retired one counts nowhere.
    assert d["machines"]["reporting"]["of"] == 1
    # The export's machines: pc-b has its row, its figures of the 15 days, and when it left.
    made = collector_cli(config, "export", "--period", "2026-10", "--out", str(tmp_path / "x"))
    assert made.returncode == 0, made.stderr
    wb = openpyxl.load_workbook(Path(made.stdout.strip()) / "canhgac.xlsx")
    header, *rows = wb["machines"].iter_rows(values_only=True)
    by_host = {r[header.index("Host")]: dict(zip(header, r, strict=True)) for r in rows}
    assert set(by_host) == {"pc-a", "pc-b"}
    retired = "Retired at (Asia/Ho_Chi_Minh)"
    assert by_host["pc-b"][retired] is not None and by_host["pc-a"][retired] is None
    assert by_host["pc-b"]["Reports received / expected (%)"] == pytest.approx(1.0)
    assert by_host["pc-b"]["Reporting"] == "no"
