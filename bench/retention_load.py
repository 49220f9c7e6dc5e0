"""Submit latency while the retention pass runs, against the same collector without it.

A real `canhgac-collector serve` (SQLite, the shipped rules) whose store holds a backlog of
BACKLOG_AGENTS x BACKLOG_REPORTS reports, half of the agents' received 31 days ago (past
`retention.raw`: rolled up, then deleted), half 2 days ago (rolled up, then packed): a
scaled-down month (a month of 10,000 agents is 17 billion reports at 15 s, far beyond a
3-minute run). Paced Submit load (RATE calls/s, batch 1, latency from the scheduled time)
runs once before the pass starts (the timer's first run is `retention.every` after start)
and once while it rolls up and expires the backlog. `python -m bench.retention_load`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select

from bench.ingest import collector_process, load
from collector.model import Report
from collector.store import Store
from collector.store.schema import reports, retention_marks

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
BACKLOG_AGENTS = 50
BACKLOG_REPORTS = 1500
RATE = 100.0  # Submit calls per second
SECONDS = 12.0
FIRST_PASS_AFTER = 75  # retention.every: seeding and the baseline fit before it


def _seed(db: Path, agents: list[str]) -> None:
    store = Store(f"sqlite:///{db}", "normal")
    hardware = {"cpu": {"usage_ratio": 0.3}, "memory": {"total_bytes": 8 << 30}}
    try:
        for i, agent_id in enumerate(agents):
            old = time.time() - (31 if i % 2 else 2) * 86400
            for first in range(0, BACKLOG_REPORTS, 500):
                batch = [
                    Report(1_000_000 + s, "b", old + 15 * s, "0.1.0", {"hardware": hardware})
                    for s in range(first + 1, first + 501)
                ]
                store.ingest(agent_id, batch, now=old + 15 * (first + 500))
    finally:
        store.close()


def _progress(db: Path) -> tuple[bool, int]:
    """(the pass has started, reports left in the store)."""
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            started = conn.execute(select(func.count()).select_from(retention_marks)).scalar()
            left = conn.execute(select(func.count()).select_from(reports)).scalar()
    finally:
        engine.dispose()
    return bool(started), int(left or 0)


def main() -> dict[str, Any]:
    config = f"retention:\n  every: {FIRST_PASS_AFTER}s\n"
    with collector_process(100 + BACKLOG_AGENTS, ROOT / "rules", config=config) as c:
        began = time.monotonic()
        db = c.tmp / "c.db"
        store = Store(f"sqlite:///{db}", "normal")
        # The backlog's agents are not the callers (list_agents' order is not enrollment's).
        agents = [store.authenticate(s).agent_id for s in c.secrets[:BACKLOG_AGENTS]]
        store.close()
        _seed(db, agents)
        seeded = _progress(db)[1]
        callers = c.secrets[BACKLOG_AGENTS:]
        # The first report of each caller registers its spool: sent before the baseline, so
        # that neither figure pays for it (3 s: every caller's thread goes round its agents).
        load(c.address, c.pid, callers, 1, RATE, 3.0)
        base = load(c.address, c.pid, callers, 1, RATE, SECONDS)
        assert time.monotonic() - began < FIRST_PASS_AFTER, "the baseline overlapped the pass"
        while not _progress(db)[0]:
            time.sleep(0.2)
        during = load(c.address, c.pid, callers, 1, RATE, SECONDS)
        still_running = _progress(db)[1] > 0
    print(
        f"Submit during a retention pass (SQLite; {seeded:,} reports to roll up, half to"
        f" delete, half to pack: {BACKLOG_AGENTS} agents x {BACKLOG_REPORTS};"
        f" load {RATE:.0f} calls/s, batch 1)"
    )
    print(f"{'':22}{'p50 ms':>10}{'p99 ms':>10}")
    for name, r in (("no pass", base), ("during the pass", during)):
        print(f"{name:22}{r.p50_ms:>10.1f}{r.p99_ms:>10.1f}")
    print(
        f"  p99 ratio {during.p99_ms / base.p99_ms:.2f};"
        f" pass still running at the end: {still_running}"
    )
    return {
        "backlog_reports": seeded,
        "p50_ms_no_pass": base.p50_ms,
        "p99_ms_no_pass": base.p99_ms,
        "p50_ms_during_pass": during.p50_ms,
        "p99_ms_during_pass": during.p99_ms,
        "pass_outlasted_the_load": still_running,
    }


if __name__ == "__main__":
    main()
