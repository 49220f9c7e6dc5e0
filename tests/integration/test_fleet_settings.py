"""Central settings and public services with real parts: a collector on loopback, a real agent
process, the real `canhgac-collector settings` CLI writing the same SQLite file, and a real
HTTP server standing in for the district's one-stop-office service."""

from __future__ import annotations

import contextlib
import http.server
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.agent_settings import SettingsResolver, services_for
from collector.decode import stored_report
from tests.integration.harness import Running, collector_config, start_collector, wait_until
from tests.integration.test_end_to_end import scrape

BIN = Path(sys.executable).parent


class _Service(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/" else 503)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def service() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Service)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def fleet(tmp_path: Path, service: str) -> Iterator[tuple[Running, Path]]:
    """A collector declaring two public services (one healthy, one answering 503) and the
    config file the CLI reads."""
    db = tmp_path / "collector.db"
    services = [
        {"name": "Một cửa (iGate)", "url": f"{service}/", "expect_status": 200},
        {"name": "Văn bản (iOffice)", "url": f"{service}/down", "roles": ["workstation"]},
        {"name": "Chỉ máy chủ", "url": f"{service}/", "roles": ["server"]},
    ]
    running = start_collector(collector_config(db, services=services))
    config = tmp_path / "collector.yaml"
    config.write_text(
        yaml.safe_dump({"store": {"url": f"sqlite:///{db}"}, "services": services}),
        encoding="utf-8",
    )
    yield running, config
    running.app.stop(grace=0)


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "canhgac-collector"), "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@contextlib.contextmanager
def _agent(tmp_path: Path, collector: Running, log: list[str]) -> Iterator[Path]:
    """A real agent process enrolling on its first start; yields its state dir. Its stderr
    lines are appended to `log` (read when it stops)."""
    state = tmp_path / "state"
    if not state.exists():
        state.mkdir(mode=0o700)
        (state / "enroll.token").write_text(collector.token() + "\n")
    config = tmp_path / "agent.yaml"
    config.write_text(
        json.dumps(
            {
                "state_dir": str(state),
                "collector": {"address": collector.address},
                "probes": {
                    "link": {
                        "ping_gateway": False,
                        "ping_collector": False,
                        "traceroute": False,
                        "count": 1,
                    },
                    "antivirus": {"enabled": False},
                    "security": {"enabled": False},
                    "software": {"enabled": False},
                    "disk_health": {"enabled": False},
                },
            }
        )
    )
    agent = subprocess.Popen(
        [str(BIN / "canhgac-agent"), "--config", str(config), "run", "--interval", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield state
    finally:
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=30)
        log.extend(err.splitlines())
        assert agent.returncode == 0, err


def _snapshot(collector: Running) -> dict[str, Any]:
    agents = collector.app.store.list_agents()
    return collector.app.store.snapshot(agents[0].agent_id) if agents else {}


def _running_hash(collector: Running) -> str | None:
    settings = _snapshot(collector).get("settings")
    return None if settings is None else settings["hash"]


def test_central_settings_reach_a_running_agent_and_a_bad_push_is_refused(
    tmp_path: Path, fleet: tuple[Running, Path]
) -> None:
    collector, config = fleet
    log: list[str] = []
    with _agent(tmp_path, collector, log) as state:
        # The declared services alone make settings: the agent takes them on its first ack.
        wait_until(lambda: bool(_running_hash(collector)), 60, "the agent running central settings")
        first = _running_hash(collector)
        [agent] = collector.app.store.list_agents()
        checks = {
            c["name"]: (c["ok"], c["service"]) for c in _snapshot(collector)["link"]["http_checks"]
        }
        assert checks == {"Một cửa (iGate)": (True, True), "Văn bản (iOffice)": (False, True)}

        # A change by the CLI, for the agent's commune: applied without a restart.
        out = _cli(
            config,
            "settings",
            "set",
            "commune:Hạ Lang/Thanh Nhật",
            "probes.power.enabled=false",
            "delivery.pace=1s",
            "--reason",
            "thử nghiệm",
            "--author",
            "cán bộ CNTT",
        )
        assert out.returncode == 0, out.stderr
        wait_until(lambda: _running_hash(collector) not in (None, first), 60, "the new hash")
        second = _running_hash(collector)
        eff = json.loads(_cli(config, "settings", "effective", agent.agent_id, "--json").stdout)
        assert eff["hash"] == second and eff["in_sync"] is True
        assert eff["from_layers"]["delivery.pace"] == "commune:Hạ Lang/Thanh Nhật"
        assert eff["settings"]["probes"]["link"]["services"][0]["name"] == "Một cửa (iGate)"
        # The power probe left the schedule: reports after the change carry no power section.
        seq_at_change = collector.app.store.get_agent(agent.agent_id).last_seq
        wait_until(
            lambda: collector.app.store.get_agent(agent.agent_id).last_seq >= seq_at_change + 3,
            60,
            "three more reports",
        )
        newest = stored_report(*collector.app.store.history(agent.agent_id)[-1])
        assert "power" not in newest.sections and "hardware" in newest.sections

        # The collector's check passes it, the agent's own validator refuses it: the agent keeps
        # running the second settings and says why.
        out = _cli(config, "settings", "set", "defaults", "log_level=loud", "--reason", "x")
        assert out.returncode == 0, out.stderr
        wait_until(
            lambda: bool(_snapshot(collector).get("settings", {}).get("refused_hash")),
            60,
            "the refusal reported",
        )
        settings = _snapshot(collector)["settings"]
        assert settings["hash"] == second
        assert "log_level: must be one of debug, info, warning, error" in settings["refused_reason"]
        _, text = scrape(collector)
        assert f'canhgac_agent_settings_refused{{agent_id="{agent.agent_id}"' in text
        assert f'settings_hash="{second}"' in text
        eff = json.loads(_cli(config, "settings", "effective", agent.agent_id, "--json").stdout)
        assert eff["in_sync"] is False
        assert eff["running"]["refused_hash"] == eff["hash"]
        # Kept on disk for a restart without the collector.
        assert json.loads((state / "settings.json").read_text())["hash"] == second
        agent_cli = [str(BIN / "canhgac-agent"), "--config", str(tmp_path / "agent.yaml")]
        status = subprocess.run(
            [*agent_cli, "status", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        central = json.loads(status.stdout)["central_settings"]
        assert (central["hash"], central["refused_hash"]) == (second, eff["hash"])
    # Refused once: the same push is not fetched and judged again on every ack.
    refusals = [line for line in log if "refused, still running" in line]
    assert len(refusals) == 1, refusals

    # Restarted, it starts on the settings it kept before any ack arrives.
    log.clear()
    before = collector.app.store.get_agent(agent.agent_id).last_seq
    with _agent(tmp_path, collector, log):
        wait_until(
            lambda: collector.app.store.get_agent(agent.agent_id).last_seq > before + 1,
            60,
            "reports after the restart",
        )
    started = next(line for line in log if "reporting to" in line)
    assert f"central settings: {second}" in started


def test_settings_set_refuses_what_the_agent_would_refuse_naming_layer_and_key(
    fleet: tuple[Running, Path],
) -> None:
    _collector, config = fleet
    out = _cli(
        config,
        "--lang",
        "en",
        "settings",
        "set",
        "role:workstation",
        "probes.link.count=5000",
        "probes.link.ping_interval=0s",
        "collector.address=evil:4317",
        "probes.link.bogus=1",
        "--reason",
        "x",
    )
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert "role:workstation: collector: set only in the agent's own file" in lines[0]
    assert "role:workstation: probes.link: unknown key bogus" in out.stderr
    assert "role:workstation: probes.link.count: 5000 is greater than the maximum of 1000" in (
        out.stderr
    )
    assert "role:workstation: probes.link.ping_interval: must be greater than 0, not '0s'" in (
        out.stderr
    )
    # Nothing was stored.
    history = json.loads(_cli(config, "settings", "history", "--json").stdout)
    assert history == []
    bad_layer = _cli(config, "--lang", "en", "settings", "set", "village:x", "a=1", "--reason", "x")
    assert bad_layer.returncode != 0 and "a layer is one of defaults, role:NAME" in bad_layer.stderr


def test_settings_history_and_diff_keep_who_when_why(fleet: tuple[Running, Path]) -> None:
    _collector, config = fleet
    for args in (
        ("set", "district:Hạ Lang", "probes.link.count=5", "probes.link.targets=[10.0.0.1]"),
        ("set", "district:Hạ Lang", "probes.link.count=7"),
        ("unset", "district:Hạ Lang", "probes.link.targets"),
    ):
        out = _cli(config, "settings", *args, "--reason", f"bước {args[0]}", "--author", "an")
        assert out.returncode == 0, out.stderr
    history = json.loads(_cli(config, "settings", "history", "district:Hạ Lang", "--json").stdout)
    assert [(h["version"], h["author"], h["reason"]) for h in history] == [
        (1, "an", "bước set"),
        (2, "an", "bước set"),
        (3, "an", "bước unset"),
    ]
    removed = {"key": "probes.link.targets", "old": ["10.0.0.1"], "new": None}
    assert history[2]["changes"] == [removed]
    out = _cli(config, "settings", "diff", "district:Hạ Lang", "1", "3", "--json")
    diff = json.loads(out.stdout)
    assert diff["changes"] == [
        {"key": "probes.link.count", "old": 5, "new": 7},
        removed,
    ]
    text = _cli(config, "--lang", "en", "settings", "diff", "district:Hạ Lang").stdout
    assert text.splitlines() == [
        "district:Hạ Lang: version 2 -> 3",
        "- probes.link.targets: [10.0.0.1]",
    ]
    missing = _cli(config, "--lang", "en", "settings", "diff", "district:Hạ Lang", "1", "9")
    assert missing.returncode != 0 and "no version 9 (versions 1 to 3" in missing.stderr


def test_resolver_reads_layers_again_only_after_a_change(tmp_path: Path) -> None:
    """The Submit ack asks for every call: the store is asked only for the newest change id
    (at most every `refresh` seconds), and the layers only when it moved."""
    now = [0.0]
    loads: list[int] = []
    layers: dict[str, dict[str, Any]] = {"defaults": {"delivery": {"pace": 1.0}}}
    change = [1]

    def load() -> tuple[int, dict[str, dict[str, Any]]]:
        loads.append(change[0])
        return change[0], dict(layers)

    resolver = SettingsResolver(load, lambda: change[0], services_for([]), clock=lambda: now[0])
    running = start_collector(collector_config(tmp_path / "c.db"))
    try:
        running.enroll()
        [agent] = running.app.store.list_agents()
    finally:
        running.app.stop(grace=0)
    first = resolver.for_agent(agent)
    assert resolver.for_agent(agent) == first and loads == [1]
    layers["defaults"] = {"delivery": {"pace": 2.0}}
    change[0] = 2
    assert resolver.for_agent(agent) == first  # within `refresh`: not looked at yet
    now[0] = 10.0
    second = resolver.for_agent(agent)
    assert second.hash != first.hash and loads == [1, 2]
    assert second.document == {"delivery": {"pace": 2.0}}
