"""Store growth and the rollup read, scaled down and extrapolated (said so in the output).

1. Bytes per agent-day: AGENTS simulated agents send one report (bench.fleet's sections) at the
   agent's default intervals — hardware and link every 15 s, antivirus and security every
   5 minutes — for one simulated day,
   in batches of 40 (10 minutes), into a SQLite store; then the retention pass rolls them up
   with the shipped rules and packs them into blocks (6 hours per block), and the rollups
   are merged into days. Bytes are SQLite's own accounting (dbstat: table + indexes).
2. A 300-machine district after a year, computed from those figures and the default
   retention (30 days of reports, at most `pack` + one window of them raw and the rest
   packed, 7 days of hourly rollups, the rest of 400 days daily).
3. Reading a month of rollups (what the monthly export reads): 100 agents x 30 daily buckets
   (a past month is past `retention.hourly`) and, for comparison, 20 agents x 720 hourly ones,
   with the metrics per agent-hour measured in 1, read with `Store.rollups.totals`; time and
   Python peak memory, then extrapolated to 10,000 agents.
`python -m bench.storage`.
"""

from __future__ import annotations

import random
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from agent.model import Report
from agent.transport.encode import to_pb
from bench.fleet import simulated_antivirus, simulated_hardware, simulated_link, simulated_security
from collector.compliance.loader import load_pack
from collector.config import RetentionConfig
from collector.decode import decode_report
from collector.model import Placement
from collector.retention import PACK_WINDOW, RetentionPass
from collector.store import MachineFacts, Store
from collector.store.schema import rollups

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
AGENTS = 4
INTERVAL = 15.0
SLOW_EVERY = 20  # 5 min / 15 s
BATCH = 40
DAY = 86400.0
READS = {86400: 100, 3600: 20}  # bucket span -> agents read
DISTRICT = 300
PLACE = Placement("Cao Bằng", "Hạ Lang", "Thanh Nhật", "UBND", "workstation")


def _sizes(store: Store) -> dict[str, int]:
    return {t.name: t.bytes or 0 for t in store.rollups.tables()}


def growth(tmp: str) -> dict[str, float]:
    rng = random.Random(3)
    store = Store(f"sqlite:///{tmp}/growth.db", sqlite_synchronous="off")
    start = time.time() - 40 * DAY
    _, token = store.create_token(PLACE, 1e9, start - 60)
    agents = [
        store.enroll(token, MachineFacts(f"g{i}", f"pc-{i}", "Windows", "10", "b"), start - 60)
        for i in range(AGENTS)
    ]
    empty = _sizes(store)
    per_day = int(DAY / INTERVAL)
    for i, e in enumerate(agents):
        hw = simulated_hardware(rng, f"pc-{i}")
        for first in range(0, per_day, BATCH):
            batch = []
            for seq in range(first + 1, first + BATCH + 1):
                at = start + seq * INTERVAL
                slow = seq % SLOW_EVERY == 0  # antivirus and security: every 5 minutes
                r = Report(
                    int(at * 1000), "b", "bench", hardware=hw, link=simulated_link(rng),
                    antivirus=simulated_antivirus(rng, at) if slow else None,
                    security=simulated_security(rng, at) if slow else None,
                )  # fmt: skip
                wire = to_pb(r)
                wire.seq = seq
                batch.append(decode_report(wire, at + 1))
            store.ingest(e.agent.agent_id, batch, now=start + (first + BATCH) * INTERVAL + 1)
    raw = _sizes(store)
    cfg = RetentionConfig()
    pack = load_pack(ROOT / "rules" / "default.yaml")
    pass_ = RetentionPass(
        store, cfg, report_interval=INTERVAL, reachable_within=3 * INTERVAL,
        rules=pack.agent_rules, pace=lambda: lambda: None,
    )  # fmt: skip
    began = time.process_time()
    done = pass_.run(start + DAY + 2 * 3600)  # rolled up, and packed past `retention.pack`
    roll_cpu = time.process_time() - began
    hourly = _sizes(store)
    packed = done.done["packed"]
    rows = sum(t.rows for t in store.rollups.tables() if t.name == "rollups")
    # Every bucket older than a day merged into days, as past retention.hourly.
    daily_cfg = RetentionConfig(hourly=1.0)
    RetentionPass(
        store, daily_cfg, report_interval=INTERVAL, reachable_within=3 * INTERVAL,
        pace=lambda: lambda: None,
    ).run(start + 3 * DAY)  # fmt: skip
    daily = _sizes(store)
    store.close()
    agent_days = AGENTS * (per_day * INTERVAL / DAY)
    report_bytes = raw["reports"] - empty["reports"]
    packed_bytes = hourly["report_blocks"] - empty["report_blocks"]
    return {
        "raw_bytes_per_agent_day": report_bytes / agent_days,
        # Per agent-day of reports, as if every report were packed (a few of the last
        # window stay raw in this run).
        "packed_bytes_per_agent_day": packed_bytes / agent_days * (AGENTS * per_day / packed),
        "packed_share": packed / (AGENTS * per_day),
        "snapshot_bytes_per_agent": (raw["snapshots"] - empty["snapshots"]) / AGENTS,
        "hourly_rollup_bytes_per_agent_day": (hourly["rollups"] - empty["rollups"]) / agent_days,
        "daily_rollup_bytes_per_agent_day": (daily["rollups"] - empty["rollups"]) / agent_days,
        "rollup_rows_per_agent_hour": rows / (agent_days * 24),
        "rollup_cpu_seconds_per_agent_day": roll_cpu / agent_days,
        "reports_per_agent_day": per_day,
    }


