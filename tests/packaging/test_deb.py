"""The .deb packages on this machine: built by packaging/deb/build.sh (`make deb`), installed as
root, the installed collector and agent run as their system users against each other on
loopback, then removed and purged. systemd is not PID 1 here: the processes are started the
way the units would start them (user, capability), not by systemd."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("canhgac-agent", "canhgac-collector")
STORE = Path("/var/lib/canhgac/canhgac.db")

pytestmark = [
    pytest.mark.slow,
    # Two venvs built and installed, lintian over both: minutes on 2 shared cores.
    pytest.mark.timeout(1200),
    pytest.mark.skipif(os.geteuid() != 0, reason="installs packages: needs root"),
    pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb (Debian: dpkg)"),
]


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {done.returncode}\n{done.stdout}{done.stderr}")
    return done


def installed(pkg: str) -> bool:
    done = sh("dpkg-query", "-W", "-f=${Status}", pkg, check=False)
    return "installed" in done.stdout and "not-installed" not in done.stdout


def as_user(user: str, *argv: str, caps: str = "-all") -> list[str]:
    """What the unit does before ExecStart: that user, its groups, only these capabilities."""
    return [
        "setpriv",
        f"--reuid={user}",
        f"--regid={user}",
        "--init-groups",
        f"--inh-caps={caps}",
        f"--ambient-caps={caps}",
        "--no-new-privs",
        "--",
        *argv,
    ]


@contextlib.contextmanager
def process(argv: list[str], log: Path) -> Iterator[subprocess.Popen[str]]:
    """`argv` running with its output in `log` (read it after the block); SIGTERM at the end."""
    with log.open("w") as out:
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            yield p
        finally:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def reports_stored() -> int:
    if not STORE.exists():
        return 0
    with contextlib.closing(sqlite3.connect(STORE)) as conn:
        try:
            n: int = conn.execute("SELECT count(*) FROM reports").fetchone()[0]
        except sqlite3.OperationalError:  # schema not there yet
            return 0
    return n


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    if any(installed(p) for p in PACKAGES):
        pytest.skip("a canhgac package is installed on this machine: not touching it")
    out = tmp_path_factory.mktemp("dist")
    sh("env", f"OUT={out}", str(ROOT / "packaging/deb/build.sh"))
    yield {p: next(out.glob(f"{p}_*_amd64.deb")) for p in PACKAGES}
    sh("dpkg", "--purge", *PACKAGES, check=False)


def test_lintian_has_nothing_but_the_justified_overrides(debs: dict[str, Path]) -> None:
    if shutil.which("lintian") is None:
        pytest.skip("lintian (Debian: lintian)")
    done = sh("lintian", "--tag-display-limit", "0", *map(str, debs.values()), check=False)
    tags = [line for line in done.stdout.splitlines() if re.match(r"[EWIX]: ", line)]
    assert tags == []
    assert done.returncode == 0, done.stderr


@pytest.fixture
def conf() -> Iterator[Path]:
    """Configs the service users can read (pytest's temp dirs are root's, mode 0700)."""
    path = Path(tempfile.mkdtemp(prefix="canhgac-deb-test."))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_install_run_remove_purge(debs: dict[str, Path], conf: Path) -> None:
    sh("dpkg", "--install", *map(str, debs.values()))
    conffiles = sh("dpkg-query", "-W", "-f=${Conffiles}\n", *PACKAGES).stdout
    for path in (
        "/etc/canhgac/agent.yaml",
        "/etc/canhgac/collector.yaml",
        "/etc/canhgac/sites.yaml",
        "/etc/canhgac/rules/default.yaml",
    ):
        assert path in conffiles
    collector_yaml = Path("/etc/canhgac/collector.yaml").stat()
    assert (collector_yaml.st_mode & 0o777, collector_yaml.st_gid) == (
        0o640,
        int(sh("id", "-g", "canhgac").stdout),
    )
    assert "adm" in sh("id", "-nG", "canhgac-agent").stdout.split()
    # The agent's venv has none of the collector's dependencies.
    agent_site = next(Path("/opt/canhgac/agent/lib").glob("python3*/site-packages"))
    assert not list(agent_site.glob("grpc*")) and not list(agent_site.glob("sqlalchemy*"))
    assert sorted(
        p.name for p in Path("/opt/canhgac/agent/bin").iterdir() if "python" not in p.name
    ) == ["canhgac-agent"]

    # The installed collector with the shipped rules and sites, as its user, on loopback.
    grpc_port, http_port = free_port(), free_port()
    collector_cfg = conf / "collector.yaml"
    collector_cfg.write_text(
        json.dumps(
            {
                "grpc_listen": f"127.0.0.1:{grpc_port}",
                "http_listen": f"127.0.0.1:{http_port}",
                "store": {"url": f"sqlite:///{STORE}"},
                "sites_file": "/etc/canhgac/sites.yaml",
                "rules": {"path": "/etc/canhgac/rules"},
                "report_interval": "1s",
            }
        )
    )
    collector_cfg.chmod(0o644)
    collector = as_user("canhgac", "/usr/bin/canhgac-collector", "--config", str(collector_cfg))
    created = sh(
        *collector, "token", "create", "--district", "Hạ Lang", "--commune", "Thanh Nhật",
        "--role", "workstation",
    )  # fmt: skip
    token = re.search(r"cgt\.\S+", created.stdout)
    assert token, created.stdout
    state = Path("/var/lib/canhgac-agent")
    (state / "enroll.token").write_text(token.group(0))
    shutil.chown(state / "enroll.token", "canhgac-agent", "canhgac-agent")
    agent_cfg = conf / "agent.yaml"
    agent_cfg.write_text(
        json.dumps(
            {
                "collector": {"address": f"127.0.0.1:{grpc_port}"},
                # The link probe pings the collector only (raw ICMP: the unit's CAP_NET_RAW).
                "probes": {
                    "link": {"ping_gateway": False, "count": 3, "throughput": {"enabled": False}}
                },
            }
        )
    )
    agent_cfg.chmod(0o644)
    agent = as_user(
        "canhgac-agent", "/usr/bin/canhgac-agent", "--config", str(agent_cfg), caps="+net_raw"
    )
    with process([*collector, "serve"], conf / "collector.log") as served:
        wait_until(lambda: listening(grpc_port), 60, "the collector's gRPC port")
        with process([*agent, "run", "--interval", "1"], conf / "agent.log") as ran:
            wait_until(lambda: reports_stored() >= 2 or ran.poll() is not None, 90, "2 reports")
        assert ran.returncode == 0, (conf / "agent.log").read_text()
        status = sh(*agent, "status")
        assert "enrolled:   yes" in status.stdout and "NOT reachable" not in status.stdout
        shown = sh(*collector, "agent", "list").stdout
        assert "Thanh Nhật" in shown
    assert served.returncode == 0, (conf / "collector.log").read_text()
    assert "enroll.token deleted" in (conf / "agent.log").read_text()
    assert not (state / "enroll.token").exists()
    assert (state / "credential.json").stat().st_uid == int(sh("id", "-u", "canhgac-agent").stdout)
    with contextlib.closing(sqlite3.connect(STORE)) as conn:
        [agent_id] = [r[0] for r in conn.execute("SELECT DISTINCT agent_id FROM reports")]
    detail = json.loads(sh(*collector, "agent", "show", agent_id, "--json").stdout)
    assert detail["placement"]["commune"] == "Thanh Nhật"
    assert detail["snapshot"]["hardware"]["memory"]["total_bytes"] > 0
    pings = detail["snapshot"]["link"]["pings"]
    assert [(p["target"], p["received"]) for p in pings] == [("127.0.0.1", 3)]

    sh("dpkg", "--remove", *PACKAGES)
    assert not Path("/opt/canhgac").exists()
    assert not Path("/usr/bin/canhgac-agent").exists()
    assert Path("/etc/canhgac/agent.yaml").exists()  # conffiles stay until purge
    assert (state / "credential.json").exists()  # and so does the state
    sh("dpkg", "--purge", *PACKAGES)
    assert not Path("/etc/canhgac").exists()
    assert not state.exists() and not STORE.parent.exists()
    assert not any(installed(p) for p in PACKAGES)
