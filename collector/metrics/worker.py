"""The fleet part of /metrics rendered in child processes, away from the gRPC server's GIL.

Rendering 10,000 agents is a second of pure-Python work. In the process that serves Submit,
every handler thread waits for the GIL behind it at each hand-off, so one scrape turned into
hundreds of milliseconds of Submit latency (bench/sustained.py). The child reads the same
store (SQLite WAL readers do not block the writer; PostgreSQL is shared anyway), keeps each
agent's lines between scrapes, and returns the text; the collector's own counters stay in the
parent. Several children share the agents out (`shard_of`), so a cold render — the first
scrape after a start, every agent read and formatted — uses every core. A child that dies is
replaced at the next scrape.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
from multiprocessing.connection import Connection
from typing import Any

from collector.errors import CollectorError

__all__ = ["FleetRenderer"]

log = logging.getLogger(__name__)

# spawn, not fork: the parent runs gRPC threads, which a forked child must not inherit.
_CONTEXT = multiprocessing.get_context("spawn")


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
            if child is not None and not child.process.is_alive():
                log.warning(
                    "a /metrics renderer exited (code %s); starting a new one",
                    child.process.exitcode,
                )
                child.stop()
                self._children[i] = None


class _Child:
    """One renderer process and the parent's end of its pipe."""

    def __init__(self, process: Any, conn: Connection) -> None:
        self.process = process  # multiprocessing's SpawnProcess (not exported for typing)
        self.conn = conn
        self._ready = False

    @classmethod
    def spawn(cls, store_url: str, stale_after: float, shard: tuple[int, int]) -> _Child:
        parent, child = _CONTEXT.Pipe()
        process = _CONTEXT.Process(
            target=_serve,
            args=(child, store_url, stale_after, shard),
            name=f"canhgac-metrics-{shard[0]}",
            daemon=True,
        )
        process.start()
        child.close()  # the child holds its end: EOF here when it dies
        return cls(process, parent)

    def ready(self) -> None:
        """Wait for the child's first message: it has imported and opened the store."""
        if not self._ready:
            ok, payload = self.conn.recv()
            if not ok:
                raise CollectorError(f"the /metrics renderer could not start: {payload}")
            self._ready = True

    def stop(self) -> None:
        with contextlib.suppress(OSError):  # already gone
            self.conn.send(None)
        self.conn.close()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


def _serve(conn: Connection, store_url: str, stale_after: float, shard: tuple[int, int]) -> None:
    """The child: render its shard on request until told to stop or the parent is gone."""
    # Ctrl-C reaches the whole process group; the parent decides when this child stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(os, "nice"):  # not on Windows
        # A scrape can wait; Submit's acks, in the parent, should not wait behind it for a core.
        os.nice(RENDER_NICENESS)
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
