"""Outages and crashes: nothing acknowledged or collected is lost, nothing is stored twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agent.config import DeliveryConfig
from agent.probes.hardware import HardwareProbe
from agent.runner import Runner, Scheduled
from agent.spool import Spool
from agent.transport.client import CollectorClient, DeliveryError, MachineFacts, SubmitResult
from canhgac_proto.v1 import collector_pb2 as pb
from tests.integration.harness import (
    Running,
    agent_config,
    collector_config,
    free_port,
    integrity_check,
    start_collector,
    stored_seqs,
    wait_until,
)

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


class RecordingSubmit:
    """The real client's submit, remembering what was sent and what the collector acked."""

    def __init__(self, client: CollectorClient) -> None:
        self._client = client
        self.sent: list[int] = []
        self.acked: set[int] = set()
        self.failures = 0
        self._lock = threading.Lock()

    def __call__(self, payloads: list[bytes]) -> SubmitResult:
        seqs = [pb.Report.FromString(p).seq for p in payloads]
        try:
            result = self._client.submit(payloads)
        except DeliveryError:
            with self._lock:
                self.failures += 1
            raise
        with self._lock:
            self.sent.extend(seqs)
            self.acked.update(result.stored)
        return result


def deliver_all(runner: Runner, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (more := runner.deliver_batch()) is not False:
        if time.monotonic() > deadline:
            raise AssertionError("backlog not delivered in time")
        if more is None:
            time.sleep(0.2)


def test_outage_backlog_arrives_once_and_in_order(tmp_path: Path) -> None:
    cfg = collector_config(tmp_path / "collector.db")
    port = free_port()
    first = start_collector(cfg, port)
    secret = first.enroll()
    first.app.stop(grace=0)

    client = CollectorClient(f"127.0.0.1:{port}", secret=secret, timeout=2)
    submit = RecordingSubmit(client)
    spool = Spool(tmp_path / "spool.db", 1 << 20, 86400)
    runner = Runner(
        {"hardware": Scheduled(HardwareProbe(), 15)},
        spool,
        submit,
        DeliveryConfig(batch_size=3),
        boot_id="b",
    )
    cycles = 10
    for _ in range(cycles):
        runner.collect_due(["hardware"])
        assert runner.deliver_batch() is None  # collector is down
    assert spool.status().depth == cycles

    second = start_collector(cfg, port)
    try:
        deliver_all(runner, timeout=60)
        assert spool.status().depth == 0
        agent_id = secret.split(".")[0]
        assert second.app.store.report_seqs(agent_id) == list(range(1, cycles + 1))
        assert submit.sent == sorted(submit.sent)  # replay went oldest first
        assert len(submit.sent) == cycles  # each sent once: acks removed them
    finally:
        client.close()
        second.app.stop(grace=0)


def _collector_process(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(BIN / "canhgac-collector"), "--config", str(config), "serve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _write_config(tmp_path: Path, port: int) -> tuple[Path, Path]:
    db = tmp_path / "collector.db"
    config = tmp_path / "collector.yaml"
    config.write_text(
        f"grpc_listen: 127.0.0.1:{port}\nhttp_listen: 127.0.0.1:0\n"
        f"store:\n  url: sqlite:///{db}\nlog_level: warning\n"
    )
    return config, db


def _token(config: Path) -> str:
    out = subprocess.run(
        [
            *(str(BIN / "canhgac-collector"), "--config", str(config), "token", "create"),
            *("--district", "Hạ Lang", "--commune", "An Lạc", "--role", "workstation"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_collector_sigkilled_while_agents_submit_loses_no_acked_report(tmp_path: Path) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    config, db = _write_config(tmp_path, port)
    token = _token(config)
    proc = _collector_process(config)
    probe = CollectorClient(address)
    wait_until(lambda: probe.reachable(0.5), 30, "collector to listen")
    agents = []
    for i in range(2):
        with CollectorClient(address) as c:
            e = c.enroll(token, MachineFacts(f"m{i}", f"pc-{i}", "Linux", "6", "0.1.0"))
        client = CollectorClient(address, secret=e.secret, timeout=2)
        submit = RecordingSubmit(client)
        spool = Spool(tmp_path / f"spool-{i}.db", 1 << 24, 86400)
        runner = Runner(
            {"hardware": Scheduled(HardwareProbe(), 15)},
            spool,
            submit,
            DeliveryConfig(batch_size=5),
            boot_id="b",
        )
        agents.append((e.agent_id, runner, spool, submit, client))

    stop = threading.Event()
    max_reports = 300

    def agent_loop(runner: Runner, spool: Spool) -> None:
        while not stop.is_set() and spool.status().last_seq < max_reports:
            runner.collect_due(["hardware"])
            runner.deliver_batch()
            time.sleep(0.03)

    threads = [threading.Thread(target=agent_loop, args=(a[1], a[2])) for a in agents]
    for t in threads:
        t.start()
    rng = random.Random(7)
    try:
        for _ in range(4):
            time.sleep(rng.uniform(0.3, 1.2))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            # Everything acked so far is on disk, whatever the kill interrupted.
            on_disk = stored_seqs(db)
            for agent_id, *_, submit, _ in agents:
                missing = submit.acked - set(on_disk.get(agent_id, []))
                assert not missing, f"acked but not stored after SIGKILL: {sorted(missing)}"
            proc = _collector_process(config)
            wait_until(lambda: probe.reachable(0.5), 30, "collector to restart")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    try:
        for _, runner, *_ in agents:
            deliver_all(runner, timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        probe.close()
        for *_, client in agents:
            client.close()
    assert proc.returncode == 0  # SIGTERM is a clean stop
    on_disk = stored_seqs(db)
    for agent_id, _, spool, submit, _ in agents:
        last = spool.status().last_seq
        assert last > 0
        assert on_disk[agent_id] == list(range(1, last + 1))  # all, once, no gaps
        assert submit.acked == set(on_disk[agent_id])
        assert submit.failures > 0  # the kills did interrupt deliveries
        print(f"agent {agent_id}: {last} reports, {submit.failures} failed deliveries")
    assert integrity_check(db) == "ok"


def test_agent_sigkilled_mid_cycle_loses_nothing_collected(
    collector: Running, tmp_path: Path
) -> None:
    state = tmp_path / "agent-state"
    config = agent_config(tmp_path / "agent.yaml", {"enabled": False})
    agent = [str(BIN / "canhgac-agent"), "--config", str(config), "--state-dir", str(state)]
    enrolled = subprocess.run(
        [*agent, "enroll", "--collector", collector.address, "--token", collector.token()],
        capture_output=True,
        text=True,
        check=False,
    )
    assert enrolled.returncode == 0, enrolled.stderr
    assert (state / "credential.json").stat().st_mode & 0o777 == 0o600
    rng = random.Random(11)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for _ in range(4):
        proc = subprocess.Popen(
            [*agent, "run", "--interval", "0.05"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        spool_db = state / "spool.db"
        wait_until(spool_db.exists, 30, "agent to create its spool")
        time.sleep(rng.uniform(0.5, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    # One more cycle that delivers the whole backlog and exits.
    final = subprocess.run([*agent, "once"], capture_output=True, text=True, check=False)
    assert final.returncode == 0, final.stderr
    spool = Spool(state / "spool.db", 1 << 24, 86400)
    status = spool.status()
    spool.close()
    assert status.depth == 0
    assert status.dropped_total == 0
    agent_id = collector.app.store.list_agents()[0].agent_id
    seqs = collector.app.store.report_seqs(agent_id)
    assert len(seqs) > 4  # the killed runs did collect
    assert seqs == list(range(1, status.last_seq + 1))
