"""`make bench`: every benchmark in one run; prints each table, writes var/bench/results.json."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from bench import (
    alert_latency,
    export,
    fleet_tick,
    footprint,
    ingest,
    ingest_cpu,
    metrics_render,
    processes,
    replay,
    report_size,
    retention_load,
    rules,
    storage,
    sustained,
)

OUT = Path("var") / "bench" / "results.json"


def main() -> None:
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("report_size", report_size.main),
        ("rules", rules.main),
        ("fleet_tick", fleet_tick.main),
        ("metrics_render", metrics_render.main),
        ("footprint", footprint.main),
        ("ingest", ingest.main),
        ("ingest_cpu", ingest_cpu.main),
        ("processes", processes.main),
        ("replay", replay.main),
        ("sustained", sustained.main),
        ("export", export.main),
        ("alert_latency", alert_latency.main),
        ("storage", storage.main),
        ("retention_load", retention_load.main),
    ]
    results: dict[str, Any] = {
        "machine": {
            "cpus": psutil.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    for name, run in steps:
        start = time.monotonic()
        print()
        results[name] = run()
        print(f"  ({time.monotonic() - start:.0f} s)")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nfigures written to {OUT}")


if __name__ == "__main__":
    main()
