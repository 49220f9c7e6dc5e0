"""The fleet part of /metrics rendered in a child process, away from the gRPC server's GIL.

Rendering 10,000 agents is a second of pure-Python work. In the process that serves Submit,
every handler thread waits for the GIL behind it at each hand-off, so one scrape turned into
hundreds of milliseconds of Submit latency (bench/sustained.py). The child reads the same
store (SQLite WAL readers do not block the writer; PostgreSQL is shared anyway), keeps each
agent's lines between scrapes, and returns the text; the collector's own counters stay in the
parent. A child that dies is replaced at the next scrape.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import threading
from multiprocessing.connection import Connection
from typing import Any

from collector.errors import CollectorError

__all__ = ["FleetRenderer"]

log = logging.getLogger(__name__)

# spawn, not fork: the parent runs gRPC threads, which a forked child must not inherit.
_CONTEXT = multiprocessing.get_context("spawn")


class FleetRenderer:
    """`renderer(now)` → the per-agent families as of `now`, rendered by the child process
    (started at the first call). Calls are serialised; `close()` stops the child."""

    def __init__(self, store_url: str, stale_after: float) -> None:
        self._args = (store_url, stale_after)
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._process: Any = None  # multiprocessing's SpawnProcess (not exported for typing)

    def __call__(self, now: float) -> bytes:
        with self._lock:
            if self._process is not None and not self._process.is_alive():
                log.warning(
                    "the /metrics renderer exited (code %s); starting a new one",
                    self._process.exitcode,
                )
                self._stop()
            if self._process is None:
                self._start()
            assert self._conn is not None
            try:
                self._conn.send(now)
                ok, payload = self._conn.recv()
            except (EOFError, OSError) as e:  # died while rendering: the next call restarts it
                self._stop()
                raise CollectorError(f"the /metrics renderer died while rendering: {e}") from None
        if not ok:
            raise CollectorError(f"rendering the fleet's metrics failed: {payload}")
        return bytes(payload)

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (tests kill it to prove it is replaced)."""
        return self._process.pid if self._process is not None else None

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _start(self) -> None:
        parent, child = _CONTEXT.Pipe()
        self._process = _CONTEXT.Process(
            target=_serve, args=(child, *self._args), name="canhgac-metrics", daemon=True
        )
        self._process.start()
        child.close()  # the child holds its end: EOF here when it dies
        self._conn = parent

    def _stop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):  # already gone
                self._conn.send(None)
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.join(5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5)
            self._process = None


def _serve(conn: Connection, store_url: str, stale_after: float) -> None:
    """The child: render on request until told to stop or the parent is gone."""
    # Ctrl-C reaches the whole process group; the parent decides when this child stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from collector.metrics.core import Exposition  # noqa: PLC0415 (the child's own import)
    from collector.store import Store  # noqa: PLC0415

    store = Store(store_url)
    exposition = Exposition(store, stale_after)
    try:
        while True:
            try:
                now = conn.recv()
            except EOFError:
                return  # the parent died
            if now is None:
                return
            try:
                reply: tuple[bool, Any] = (True, exposition.fleet_text(now))
            except Exception as e:  # reported to the parent, which logs it
                reply = (False, f"{type(e).__name__}: {e}")
            conn.send(reply)
    finally:
        store.close()
