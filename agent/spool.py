"""Durable local queue of reports: written before a report counts as collected, removed on ack."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from agent.errors import SpoolError
from agent.model import SpoolStats

__all__ = ["Spool", "SpoolStatus"]

log = logging.getLogger(__name__)

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
    spool_id: int
    depth: int
    bytes: int
    dropped_total: int
    rejected_total: int
    unspooled_total: int
    resets_total: int
    reset_lost_total: int
    last_seq: int
    last_ack_at: float | None  # Unix seconds of the last successful delivery
    oldest_at: float | None = None  # collection time of the oldest report still waiting


# SQLITE_CORRUPT, SQLITE_NOTADB: what a damaged or overwritten file answers.
_CORRUPT = frozenset({11, 26})


@dataclass(frozen=True)
class _Reset:
    why: str
    lost: int | None  # reports the old spool held, when it could still be counted


def _random_id() -> int:
    """63 random bits, never 0 (not `secrets`: it maps OpenSSL's hashlib into the service)."""
    return int.from_bytes(os.urandom(8), "big") >> 1 or 1


def _countable_backlog(path: Path) -> int | None:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return int(db.execute("SELECT count(*) FROM reports").fetchone()[0])
    except sqlite3.Error:
        return None


def _read_marker(path: Path) -> tuple[int, int]:
    """(resets, reports lost with them) recorded beside the spool, which outlive it."""
    try:
        _, resets, lost = path.read_text(encoding="ascii").split()
        return int(resets), int(lost)
    except (OSError, ValueError):
        return 0, 0


class Spool:
    """SQLite (WAL, synchronous=FULL) queue ordered by seq.

    Bounded by `max_bytes` of payload and `max_age` seconds; past either bound the oldest
    reports are evicted and counted in `dropped_total`, which every later report carries.

    Each spool has a random id (`spool_id`), drawn when it is created and sent with every
    report: seqs restart at 1 in a new spool, and the collector keys reports by (agent, spool,
    seq). A spool found corrupt is moved aside, one found emptied is removed, and one deleted
    is noticed by its marker file (`spool.id`, beside it); each is replaced by a fresh spool
    and counted in `resets_total` (with the backlog it held, where it can still be counted,
    in `reset_lost_total`), which the marker carries from spool to spool.
    """

    def __init__(
        self,
        path: Path,
        max_bytes: int,
        max_age: float,
        clock: Callable[[], float] = time.time,
        origin: str = "",
    ) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._max_age_ms = int(max_age * 1000)
        self._clock = clock
        self._lock = threading.Lock()
        # Reports collected but never written (disk full): counted since start, carried by
        # the next report that is written.
        self._unspooled = 0
        self._marker = path.with_suffix(".id")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            reset = self._unusable()
            self._db = self._connect()
            self.spool_id = self._identify(reset, zlib.crc32(origin.encode()) if origin else 0)
        except (OSError, sqlite3.Error) as e:
            raise SpoolError(f"{path}: cannot open spool: {e}") from None

    def _connect(self) -> sqlite3.Connection:
        # 0600 before SQLite opens it (0644 under the usual umask); -wal/-shm follow it.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        # FULL: a report the agent has spooled survives a power cut, not only a crash.
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=5000")
        # 256 KiB instead of SQLite's 2 MB: replaying a long backlog reads each page once,
        # and a full cache would stay in the service's memory for good.
        db.execute("PRAGMA cache_size=-256")
        db.executescript(_SCHEMA)
        return db

    def _unusable(self) -> _Reset | None:
        """Why the spool file cannot be kept (corrupt, emptied, deleted), after moving a
        corrupt one aside; None for a healthy spool or the first start."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            # SQLite makes a zero-byte file its database: only the marker tells a spool that
            # was emptied or deleted from one that was never written.
            if not self._marker.exists():
                return None
            return _Reset("deleted" if not self.path.exists() else "emptied (zero bytes)", None)
        try:
            with contextlib.closing(sqlite3.connect(self.path)) as db:
                verdict = db.execute("PRAGMA quick_check").fetchone()[0]
                if verdict == "ok":
                    db.execute("SELECT count(*) FROM meta").fetchone()
                    return None
        except sqlite3.DatabaseError as e:
            if e.sqlite_errorcode & 0xFF not in _CORRUPT:
                raise  # cannot open it (permissions, a directory): not the spool's fault
            verdict = str(e)
        lost = _countable_backlog(self.path)
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(self._clock())}")
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")
        return _Reset(f"corrupt ({verdict}), moved aside to {aside.name}", lost)

    def _identify(self, reset: _Reset | None, origin: int) -> int:
        """This spool's id; a fresh spool draws one and counts the reset that made it.

        `origin` (a checksum of the host name) changing means the state dir now serves
        another machine — a cloned image, or a renamed host: reports from here on are
        numbered under a new id, so two live copies never send the same (spool, seq). The
        reports already spooled keep theirs and go first."""
        found = self._db.execute("SELECT value FROM meta WHERE key = 'spool_id'").fetchone()
        if found is not None:
            self._resets, self._reset_lost = (
                self._meta("resets_total"),
                self._meta("reset_lost_total"),
            )
            was = self._meta("origin")
            if not origin or was in (0, origin):
                if origin and not was:
                    self._write_meta(origin=origin)
                return int(found[0])
            spool_id = _random_id()
            log.warning(
                "spool %s was written on a machine of another name (a cloned image or a renamed"
                " host): new reports are numbered under a new spool id",
                self.path,
            )
            self._write_meta(spool_id=spool_id, origin=origin)
            self._write_marker(spool_id)
            return spool_id
        # A spool written by an agent older than spool ids keeps id 0: its reports were stored
        # as spool 0, and its seqs go on from where they are.
        spool_id = 0 if self._meta("last_seq") > 0 else _random_id()
        resets, lost = _read_marker(self._marker)
        if reset is not None:
            resets += 1
            lost += reset.lost or 0
            backlog = "unknown" if reset.lost is None else str(reset.lost)
            log.error(
                "spool %s was %s; a fresh spool is started (reports lost with it: %s)",
                self.path,
                reset.why,
                backlog,
            )
        self._resets, self._reset_lost = resets, lost
        self._write_meta(
            spool_id=spool_id, resets_total=resets, reset_lost_total=lost, origin=origin
        )
        self._write_marker(spool_id)
        return spool_id

    def _write_meta(self, **values: int) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            for key, value in values.items():
                self._set_meta(key, value)
            self._db.execute("COMMIT")

    def _write_marker(self, spool_id: int) -> None:
        tmp = self._marker.with_suffix(".id.tmp")
        tmp.write_text(f"{spool_id} {self._resets} {self._reset_lost}\n", encoding="ascii")
        os.replace(tmp, self._marker)

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
                payload = encode(seq, self._stats(self._meta("dropped_total") + dropped, depth))
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
                    payload = encode(seq, self._stats(total, depth))
                self._db.execute(
                    "INSERT INTO reports(seq, collected_at_ms, size, payload) VALUES (?, ?, ?, ?)",
                    (seq, collected_at_ms, len(payload), payload),
                )
                self._set_meta("last_seq", seq)
                self._db.execute("COMMIT")
            except sqlite3.Error as e:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                self._unspooled += 1
                raise SpoolError(f"{self.path}: cannot store report: {e}") from None
            return seq

    def _stats(self, dropped_total: int, depth: int) -> SpoolStats:
        return SpoolStats(
            dropped_total,
            depth,
            self._unspooled,
            self._resets,
            self._reset_lost,
        )

    def pending(self, limit: int) -> list[tuple[int, bytes]]:
        """The oldest `limit` reports, in seq order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, payload FROM reports ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [(int(s), bytes(p)) for s, p in rows]

    def set_bounds(self, max_bytes: int, max_age: float) -> None:
        """New bounds (pushed settings), applied from the next append."""
        with self._lock:
            self._max_bytes = max_bytes
            self._max_age_ms = int(max_age * 1000)

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
            depth, used, oldest_ms = self._db.execute(
                "SELECT count(*), coalesce(sum(size), 0), min(collected_at_ms) FROM reports"
            ).fetchone()
            last_ack = self._meta("last_ack_at")
            return SpoolStatus(
                spool_id=self.spool_id,
                depth=int(depth),
                bytes=int(used),
                dropped_total=self._meta("dropped_total"),
                rejected_total=self._meta("rejected_total"),
                unspooled_total=self._unspooled,
                resets_total=self._resets,
                reset_lost_total=self._reset_lost,
                last_seq=self._meta("last_seq"),
                last_ack_at=float(last_ack) if last_ack else None,
                oldest_at=oldest_ms / 1000 if oldest_ms is not None else None,
            )