def district_year(g: dict[str, float]) -> dict[str, float]:
    cfg = RetentionConfig()
    raw_days, hourly_days = cfg.raw / DAY, cfg.hourly / DAY
    daily_days = 365 - hourly_days
    # At steady state at most `pack` and one window of reports are raw; the rest of the raw
    # horizon is packed (a block may outlive it by one window).
    unpacked_days = (cfg.pack + PACK_WINDOW) / DAY
    total = DISTRICT * (
        unpacked_days * g["raw_bytes_per_agent_day"]
        + (raw_days + PACK_WINDOW / DAY) * g["packed_bytes_per_agent_day"]
        + hourly_days * g["hourly_rollup_bytes_per_agent_day"]
        + daily_days * g["daily_rollup_bytes_per_agent_day"]
    )
    unpacked = DISTRICT * (
        raw_days * g["raw_bytes_per_agent_day"]
        + hourly_days * g["hourly_rollup_bytes_per_agent_day"]
        + daily_days * g["daily_rollup_bytes_per_agent_day"]
    )
    never_deleted = DISTRICT * 365 * g["raw_bytes_per_agent_day"]
    return {
        "district_year_bytes": total,
        "district_year_unpacked_bytes": unpacked,
        "district_year_without_retention_bytes": never_deleted,
    }


def read_month(tmp: str, metrics: int, span: int, agents: int) -> dict[str, float]:
    store = Store(f"sqlite:///{tmp}/read-{span}.db", sqlite_synchronous="off")
    buckets = int(30 * DAY / span)
    names = [("availability", "received"), ("availability", "reachable")] + [
        ("hardware", f"m{i}") for i in range(metrics - 2)
    ]
    with store.engine.begin() as conn:
        for a in range(agents):
            rows = [
                {
                    "span": span, "start": b * float(span), "agent_id": f"agent-{a:05d}",
                    "section": s, "metric": m, "count": 240, "total": 120.0,
                    "low": 0.0, "high": 1.0,
                }
                for b in range(buckets)
                for s, m in names
            ]  # fmt: skip
            conn.execute(insert(rollups), rows)
    tracemalloc.start()
    began = time.perf_counter()
    n = sum(1 for _ in store.rollups.totals(0, 30 * DAY))
    seconds = time.perf_counter() - began
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    store.close()
    assert n == agents * metrics
    return {
        "agents": agents,
        "rows": agents * buckets * metrics,
        "seconds": seconds,
        "peak_bytes": peak,
        "seconds_10000_agents": seconds * 10_000 / agents,
    }


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        g = growth(tmp)
        d = district_year(g)
        metrics = round(g["rollup_rows_per_agent_hour"])
        # Hourly buckets are 24 times the rows: fewer agents keep the run short.
        reads = {span: read_month(tmp, metrics, span, n) for span, n in READS.items()}
    mib, kib, gib = 2**20, 1024, 2**30
    lines = [
        f"store growth, SQLite ({AGENTS} agents x 1 simulated day; per agent-day)",
        f"  raw reports (with indexes)   {g['raw_bytes_per_agent_day'] / mib:8.2f} MiB",
        f"  packed reports               {g['packed_bytes_per_agent_day'] / mib:8.2f} MiB"
        f"  ({g['raw_bytes_per_agent_day'] / g['packed_bytes_per_agent_day']:.1f}x smaller;"
        f" {g['packed_share']:.0%} of the day packed in this run)",
        f"  hourly rollups               {g['hourly_rollup_bytes_per_agent_day'] / kib:8.1f} KiB",
        f"  daily rollups                {g['daily_rollup_bytes_per_agent_day'] / kib:8.1f} KiB",
        f"  rollup rows per agent-hour   {g['rollup_rows_per_agent_hour']:8.1f}",
        f"  rollup pass CPU              {g['rollup_cpu_seconds_per_agent_day']:8.2f} s",
        f"{DISTRICT}-machine district after a year (extrapolated, default retention)",
        f"  with retention               {d['district_year_bytes'] / gib:8.2f} GiB"
        f" ({d['district_year_bytes'] / 1e9:.1f} GB; target <= 10 GB)",
        f"  without packing              {d['district_year_unpacked_bytes'] / gib:8.2f} GiB",
        f"  every report kept            {d['district_year_without_retention_bytes'] / gib:8.1f}"
        " GiB",
        "reading a month of rollups (extrapolated to 10,000 agents)",
    ]
    for span, r in reads.items():
        kind = "daily " if span == 86400 else "hourly"
        lines.append(
            f"  {kind} {r['agents']:>4.0f} agents {r['rows']:>10,} rows  {r['seconds']:7.2f} s"
            f"  (10,000 agents: {r['seconds_10000_agents']:.0f} s)"
            f"  Python peak {r['peak_bytes'] / mib:.2f} MiB"
        )
    print("\n".join(lines))
    out: dict[str, Any] = {**g, **d}
    for span, r in reads.items():
        kind = "daily" if span == 86400 else "hourly"
        out.update({f"read_{kind}_{k}": v for k, v in r.items()})
    return out


if __name__ == "__main__":
    main()
