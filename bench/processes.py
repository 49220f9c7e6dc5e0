"""`serve --processes N` on PostgreSQL: Submit throughput with 2 collector processes against 1
in the same run, and 10,000 agents reporting every 60 s through the whole collector (p50/p99).

Each collector is a real `canhgac-collector serve --processes N` on its own fresh database of
one throwaway PostgreSQL server (tests/integration/postgres.py: fsync off, so the figures are
the collector's CPU, not this machine's disk). The load generator runs on the same machine (2
client processes x 8 agent threads, each thread on a TCP connection of its own so SO_REUSEPORT
spreads them over the server processes). `python -m bench.processes`.

Every figure also says where the cores went, per call and over the same window: the collector's
processes, PostgreSQL's, the load generator's, and the rest of the machine. From them the
physical bound of the ratio: C cores can do at most C / (CPU seconds per call at 2 processes)
calls a second, against the measured 1-process rate; and the same with the load generator on
other machines (the field), its CPU left out.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
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
PARTIES = ("server", "postgres", "client", "other")  # the collector is "server"
# Figures of each batch size (median of the runs) from bench.ingest.Result's fields.
FIELDS = {
    "reports_per_s": "reports_per_second",
    "calls_per_s": "calls_per_second",
    "machine_busy_percent": "machine_busy_percent",
    **{f"{party}_cpu_us_per_call": f"{party}_cpu_us_per_call" for party in PARTIES},
}


def postmaster_pid(server_url: str) -> int:
    """The pid of the PostgreSQL server at `server_url` (its data directory's postmaster.pid)."""
    import psycopg  # noqa: PLC0415

    dsn = server_url.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT current_setting('data_directory')").fetchone()
    assert row is not None
    return int((Path(row[0]) / "postmaster.pid").read_text().split()[0])


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
    url, pg = fresh_database(server), postmaster_pid(server)
    with collector_process(FLEET_AGENTS, store_url=url, serve=serve, reported=True) as c:
        _wait_for_processes(c, processes)
        figures: dict[str, float] = {}
        for batch in (1, 50):
            rates = [
                load(c.address, c.pid, c.secrets[:busy], batch, connections=True, postgres=pg)
                for _ in range(runs)
            ]
            for name, field in FIELDS.items():
                figures[f"batch{batch}_{name}"] = statistics.median(
                    getattr(r, field) for r in rates
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
    cores = psutil.cpu_count() or 1
    out: dict[str, Any] = {f"processes_{n}": f for n, f in by_n.items()}
    print(
        f"serve --processes N on PostgreSQL (median of {runs} runs; {cores} cores "
        "shared with the load generator)"
    )
    for batch in (1, 50):
        b = f"batch{batch}_"
        rate = b + "reports_per_s"
        out[b + "ratio"] = two[rate] / one[rate]
        out.update(_bound(one, two, batch, cores))
        busy = b + "machine_busy_percent"
        print(
            f"  batch {batch:>2}: 1 process {one[rate]:>8.0f} reports/s, 2 processes "
            f"{two[rate]:>8.0f}  ratio {out[b + 'ratio']:.2f}  (bound {out[b + 'bound']:.2f}; "
            f"load generator elsewhere {out[b + 'bound_offbox']:.2f}), machine busy "
            f"{one[busy]:.0f} / {two[busy]:.0f} %"
        )
        for party in PARTIES:
            cpu = f"{b}{party}_cpu_us_per_call"
            print(f"    {party + ' CPU/call':<20} {one[cpu]:>7.0f} / {two[cpu]:>7.0f} µs")
    for n, f in by_n.items():
        print(
            f"  {FLEET_AGENTS:,} agents every {FLEET_INTERVAL:.0f} s, {n} process(es): "
            f"{f['fleet_reports_per_s']:.0f} reports/s, p50 {f['fleet_p50_ms']:.1f} ms, "
            f"p99 {f['fleet_p99_ms']:.1f} ms"
        )
    return out


def _bound(
    one: dict[str, float], two: dict[str, float], batch: int, cores: int
) -> dict[str, float]:
    """The most the 2-process run could have done on `cores` at its measured CPU per call, over
    the 1-process rate: with the load generator on the same cores, and without it."""
    b = f"batch{batch}_"
    reports_per_call = two[b + "reports_per_s"] / two[b + "calls_per_s"]
    on_box = sum(two[f"{b}{party}_cpu_us_per_call"] for party in ("server", "postgres", "client"))
    off_box = on_box - two[b + "client_cpu_us_per_call"]
    return {
        b + "bound": cores / (on_box * 1e-6) * reports_per_call / one[b + "reports_per_s"],
        b + "bound_offbox": cores / (off_box * 1e-6) * reports_per_call / one[b + "reports_per_s"],
    }


if __name__ == "__main__":
    main()
