"""Durable local queue of reports: written before a report counts as collected, removed on ack."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from agent.errors import SpoolError
from agent.model import SpoolStats

__all__ = ["Spool", "SpoolStatus"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS reports (
    seq INTEGER PRIMARY KEY,
    collected_at_ms INTEGER NOT NULL,
    size INTEGER NOT NULL,
    payload BLOB NOT NULL
);
-- Every append evicts by age and sums the sizes: with this covering index both read the index,
-- not every payload (a 24 h backlog is ≈ 17 MB of them).
CREATE INDEX IF NOT EXISTS reports_age_size ON reports (collected_at_ms, size);
"""


@dataclass(frozen=True)
class SpoolStatus:
    depth: int
    bytes: int
    dropped_total: int
    rejected_total: int
    last_seq: int
    last_ack_at: float | None  # Unix seconds of the last successful delivery


class Spool:
    """SQLite (WAL, synchronous=FULL) queue ordered by seq.

    Bounded by `max_bytes` of payload and `max_age` seconds; past either bound the oldest
    reports are evicted and counted in `dropped_total`, which every later report carries.
    """

    def __init__(
        self,
        path: Path,
        max_bytes: int,
        max_age: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._max_age_ms = int(max_age * 1000)
        self._clock = clock
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # 0600 before SQLite opens it (0644 under the usual umask); -wal/-shm follow it.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a report the agent has spooled survives a power cut, not only a crash.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            # 256 KiB instead of SQLite's 2 MB: replaying a long backlog reads each page once,
            # and a full cache would stay in the service's memory for good.
            self._db.execute("PRAGMA cache_size=-256")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise SpoolError(f"{path}: cannot open spool: {e}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _meta(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _set_meta(self, key: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def append(self, collected_at_ms: int, encode: Callable[[int, SpoolStats], bytes]) -> int:
        """Store one report atomically and return its seq.

        `encode(seq, stats)` serialises the report with its seq and the spool's loss counters,
        inside the same transaction that evicts what no longer fits.
        """
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                seq = self._meta("last_seq") + 1
                # Size of the new payload is known only after encoding; evict by age first,
                # encode, then evict the oldest until the new one fits.
                dropped = self._db.execute(
                    "DELETE FROM reports WHERE collected_at_ms < ?",
                    (int(self._clock() * 1000) - self._max_age_ms,),
                ).rowcount
                depth, used = self._db.execute(
                    "SELECT count(*), coalesce(sum(size), 0) FROM reports"
                ).fetchone()
                payload = encode(seq, SpoolStats(self._meta("dropped_total") + dropped, depth))
                while depth and used + len(payload) > self._max_bytes:
                    oldest, size = self._db.execute(
                        "SELECT seq, size FROM reports ORDER BY seq LIMIT 1"
                    ).fetchone()
                    self._db.execute("DELETE FROM reports WHERE seq = ?", (oldest,))
                    depth, used, dropped = depth - 1, used - size, dropped + 1
                if dropped:
                    # Re-encode so this report carries the loss it just caused.
                    total = self._meta("dropped_total") + dropped
                    self._set_meta("dropped_total", total)
                    payload = encode(seq, SpoolStats(total, depth))
                self._db.execute(
                    "INSERT INTO reports(seq, collected_at_ms, size, payload) VALUES (?, ?, ?, ?)",
                    (seq, collected_at_ms, len(payload), payload),
                )
                self._set_meta("last_seq", seq)
                self._db.execute("COMMIT")
            except sqlite3.Error as e:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise SpoolError(f"{self.path}: cannot store report: {e}") from None
            return seq

    def pending(self, limit: int) -> list[tuple[int, bytes]]:
        """The oldest `limit` reports, in seq order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, payload FROM reports ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [(int(s), bytes(p)) for s, p in rows]

    def ack(self, seqs: Iterable[int], rejected: int = 0) -> None:
        """Delete reports the collector stored (or will never accept: `rejected` of them)."""
        seqs = list(seqs)
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("DELETE FROM reports WHERE seq = ?", [(s,) for s in seqs])
                if rejected:
                    self._set_meta("rejected_total", self._meta("rejected_total") + rejected)
                self._set_meta("last_ack_at", int(self._clock()))
                self._db.execute("COMMIT")
            except sqlite3.Error as e:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise SpoolError(f"{self.path}: cannot record ack: {e}") from None

    def status(self) -> SpoolStatus:
        with self._lock:
            depth, used = self._db.execute(
                "SELECT count(*), coalesce(sum(size), 0) FROM reports"
            ).fetchone()
            last_ack = self._meta("last_ack_at")
            return SpoolStatus(
                depth=int(depth),
                bytes=int(used),
                dropped_total=self._meta("dropped_total"),
                rejected_total=self._meta("rejected_total"),
                last_seq=self._meta("last_seq"),
                last_ack_at=float(last_ack) if last_ack else None,
            )
