"""The monthly audit export's peak memory and time, by fleet size, against an empty store.

Each fleet size gets its own SQLite store: agents enrolled with a hardware snapshot (through
the real ingest), a month of daily rollup buckets per agent (availability and the four machine
indicators), then `canhgac-collector export --period 2026-10` runs as its own process and its
peak RSS is read from the kernel (ru_maxrss of the child). The baseline is the same export of a
store with no agents: the process's own libraries. The slope per agent gives the 10,000-agent
figure (measured at smaller sizes to keep `make bench` short; the read is streamed and grouped
in the database, so memory grows with the agents, not the buckets).

Daily buckets are what a month older than `retention.hourly` holds; a recent month has hourly
buckets, 24x the rows for the database to group, the same rows for the export to hold.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from bench.metrics_render import _fleet
from collector.indicators import MACHINE_INDICATORS
from collector.model import ROLLUP_AVAILABILITY, ROLLUP_INDICATOR
from collector.store import Store
from collector.store.schema import rollups

SIZES = (0, 500, 2000)
TARGET = 10_000
OCTOBER = datetime(2026, 10, 1, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")).timestamp()
DAYS = 31


def _seed(folder: Path, n: int) -> Path:
    db = folder / "c.db"
    store = Store(f"sqlite:///{db}")
    agents = _fleet(store, n) if n else []
    metrics = [
        (ROLLUP_AVAILABILITY, "received", 24, 24.0),
        (ROLLUP_AVAILABILITY, "expected", 1, 24.0),
        (ROLLUP_AVAILABILITY, "reachable", 24, 23.0),
        *((ROLLUP_INDICATOR, i.id, 24, 20.0) for i in MACHINE_INDICATORS),
    ]
    rows: list[dict[str, Any]] = []
    with store.engine.begin() as conn:
        for agent_id, _ in agents:
            for day in range(DAYS):
                for section, metric, count, total in metrics:
                    rows.append(
                        {
                            "span": 86400,
                            "start": OCTOBER + day * 86400,
                            "agent_id": agent_id,
                            "section": section,
                            "metric": metric,
                            "count": count,
                            "total": total,
                            "low": 0.0,
                            "high": 1.0,
                        }
                    )
            if len(rows) > 20_000:
                conn.execute(insert(rollups), rows)
                rows.clear()
        if rows:
            conn.execute(insert(rollups), rows)
    store.close()
    config = folder / "collector.yaml"
    sites = Path(__file__).resolve().parents[1] / "configs" / "sites.example.yaml"
    config.write_text(f"store:\n  url: sqlite:///{db}\nsites_file: {sites}\n", encoding="utf-8")
    return config


def _export(config: Path, out: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one export process."""
    cli = Path(sys.executable).parent / "canhgac-collector"
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.monotonic()
    subprocess.run(
        [str(cli), "--config", str(config), "export", "--period", "2026-10", "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    took = time.monotonic() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest child so far: sizes run in increasing order.
    return took, max(peak, before) / 1024


def main() -> dict[str, Any]:
    print("export: a month (daily buckets) of N agents, every format; own process each")
    print(f"{'agents':>8} {'seconds':>8} {'peak MiB':>9} {'x baseline':>11}")
    results: dict[str, Any] = {}
    base_mib = 0.0
    for n in SIZES:
        with tempfile.TemporaryDirectory() as tmp:
            config = _seed(Path(tmp), n)
            took, mib = _export(config, Path(tmp) / "exports")
        base_mib = base_mib or mib
        results[str(n)] = {"seconds": round(took, 2), "peak_mib": round(mib, 1)}
        print(f"{n:>8} {took:>8.2f} {mib:>9.1f} {mib / base_mib:>11.2f}")
    small, large = SIZES[1], SIZES[-1]
    slope = (results[str(large)]["peak_mib"] - results[str(small)]["peak_mib"]) / (large - small)
    projected = results[str(large)]["peak_mib"] + slope * (TARGET - large)
    results["mib_per_agent"] = round(slope, 4)
    results[f"projected_peak_mib_{TARGET}"] = round(projected, 1)
    print(f"  {slope * 1024:.1f} KiB per agent: {projected:.0f} MiB projected for {TARGET} agents")
    return results


if __name__ == "__main__":
    main()
