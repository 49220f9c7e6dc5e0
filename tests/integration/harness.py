"""Real parts for integration tests: a collector on loopback port 0 over a SQLite file."""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.transport.client import CollectorClient, MachineFacts
from collector.app import CollectorApp
from collector.config import CollectorConfig
from collector.model import Placement


def free_port() -> int:
    """A port that was free a moment ago (for tests that must restart on the same port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def collector_config(db: Path, **overrides: object) -> CollectorConfig:
    return CollectorConfig.model_validate(
        {"store": {"url": f"sqlite:///{db}"}, "report_interval": 15, **overrides}
    )


@dataclass
class Running:
    app: CollectorApp
    address: str

    def token(self, commune: str = "Thanh Nhật", role: str = "workstation") -> str:
        placement = Placement("Cao Bằng", "Hạ Lang", commune, "", role)
        _, token = self.app.store.create_token(placement, 3600, time.time())
        return token

    def enroll(
        self,
        machine: str = "machine-1",
        hostname: str = "ubnd-thanhnhat-01",
        commune: str = "Thanh Nhật",
        previous: str = "",
    ) -> str:
        """Enroll through the real Enroll RPC; returns the agent credential. `previous`: the
        credential the machine held (the proof that keeps its agent id)."""
        with CollectorClient(self.address) as c:
            facts = MachineFacts(machine, hostname, "Linux", "6.1", "0.1.0")
            r = c.enroll(self.token(commune), facts, previous)
        return r.secret

    def client(self, secret: str | None, **kw: object) -> CollectorClient:
        return CollectorClient(self.address, secret=secret, **kw)  # type: ignore[arg-type]


def agent_config(path: Path, link: dict[str, object]) -> Path:
    """An agent config at `path` whose link probe has `link` options.

    Tests must never ping the host's real gateway, which the link probe does by default.
    """
    path.write_text(json.dumps({"probes": {"link": link}}), encoding="utf-8")  # JSON is YAML
    return path


def start_collector(
    cfg: CollectorConfig, port: int = 0, clock: Callable[[], float] = time.time
) -> Running:
    app = CollectorApp(
        cfg, grpc_address=f"127.0.0.1:{port}", http_address="127.0.0.1:0", clock=clock
    )
    app.start()
    return Running(app, f"127.0.0.1:{app.grpc_port}")


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` until true; fail the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def stored_seqs(db: Path) -> dict[str, list[int]]:
    """Seqs per agent straight from the collector's SQLite file (no collector code involved)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT agent_id, seq FROM reports ORDER BY agent_id, seq").fetchall()
    out: dict[str, list[int]] = {}
    for agent_id, seq in rows:
        out.setdefault(agent_id, []).append(seq)
    return out


def integrity_check(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        result: str = conn.execute("PRAGMA integrity_check").fetchone()[0]
    return result
