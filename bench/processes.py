"""`serve --processes N` on PostgreSQL: Submit throughput with 2 collector processes against 1
in the same run, and 10,000 agents reporting every 60 s through the whole collector (p50/p99).

Each collector is a real `canhgac-collector serve --processes N` on its own fresh database of
one throwaway PostgreSQL server (tests/integration/postgres.py: fsync off, so the figures are
the collector's CPU, not this machine's disk). The load generator runs on the same machine (2
client processes x 8 agent threads, each thread on a TCP connection of its own so SO_REUSEPORT
spreads them over the server processes). `python -m bench.processes`.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

import psutil

from bench.ingest import (
    AGENTS_PER_PROCESS,
    CLIENT_PROCESSES,
    FLEET_AGENTS,
    FLEET_INTERVAL,
    FLEET_SECONDS,
    Collector,
    collector_process,
    load,
)
from tests.integration.postgres import fresh_database, postgres_server

__all__ = ["main"]

PROCESSES = (1, 2)


def _wait_for_processes(c: Collector, n: int) -> None:
    """Until the supervisor has its n collector processes (`--processes 1` is the one process
    itself, no supervisor)."""
    if n == 1:
        return
    deadline = time.monotonic() + 60
    while len(psutil.Process(c.pid).children()) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"serve --processes {n} did not start its processes")
        time.sleep(0.2)
    time.sleep(2.0)  # each opens its store and listens


def _measure(server: str, processes: int, runs: int) -> dict[str, float]:
    busy = CLIENT_PROCESSES * AGENTS_PER_PROCESS
    serve = ("--processes", str(processes))
    url = fresh_database(server)
    with collector_process(FLEET_AGENTS, store_url=url, serve=serve) as c:
        _wait_for_processes(c, processes)
        figures: dict[str, float] = {}
        for batch in (1, 50):
            psutil.cpu_percent(None)  # the machine's busy share from here...
            rates = [
                load(c.address, c.pid, c.secrets[:busy], batch, connections=True)
                for _ in range(runs)
            ]
            figures[f"batch{batch}_machine_busy_percent"] = psutil.cpu_percent(None)  # ...to here
            figures[f"batch{batch}_reports_per_s"] = statistics.median(
                r.reports_per_second for r in rates
            )
            figures[f"batch{batch}_server_cpu_us_per_call"] = statistics.median(
                r.server_cpu_us_per_call for r in rates
            )
        fleet = load(
            c.address,
            c.pid,
            c.secrets,
            1,
            FLEET_AGENTS / FLEET_INTERVAL,
            FLEET_SECONDS,
            connections=True,
        )
        figures["fleet_reports_per_s"] = fleet.reports_per_second
        figures["fleet_p50_ms"] = fleet.p50_ms
        figures["fleet_p99_ms"] = fleet.p99_ms
    return figures


def main() -> dict[str, Any]:
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    with postgres_server() as server:
        by_n = {n: _measure(server, n, runs) for n in PROCESSES}
    one, two = by_n[1], by_n[2]
    out: dict[str, Any] = {f"processes_{n}": f for n, f in by_n.items()}
    print(
        f"serve --processes N on PostgreSQL (median of {runs} runs; {psutil.cpu_count()} cores "
        "shared with the load generator)"
    )
    for batch in (1, 50):
        key = f"batch{batch}_reports_per_s"
        out[f"batch{batch}_ratio"] = two[key] / one[key]
        cpu, busy = f"batch{batch}_server_cpu_us_per_call", f"batch{batch}_machine_busy_percent"
        print(
            f"  batch {batch:>2}: 1 process {one[key]:>8.0f} reports/s, 2 processes "
            f"{two[key]:>8.0f}  ratio {out[f'batch{batch}_ratio']:.2f}  server CPU/call "
            f"{one[cpu]:.0f} / {two[cpu]:.0f} µs, machine busy {one[busy]:.0f} / {two[busy]:.0f} %"
        )
    for n, f in by_n.items():
        print(
            f"  {FLEET_AGENTS:,} agents every {FLEET_INTERVAL:.0f} s, {n} process(es): "
            f"{f['fleet_reports_per_s']:.0f} reports/s, p50 {f['fleet_p50_ms']:.1f} ms, "
            f"p99 {f['fleet_p99_ms']:.1f} ms"
        )
    return out


if __name__ == "__main__":
    main()
