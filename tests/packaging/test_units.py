"""The systemd units: hardening measured by the real `systemd-analyze security`, and the
`canhgac-agent service` commands' effects on a unit directory."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.errors import AgentError
from agent.service.systemd import UNIT_NAME, USER, Systemd, render_unit

ROOT = Path(__file__).resolve().parents[2]
COLLECTOR_UNIT = ROOT / "configs/systemd/canhgac-collector.service"
AGENT_UNIT = ROOT / "agent/service/canhgac-agent.service"

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze (Debian: systemd)"
)


def exposure(unit: Path) -> float:
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", done.stdout)
    assert found, done.stdout + done.stderr
    return float(found.group(1))


def directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


@needs_systemd_analyze
def test_collector_unit_exposure_at_most_3() -> None:
    assert exposure(COLLECTOR_UNIT) <= 3.0


@needs_systemd_analyze
def test_agent_unit_as_installed_by_the_command_scores_like_the_packaged_one(
    tmp_path: Path,
) -> None:
    rendered = tmp_path / UNIT_NAME
    rendered.write_text(render_unit(Path("/srv/venv/bin/canhgac-agent"), Path("/etc/a.yaml")))
    assert exposure(rendered) == exposure(AGENT_UNIT) <= 3.0


@pytest.mark.parametrize("unit", [AGENT_UNIT, COLLECTOR_UNIT], ids=["agent", "collector"])
def test_units_run_unprivileged_with_reload_and_fd_limit(unit: Path) -> None:
    d = directives(unit.read_text(encoding="utf-8"))
    assert d["User"] != ["root"]
    assert d["NoNewPrivileges"] == ["true"]
    assert d["ExecReload"]
    assert int(d["LimitNOFILE"][0]) >= 4096


def test_agent_capabilities_are_exactly_the_commented_ones() -> None:
    text = AGENT_UNIT.read_text(encoding="utf-8")
    d = directives(text)
    caps = d["CapabilityBoundingSet"][0].split()
    assert d["AmbientCapabilities"][0].split() == caps
    assert "CAP_NET_RAW" in caps
    for cap in caps:
        assert re.search(rf"^# {cap}: \S", text, re.M), f"{cap} has no comment saying why"
    assert directives(COLLECTOR_UNIT.read_text(encoding="utf-8"))["CapabilityBoundingSet"] == [""]


def test_render_refuses_a_path_systemd_would_split() -> None:
    with pytest.raises(AgentError, match="absolute path without spaces"):
        render_unit(Path("/home/it/my venv/bin/canhgac-agent"), Path("/etc/a.yaml"))
    with pytest.raises(AgentError, match="absolute path"):
        render_unit(Path("venv/bin/canhgac-agent"), Path("/etc/a.yaml"))


class Recorder:
    """systemctl/useradd/getent as seen from outside: this machine has no systemd as PID 1."""

    def __init__(self, *, user_exists: bool) -> None:
        self.calls: list[list[str]] = []
        self.user_exists = user_exists

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        rc = 0 if argv[0] != "getent" or self.user_exists else 2
        out = {"is-enabled": "enabled\n", "is-active": "active\n"}.get(argv[-2], "")
        return subprocess.CompletedProcess(argv, rc, out, "")


def test_install_writes_the_unit_creates_the_user_and_starts(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("{}")
    run = Recorder(user_exists=False)
    path = Systemd(unit_dir=tmp_path, run=run).install(Path("/srv/v/bin/canhgac-agent"), config)
    assert path == tmp_path / UNIT_NAME
    assert f"ExecStart=/srv/v/bin/canhgac-agent --config {config} run\n" in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o644
    assert run.calls[1][:2] == ["useradd", "--system"] and run.calls[1][-1] == USER
    assert run.calls[2:] == [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "--now", UNIT_NAME],
    ]
    assert Systemd(unit_dir=tmp_path, run=run).status() == ("enabled", "active")

    again = Recorder(user_exists=True)
    Systemd(unit_dir=tmp_path, run=again).install(Path("/srv/v/bin/canhgac-agent"), config)
    assert not any(c[0] == "useradd" for c in again.calls)

    gone = Recorder(user_exists=True)
    Systemd(unit_dir=tmp_path, run=gone).uninstall()
    assert not path.exists()
    assert gone.calls == [
        ["systemctl", "disable", "--now", UNIT_NAME],
        ["systemctl", "daemon-reload"],
    ]
    with pytest.raises(AgentError, match="not installed"):
        Systemd(unit_dir=tmp_path, run=gone).uninstall()


def test_install_without_a_config_file_says_which(tmp_path: Path) -> None:
    run = Recorder(user_exists=True)
    with pytest.raises(AgentError, match="no such config file"):
        Systemd(unit_dir=tmp_path, run=run).install(Path("/v/canhgac-agent"), tmp_path / "x.yaml")
    assert run.calls == []
    assert not (tmp_path / UNIT_NAME).exists()


def test_a_failing_systemctl_is_reported_with_its_message(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("{}")

    def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        rc = 1 if argv[0] == "systemctl" else 0
        return subprocess.CompletedProcess(argv, rc, "", "System has not been booted with systemd")

    with pytest.raises(AgentError, match=r"daemon-reload failed.*not been booted"):
        Systemd(unit_dir=tmp_path, run=run).install(Path("/v/canhgac-agent"), config)
