"""The retention pass: reports rolled up as they arrive, then each kind of history expired
past its horizon, in small paced transactions (only the leading collector runs it).

Steps, each resumable from its mark in the store: roll up reports (arrival order), write the
expected counts of each closed hour, merge hourly buckets into days past `retention.hourly`,
expire rollups, raw reports (only those already rolled up), alert history, notifications and
mail; on SQLite, give freed pages back to the file system."""

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
from collector.store.rollups import Mark

__all__ = ["ROLL_LAG", "RetentionPass"]

log = logging.getLogger(__name__)

# Reports are rolled up once received this long ago: an ingest takes its received_at before
# it waits for the writer, so a report committed late is never behind the mark.
ROLL_LAG = 60.0
# Rows per transaction: small enough that Submit's commits wait for at most one of them.
CHUNK = 500


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
        raw_before = now - self._cfg.raw
        out = {
            "reports to roll up": pending,
            "hourly rollups to merge into days": r.hourly_before(now - self._cfg.hourly),
            "rollups": r.count_before("rollups", now - self._cfg.rollups),
            # What the rollup step leaves: everything received before the lag.
            "reports": r.count_before("reports", min(raw_before, now - ROLL_LAG)),
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
        steps: list[tuple[str, Callable[[], int]]] = [
            ("rolled up", lambda: self._roll(now, agents, pace)),
            ("expected", lambda: self._expected(now, agents)),
            ("merged into days", lambda: self._compact(now)),
            ("rollups", lambda: self._expire("rollups", now - c.rollups)),
            ("reports", lambda: self._expire_reports(now)),
            *(
                (name, lambda name=name, h=h: self._expire(name, h))
                for name, h in self._history(now).items()
            ),
        ]
        for name, step in steps:
            while not stopped() and (n := step()):
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

    def _roll(self, now: float, agents: dict[str, AgentRecord], pace: Callable[[], None]) -> int:
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
        for raw in batch:
            agent = agents.get(raw.agent_id) or self._store.get_agent(raw.agent_id)
            agents[raw.agent_id] = agent
            received = [(stored_report(raw.wire, raw.payload), raw.received_at)]
            for key, stat in summarise(
                agent, received, rules, self._interval, self._reachable, memo=memo
            ).items():
                add(stats, key, stat)
            pace()
        last = batch[-1]
        if not r.add(stats, "rolled", mark, Mark(last.received_at, last.agent_id, last.seq)):
            log.warning("retention: another pass rolled these reports up first")
            return 0
        return len(batch)

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

    def _expire_reports(self, now: float) -> int:
        rolled = self._store.rollups.rolled_until()
        if rolled is None:
            return 0
        # Only reports already rolled up: the mark's own time may hold some that are not.
        before = min(now - self._cfg.raw, rolled)
        return self._expire("reports", before)

    def _expire(self, name: str, before: float) -> int:
        return self._store.rollups.expire(name, before, self._chunk)
