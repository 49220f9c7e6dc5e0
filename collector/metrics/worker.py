"""The fleet part of /metrics rendered in child processes, away from the gRPC server's GIL.

Rendering 10,000 agents is a second of pure-Python work. In the process that serves Submit,
every handler thread waits for the GIL behind it at each hand-off, so one scrape turned into
hundreds of milliseconds of Submit latency (bench/sustained.py). The child reads the same
store (SQLite WAL readers do not block the writer; PostgreSQL is shared anyway), keeps each
agent's lines between scrapes, and returns the text; the collector's own counters stay in the
parent. Several children share the agents out (`shard_of`), so a cold render — the first
scrape after a start, every agent read and formatted — uses every core. A child that dies is
replaced at the next scrape. Children are started with `subprocess` (a fresh interpreter that
imports only the renderer, not the parent's modules; inherited threads would be unsafe with
fork) and talk over a socket pair; the collector therefore runs on POSIX systems.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

from collector.errors import CollectorError

__all__ = ["RENDER_NICENESS", "RENDER_PROCESSES", "FleetRenderer", "serve"]

log = logging.getLogger(__name__)


# Each process renders the agents of one shard; their families are joined family by family.
# Two: the reference machine has two cores, and a cold 10,000-agent render (every agent read,
# decoded and formatted) takes about a second in one process.
RENDER_PROCESSES = 2
# Added to the children's nice value: below the parent's priority when cores are short.
RENDER_NICENESS = 10


class FleetRenderer:
    """`renderer(now)` → the per-agent families' sample lines as of `now` (one bytes per
    declared family), rendered by `processes` child processes, each drawing its shard of the
    agents. Children start at the first call (or `start()`); one that died is replaced at
    the next call. Calls are serialised; `close()` stops the children."""

    def __init__(
        self, store_url: str, stale_after: float, processes: int = RENDER_PROCESSES
    ) -> None:
        self._store_url = store_url
        self._stale_after = stale_after
        self._lock = threading.Lock()
        self._children: list[_Child | None] = [None] * processes

    def __call__(self, now: float) -> list[bytes]:
        with self._lock:
            children = self._started()
            replies: list[tuple[bool, Any]] = []
            try:
                for child in children:
                    child.conn.send(now)
                for child in children:
                    replies.append(child.conn.recv())
            except (EOFError, OSError) as e:
                # One died while rendering; the others' replies may be unread in their pipes:
                # all stop, and the next call starts them afresh.
                self._stop_all()
                raise CollectorError(f"the /metrics renderer died while rendering: {e}") from None
        failed = [str(payload) for ok, payload in replies if not ok]
        if failed:
            raise CollectorError(f"rendering the fleet's metrics failed: {failed[0]}")
        return [b"".join(parts) for parts in zip(*(payload for _, payload in replies), strict=True)]

    def start(self) -> None:
        """Start the children now and wait until each has opened the store (otherwise the
        first call does it)."""
        with self._lock:
            self._started()

    @property
    def pids(self) -> list[int]:
        """The children's process ids while they run (tests kill one to prove it is
        replaced)."""
        return [c.process.pid for c in self._children if c is not None]

    def close(self) -> None:
        with self._lock:
            self._stop_all()

    def _stop_all(self) -> None:
        for i, child in enumerate(self._children):
            if child is not None:
                child.stop()
                self._children[i] = None

    def _started(self) -> list[_Child]:
        """Every child running: dead ones replaced, missing ones started side by side."""
        self._stop_dead()
        shards = len(self._children)
        for i, child in enumerate(self._children):
            if child is None:
                self._children[i] = _Child.spawn(self._store_url, self._stale_after, (i, shards))
        children = [c for c in self._children if c is not None]
        for child in children:
            child.ready()
        return children

    def _stop_dead(self) -> None:
        for i, child in enumerate(self._children):
            if child is not None and child.process.poll() is not None:
                log.warning(
                    "a /metrics renderer exited (code %s); starting a new one",
                    child.process.returncode,
                )
                child.stop()
                self._children[i] = None


class _Child:
    """One renderer process and the parent's end of its socket."""

    def __init__(self, process: subprocess.Popen[bytes], conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self._ready = False

    @classmethod
    def spawn(cls, store_url: str, stale_after: float, shard: tuple[int, int]) -> _Child:
        ours, theirs = socket.socketpair()
        with ours, theirs:
            process = subprocess.Popen(
                [sys.executable, "-c", _CHILD, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
            conn = Connection(ours.detach())  # EOF here when the child dies
        conn.send((store_url, stale_after, shard))
        return cls(process, conn)

    def ready(self) -> None:
        """Wait for the child's first message: it has imported and opened the store."""
        if not self._ready:
            try:
                ok, payload = self.conn.recv()
            except (EOFError, OSError):
                code = self.process.wait(5)
                raise CollectorError(
                    f"the /metrics renderer exited while starting (code {code}); its error is"
                    " in the collector's standard error"
                ) from None
            if not ok:
                raise CollectorError(f"the /metrics renderer could not start: {payload}")
            self._ready = True

    def stop(self) -> None:
        with contextlib.suppress(OSError):  # already gone
            self.conn.send(None)
        self.conn.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


# The child's first lines, before any import: ignore Ctrl-C (it reaches the whole process
# group; the parent decides when the child stops) and lower the priority, so that even its
# start-up — a second of imports — does not take a core from a loaded collector (measured:
# started from the collector's own process at nice 0, it raised Submit's p99 of the
# first-report round from ≈ 37 ms to 55–180 ms in bench/sustained.py).
_CHILD = f"""
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
os.nice({RENDER_NICENESS})
from collector.metrics.worker import serve
serve(int(sys.argv[1]))
"""


def serve(fd: int) -> None:
    """The child (`_CHILD`): render its shard on request, over the socket `fd`, until told
    to stop or the parent is gone."""
    conn = Connection(fd)
    store_url, stale_after, shard = conn.recv()
    try:
        from collector.metrics.core import Exposition  # noqa: PLC0415 (the child's own import)
        from collector.store import Store  # noqa: PLC0415

        store = Store(store_url)
    except Exception as e:  # reported to the parent, which raises it at the scrape
        conn.send((False, f"{type(e).__name__}: {e}"))
        return
    exposition = Exposition(store, stale_after, shard=shard)
    conn.send((True, None))
    try:
        while True:
            try:
                now = conn.recv()
            except EOFError:
                return  # the parent died
            if now is None:
                return
            try:
                reply: tuple[bool, Any] = (True, exposition.fleet_bodies(now))
            except Exception as e:  # reported to the parent, which logs it
                reply = (False, f"{type(e).__name__}: {e}")
            conn.send(reply)
    finally:
        store.close()
