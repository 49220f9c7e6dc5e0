"""The retention pass: reports rolled up as they arrive, then each kind of history expired
past its horizon, in small paced transactions (only the leading collector runs it).

Steps, each resumable from its mark in the store: roll up reports (arrival order), write the
expected counts of each closed hour, merge hourly buckets into days past `retention.hourly`,
pack raw reports past `retention.pack` into compressed blocks (one per agent, spool and
PACK_WINDOW of arrival), expire rollups, raw reports and blocks (only those already rolled
up), alert history, notifications and mail; on SQLite, give freed pages back to the file
system.

A retry of a report packed already (its ack lost on a link that then stayed down past
`retention.pack`) is not seen by the ingest's (agent, seq) key, which only covers raw rows:
the roll step finds it in the blocks and deletes it instead of rolling it up twice."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from collector.alerts.engine import Pacer
from collector.compliance.evaluate import Memo
from collector.compliance.model import Rule
from collector.config import RetentionConfig
from collector.decode import stored_report
from collector.model import ROLLUP_AVAILABILITY, AgentRecord, RollupKey, Stat
from collector.rollup import HOUR, Days, add, expected, hour_of, summarise
from collector.store import Store
from collector.store.rollups import Mark, RawReport

__all__ = ["ROLL_LAG", "RetentionPass"]

log = logging.getLogger(__name__)

# Reports are rolled up once received this long ago: an ingest takes its received_at before
# it waits for the writer, so a report committed late is never behind the mark.
ROLL_LAG = 60.0
# Rows per transaction: small enough that Submit's commits wait for at most one of them.
CHUNK = 500
# Raw reports are packed by agent, spool and this window of arrival (UTC-aligned): 1,440
# reports at the default 15 s, enough for the compression to find what repeats; bigger
# windows gain under 1 % (bench/storage.py). A packed report expires with its whole block:
# up to one window after `retention.raw`.
PACK_WINDOW = 6 * 3600.0
# At most this many reports in one block (a backlog delivered at once lands in one window).
PACK_MAX = 3000


@dataclass
class PassResult:
    """What one pass did: rows per step."""

    done: dict[str, int] = field(default_factory=dict)

    def count(self, step: str, n: int) -> None:
        self.done[step] = self.done.get(step, 0) + n


class RetentionPass:
    def __init__(
        self,
        store: Store,
        cfg: RetentionConfig,
        *,
        report_interval: float,
        reachable_within: float,
        rules: Callable[[], Sequence[Rule]] = tuple,
        pace: Callable[[], Callable[[], None]] = Pacer,
        chunk: int = CHUNK,
    ) -> None:
        self._chunk = chunk
        self._store = store
        self._cfg = cfg
        self._interval = report_interval
        self._reachable = reachable_within
        self._rules = rules
        self._pace = pace
        self._days = Days(cfg.timezone)

    # ---- what would go (store prune --dry-run) -------------------------------------------

    def plan(self, now: float) -> dict[str, int]:
        """Rows each step would roll up, merge or delete if the pass ran at `now`."""
        r = self._store.rollups
        mark = r.mark("rolled")
        pending = r.reports_pending(mark, now - ROLL_LAG)
        # What the rollup step leaves: everything received before the lag.
        raw_before = min(now - self._cfg.raw, now - ROLL_LAG)
        expiring = r.count_before("reports", raw_before)
        packing = r.count_before("reports", self._pack_before(now, now - ROLL_LAG)) - expiring
        out = {
            "reports to roll up": pending,
            "hourly rollups to merge into days": r.hourly_before(now - self._cfg.hourly),
            "rollups": r.count_before("rollups", now - self._cfg.rollups),
            "reports": expiring,
            "reports to pack": packing,
            "report_blocks": r.count_before("report_blocks", raw_before),
        }
        for name, horizon in self._history(now).items():
            out[name] = r.count_before(name, horizon)
        return out

    # ---- the pass ------------------------------------------------------------------------

    def run(self, now: float, stop: threading.Event | None = None) -> PassResult:
        """Every step until caught up as of `now`, or until `stop` is set."""
        result = PassResult()
        pace = self._pace()
        stopped = stop.is_set if stop is not None else lambda: False
        c = self._cfg
        agents = {a.agent_id: a for a in self._store.list_agents()}
        # Each step returns the rows it handled (0: caught up); a step named None counts
        # what it did itself.
        steps: list[tuple[str | None, Callable[[], int]]] = [
            (None, lambda: self._roll(now, agents, pace, result)),
            ("expected", lambda: self._expected(now, agents)),
            ("merged into days", lambda: self._compact(now)),
            ("rollups", lambda: self._expire("rollups", now - c.rollups)),
            # Past `raw` first: a store that kept more than `raw` never packs what goes.
            ("reports", lambda: self._expire_reports("reports", now)),
            ("packed", lambda: self._pack(now)),
            ("report_blocks", lambda: self._expire_reports("report_blocks", now)),
            *(
                (name, lambda name=name, h=h: self._expire(name, h))
                for name, h in self._history(now).items()
            ),
        ]
        for name, step in steps:
            while not stopped() and (n := step()):
                if name is not None:
                    result.count(name, n)
                pace()
        if result.done:  # rows deleted or moved: pages freed
            self._store.reclaim(pace, stopped)
        return result

    def _history(self, now: float) -> dict[str, float]:
        c = self._cfg
        return {
            "alert_history": now - c.alert_history,
            "notifications": now - c.notifications,
            "mail_outbox": now - c.mail,
            "mail_queue": now - c.mail,
        }

    def _roll(
        self,
        now: float,
        agents: dict[str, AgentRecord],
        pace: Callable[[], None],
        result: PassResult,
    ) -> int:
        """The next chunk of reports rolled up; paced per report, since decoding and judging
        a chunk is pure Python that would otherwise hold the GIL from Submit's handlers."""
        r = self._store.rollups
        mark = r.mark("rolled")
        batch = r.reports_after(mark, now - ROLL_LAG, self._chunk)
        if not batch:
            return 0
        rules = self._rules()
        memo = Memo()
        stats: dict[RollupKey, Stat] = {}
        again, conflicts = self._packed_already(batch)
        for raw in batch:
            if (raw.agent_id, raw.seq) in again:
                continue
            agent = agents.get(raw.agent_id) or self._store.get_agent(raw.agent_id)
            agents[raw.agent_id] = agent
            received = [(stored_report(raw.wire, raw.payload), raw.received_at)]
            for key, stat in summarise(
                agent, received, rules, self._interval, self._reachable, memo=memo
            ).items():
                add(stats, key, stat)
            pace()
        last = batch[-1]
        moved = Mark(last.received_at, last.agent_id, last.seq)
        if not r.add(stats, "rolled", mark, moved, duplicates=again, conflicts=conflicts):
            log.warning("retention: another pass rolled these reports up first")
            return 0
        result.count("rolled up", len(batch) - len(again))
        if again:
            result.count("dropped: packed already", len(again))
        return len(batch)

    def _packed_already(
        self, batch: Sequence[RawReport]
    ) -> tuple[set[tuple[str, int]], dict[str, int]]:
        """The reports of `batch` that are in a block already, and per agent how many of them
        came with other content than the packed one (boot, collection time): a clone."""
        tops = self._store.rollups.packed_tops({raw.agent_id for raw in batch})
        maybe: dict[str, list[RawReport]] = {}
        for raw in batch:
            if raw.seq <= tops.get(raw.agent_id, -1):
                maybe.setdefault(raw.agent_id, []).append(raw)
        again: set[tuple[str, int]] = set()
        conflicts: dict[str, int] = {}
        for agent_id, rows in maybe.items():
            packed = self._store.rollups.packed(agent_id, [raw.seq for raw in rows])
            for raw in rows:
                if (kept := packed.get(raw.seq)) is None:
                    continue  # a report that filled a gap: new
                again.add((agent_id, raw.seq))
                if (kept.boot_id, kept.collected_at) != (raw.boot_id, raw.collected_at):
                    conflicts[agent_id] = conflicts.get(agent_id, 0) + 1
        for agent_id, n in conflicts.items():
            log.warning(
                "agent %s: %d reports again with a packed seq and other content:"
                " a cloned machine or a shared credential",
                agent_id,
                n,
            )
        return again, conflicts

    def _expected(self, now: float, agents: dict[str, AgentRecord]) -> int:
        """The expected counts of closed hours, for up to `chunk` (hour, agent) pairs from the
        mark on, in hour then agent order."""
        if not agents:
            return 0
        r = self._store.rollups
        was = r.mark("expected")
        # From the hour of the first enrollment, or of the oldest rollup kept.
        first = max(min(a.enrolled_at for a in agents.values()), now - self._cfg.rollups)
        hour = hour_of(first) if was is None else was.at
        after = "" if was is None else was.agent_id
        ids = sorted(agents)
        stats: dict[RollupKey, Stat] = {}
        done = 0
        while done < self._chunk and hour + HOUR <= now - ROLL_LAG:
            for agent_id in ids:
                if agent_id <= after:
                    continue
                n = expected(agents[agent_id], hour, self._interval)
                if n > 0:
                    stats[RollupKey(agent_id, HOUR, hour, ROLLUP_AVAILABILITY, "expected")] = (
                        Stat.of(n)
                    )
                done += 1
                after = agent_id
                if done == self._chunk:
                    break
            else:  # the hour is done for every agent
                hour, after = hour + HOUR, ""
                done += 1  # an hour without agents still costs a step
        if not done or not r.add(stats, "expected", was, Mark(hour, after)):
            return 0
        return done

    def _compact(self, now: float) -> int:
        before = self._days(now - self._cfg.hourly)  # whole local days only
        return self._store.rollups.compact(before, self._days, self._chunk)

    def _pack_before(self, now: float, rolled: float) -> float:
        """Raw reports received before this are packed: whole windows, rolled up already."""
        edge = min(now - self._cfg.pack, rolled)
        return edge - edge % PACK_WINDOW

    def _pack(self, now: float) -> int:
        r = self._store.rollups
        mark = r.mark("rolled")
        if mark is None:
            return 0
        # Caught up: every report received before the lag is rolled up, not only those up
        # to the last one (the newest window closes though no report came after it).
        rolled = now - ROLL_LAG if not r.reports_pending(mark, now - ROLL_LAG) else mark.at
        return r.pack_next(self._pack_before(now, rolled), PACK_WINDOW, PACK_MAX)

    def _expire_reports(self, name: str, now: float) -> int:
        rolled = self._store.rollups.rolled_until()
        if rolled is None:
            return 0
        # Only reports already rolled up: the mark's own time may hold some that are not.
        before = min(now - self._cfg.raw, rolled)
        return self._expire(name, before)

    def _expire(self, name: str, before: float) -> int:
        return self._store.rollups.expire(name, before, self._chunk)
