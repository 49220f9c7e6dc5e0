"""`serve --processes 2` on PostgreSQL: two real processes share one gRPC port; reports are
stored exactly once, one process leads, /metrics counts both, a SIGKILLed process is replaced
while the other serves, and the whole collector stops cleanly. On SQLite it is refused."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from sqlalchemy import create_engine, text

from agent.transport.client import CollectorClient, MachineFacts
from canhgac_proto.v1 import collector_pb2 as pb
from collector.leader import LEADER_LOCK
from collector.model import Placement
from collector.store import Store
from tests.integration.harness import free_port, wait_until
from tests.integration.postgres import fresh_database

BIN = Path(sys.executable).parent
RULES = Path(__file__).parents[2] / "rules"
_START_MS = int(time.time() * 1000)
AGENTS = 12  # connections: the chance that the kernel gives them all to one process is 2^-11


@dataclass
class Collector:
    process: subprocess.Popen[bytes]
    grpc: str
    http_port: int
    log: Path
    url: str

    def children(self) -> list[psutil.Process]:
        """The collector processes (not their /metrics renderers), by process index."""
        found = [
            p
            for p in psutil.Process(self.process.pid).children()
            if "--process-index" in p.cmdline()
        ]
        return sorted(found, key=lambda p: p.cmdline()[p.cmdline().index("--process-index") + 1])

    def leaders(self) -> list[int]:
        """The pids that logged taking the lead, in order."""
        return [int(m) for m in re.findall(r"\(pid (\d+)\) now leads", self.log.read_text())]

    def metric(self, name: str) -> float | None:
        """The sample of an unlabelled series; None while no process serves HTTP."""
        url = f"http://127.0.0.1:{self.http_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                body = r.read().decode()
        except (urllib.error.URLError, ConnectionError):
            return None
        values = re.findall(rf"^{name} (\S+)$", body, re.M)
        return float(values[0]) if values else 0.0


def _command(config: Path, processes: str) -> list[str]:
    return [
        *(str(BIN / "canhgac-collector"), "--config", str(config), "--lang", "en", "serve"),
        *("--processes", processes),
    ]


def _config(tmp_path: Path, url: str, grpc_port: int, http_port: int) -> Path:
    config = tmp_path / "collector.yaml"
    config.write_text(
        f"grpc_listen: 127.0.0.1:{grpc_port}\nhttp_listen: 127.0.0.1:{http_port}\n"
        f"store:\n  url: {url}\nrules:\n  path: {RULES}\n  evaluate_every: 1s\n"
        "log_level: info\n"
    )
    return config


@contextmanager
def _serve(tmp_path: Path, url: str, processes: int = 2) -> Iterator[Collector]:
    grpc_port, http_port = free_port(), free_port()
    config = _config(tmp_path, url, grpc_port, http_port)
    log = tmp_path / "collector.log"
    with log.open("wb") as err:
        process = subprocess.Popen(
            _command(config, str(processes)),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    c = Collector(process, f"127.0.0.1:{grpc_port}", http_port, log, url)
    try:
        wait_until(lambda: len(c.children()) == processes, 60, "the collector processes")
        with CollectorClient(c.grpc) as client:
            wait_until(lambda: client.reachable(0.5), 60, "the collector to listen")
        yield c
    finally:
        if process.poll() is None:
            process.kill()  # the test failed: its children stop once they see it gone
            process.wait(10)


def _lock_holders(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            held = conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND objid = :key"
                ),
                {"key": LEADER_LOCK},
            ).scalar()
    finally:
        engine.dispose()
    return int(held or 0)


def _stored(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM reports")).scalar() or 0)
    finally:
        engine.dispose()


def _report(seq: int) -> bytes:
    """The same bytes each time for one seq (another content would be a cloned machine)."""
    return pb.Report(seq=seq, boot_id="b", collected_at_ms=_START_MS + seq).SerializeToString()


def _grpc_connections(process: psutil.Process, port: int) -> int:
    return sum(
        1
        for c in process.net_connections("tcp")
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


def _token(url: str) -> str:
    store = Store(url)
    try:
        _, token = store.create_token(
            Placement("Cao Bằng", "Hạ Lang", "Thanh Nhật", "", "workstation"), 600, time.time()
        )
    finally:
        store.close()
    return token


def test_two_processes_share_the_port_store_once_and_survive_a_kill(
    postgres: str, tmp_path: Path
) -> None:
    url = fresh_database(postgres)
    token = _token(url)
    with _serve(tmp_path, url) as c:
        port = int(c.grpc.rpartition(":")[2])
        first = c.children()
        # Agents on connections of their own, as in the field; all kept open at once.
        clients = [CollectorClient(c.grpc) for _ in range(AGENTS)]
        try:
            secrets = []
            for i, client in enumerate(clients):
                e = client.enroll(token, MachineFacts(f"m-{i}", f"pc-{i}", "Linux", "6", "0.1"))
                secrets.append((e.agent_id, e.secret))
            agents = [CollectorClient(c.grpc, secret=s) for _, s in secrets]
            for agent in agents:
                assert agent.submit([_report(s) for s in (1, 2, 3)]).stored == [1, 2, 3]
            # Both processes took some of the connections: the kernel shares the port.
            assert all(_grpc_connections(p, port) > 0 for p in first), "one process took all"
            # The same reports again on new connections (whichever process): stored once.
            for _, secret in secrets:
                with CollectorClient(c.grpc, secret=secret) as again:
                    assert again.submit([_report(s) for s in (1, 2, 3)]).stored == [1, 2, 3]
        finally:
            for client in clients:
                client.close()
        assert _stored(url) == 3 * AGENTS

        # One leader among the two, and /metrics counts what both processes received.
        wait_until(lambda: _lock_holders(url) == 1, 30, "a leader")
        time.sleep(2.5)  # two more timer ticks: nobody else takes it
        assert _lock_holders(url) == 1
        leaders = c.leaders()
        assert len(leaders) == 1 and leaders[0] in {p.pid for p in first}
        assert c.metric("canhgac_collector_reports_received_total") == 6 * AGENTS
        assert c.metric("canhgac_collector_reports_stored_total") == 3 * AGENTS
        assert c.metric("canhgac_collector_reports_duplicate_total") == 3 * AGENTS
        # Only process 0 serves HTTP.
        listening = [
            p
            for p in first
            if any(
                x.laddr.port == c.http_port and x.status == psutil.CONN_LISTEN
                for x in p.net_connections("tcp")
            )
        ]
        assert listening == [first[0]]

        # SIGKILL the leader: the other process keeps serving and takes the lead; the
        # supervisor starts a new process in the dead one's place.
        leader = next(p for p in first if p.pid == leaders[0])
        survivor = next(p for p in first if p.pid != leaders[0])
        leader.send_signal(signal.SIGKILL)
        leader.wait(10)
        for agent_id, secret in secrets:
            with CollectorClient(c.grpc, secret=secret) as after:
                assert after.submit([_report(4)]).stored == [4], agent_id
        wait_until(lambda: survivor.pid in c.leaders(), 30, "the survivor to take the lead")
        wait_until(
            lambda: len(c.children()) == 2 and leader.pid not in {p.pid for p in c.children()},
            30,
            "the killed process to be replaced",
        )
        assert _stored(url) == 4 * AGENTS
        assert c.leaders() == [leader.pid, survivor.pid]
        assert _lock_holders(url) == 1
        # The dead process's counts stay in the sum (they only go up).
        wait_until(
            lambda: c.metric("canhgac_collector_reports_stored_total") == 4 * AGENTS,
            60,
            "/metrics after the restart",
        )

        # SIGTERM: every process stops, the supervisor exits 0.
        everyone = c.children()
        c.process.send_signal(signal.SIGTERM)
        assert c.process.wait(30) == 0
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in everyone)


def test_processes_stop_when_their_supervisor_is_killed(postgres: str, tmp_path: Path) -> None:
    url = fresh_database(postgres)
    with _serve(tmp_path, url) as c:
        children = c.children()
        c.process.send_signal(signal.SIGKILL)
        c.process.wait(10)
        # No orphan keeps the port: each notices within a second or two and stops.
        _gone, alive = psutil.wait_procs(children, timeout=30)
        assert not alive
        with socket.create_server(("127.0.0.1", int(c.grpc.rpartition(":")[2]))):
            pass


def test_a_port_in_use_is_refused_before_any_process_starts(postgres: str, tmp_path: Path) -> None:
    url = fresh_database(postgres)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        config = _config(tmp_path, url, port, free_port())
        done = subprocess.run(
            _command(config, "2"),
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert "port is in use" in done.stderr


def test_a_process_that_cannot_start_stops_the_collector(postgres: str, tmp_path: Path) -> None:
    url = fresh_database(postgres)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        # The HTTP port (process 0's) is taken: that process exits, so does the collector.
        config = _config(tmp_path, url, free_port(), taken.getsockname()[1])
        done = subprocess.run(
            _command(config, "2"),
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    assert "http_listen" in done.stderr and "port is in use" in done.stderr
    assert "collector process 0 exited while starting" in done.stderr


@pytest.mark.parametrize("asked", ["2", "0"])
def test_several_processes_on_sqlite_refused(tmp_path: Path, asked: str) -> None:
    config = tmp_path / "collector.yaml"
    config.write_text(
        f"grpc_listen: 127.0.0.1:{free_port()}\nhttp_listen: 127.0.0.1:0\n"
        f"store:\n  url: sqlite:///{tmp_path / 'store.db'}\n"
    )
    done = subprocess.run(
        _command(config, asked),
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"--processes {asked}" in done.stderr
    if asked == "2":
        assert "SQLite" in done.stderr and "one writer" in done.stderr
