"""Two collectors sharing one PostgreSQL: either takes reports, nothing is stored twice, and
exactly one leads — until it is killed, when the other takes over."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from agent.transport.client import CollectorClient, MachineFacts
from canhgac_proto.v1 import collector_pb2 as pb
from collector.config import CollectorConfig
from collector.leader import LEADER_LOCK
from collector.model import Placement
from collector.store import Store
from tests.integration.harness import free_port, start_collector, wait_until
from tests.integration.postgres import fresh_database

BIN = Path(sys.executable).parent


def _leader_lock_held(url: str) -> bool:
    """Whether some session holds the leader lock (asked without competing for it)."""
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
    return bool(held)


def test_two_collectors_one_database(postgres: str, tmp_path: Path) -> None:
    url = fresh_database(postgres)
    store = Store(url)
    _, token = store.create_token(
        Placement("Cao Bằng", "Hạ Lang", "Lý Quốc", "", "server"), 600, time.time()
    )
    store.close()

    # Collector A: a real process, started first, so it takes the lead.
    port = free_port()
    config = tmp_path / "a.yaml"
    config.write_text(
        f"grpc_listen: 127.0.0.1:{port}\nhttp_listen: 127.0.0.1:0\n"
        f"store:\n  url: {url}\nrules:\n  path: {Path(__file__).parents[2] / 'rules'}\n"
        "  evaluate_every: 1s\nlog_level: warning\n"
    )
    a = subprocess.Popen(
        [str(BIN / "canhgac-collector"), "--config", str(config), "serve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    b = None
    try:
        address_a = f"127.0.0.1:{port}"
        with CollectorClient(address_a) as c:
            wait_until(lambda: c.reachable(0.5), 30, "collector A to listen")
        wait_until(lambda: _leader_lock_held(url), 30, "collector A to take the lead")

        b = start_collector(CollectorConfig.model_validate({"store": {"url": url}}))
        assert not b.app.leadership.is_leader()  # A holds it

        # One agent, reaching either collector with the same reports: stored once.
        with CollectorClient(address_a) as c:
            e = c.enroll(token, MachineFacts("m-lq", "srv-lyquoc", "Linux", "6", "0.1.0"))
        payloads = [
            pb.Report(
                seq=s, boot_id="b", collected_at_ms=int(time.time() * 1000)
            ).SerializeToString()
            for s in (1, 2, 3)
        ]
        with CollectorClient(address_a, secret=e.secret) as via_a:
            assert via_a.submit(payloads[:2]).stored == [1, 2]
        via_b = b.client(e.secret)
        assert via_b.submit(payloads).stored == [1, 2, 3]
        assert b.app.store.report_seqs(e.agent_id) == [1, 2, 3]

        a.send_signal(signal.SIGKILL)
        a.wait(10)
        wait_until(b.app.leadership.is_leader, 30, "collector B to take over after A died")
    finally:
        if a.poll() is None:
            a.kill()
            a.wait(10)
        if b is not None:
            b.app.stop(grace=0)
