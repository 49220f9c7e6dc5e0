"""/metrics rendering cost for 1,000 and 10,000 agents, beside prometheus_client's own
`generate_latest` on the same number of series in the same run (the baseline).

Rendered as the collector does, by its renderer processes (each a shard of the agents).
Three figures per fleet size: cold (fresh renderers, started but nothing kept: a collector's
first scrape, whose start-up of the renderers is printed apart), steady (the same renderers;
before each render a new report is stored for a random half of the agents — a 60 s report
interval scraped every 30 s) and unchanged (nothing stored since the last scrape). Each is
the median of several renders, wall time and CPU time of every process; a cold render in one
process is printed beside them. Run with `make bench`.
"""

from __future__ import annotations

import contextlib
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import psutil
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.model import Report
from agent.transport.encode import to_pb
from bench.fleet import simulated_hardware
from collector.decode import decode_report
from collector.metrics import Exposition
from collector.metrics.worker import RENDER_PROCESSES, FleetRenderer
from collector.model import Placement
from collector.store import MachineFacts, Store

__all__ = ["main", "measure"]

COMMUNES = ("Thanh Nhật", "An Lạc", "Cô Ngân", "Đồng Loan", "Đức Quang", "Kim Loan", "Lý Quốc")


class Timing(NamedTuple):
    wall: float
    cpu: float
    body: bytes


class _Flat(Collector):
    """The baseline: `series` gauge samples with six labels, no store behind them."""

    def __init__(self, series: int) -> None:
        self._series = series

    def collect(self) -> Iterator[Metric]:
        fam = GaugeMetricFamily("baseline", "baseline", labels=["a", "b", "c", "d", "e", "f"])
        for i in range(self._series):
            fam.add_metric([str(i), "Hạ Lang", "An Lạc", "", f"pc-{i}", "workstation"], 1.0)
        yield fam


def _fleet(store: Store, n: int) -> list[tuple[str, str]]:
    """n enrolled agents, each with one stored report; their (agent_id, hostname)."""
    rng = random.Random(n)
    now = time.time()
    tokens = {
        c: store.create_token(Placement("Cao Bằng", "Hạ Lang", c, "", "workstation"), 3600, now)[1]
        for c in COMMUNES
    }
    agents = []
    for i in range(n):
        host = f"pc-{i:05d}"
        e = store.enroll(
            tokens[COMMUNES[i % len(COMMUNES)]], MachineFacts(f"m{i}", host, "W", "10", "b"), now
        )
        agents.append((e.agent.agent_id, host))
    _report(store, agents, 1, rng)
    return agents


def _report(store: Store, agents: list[tuple[str, str]], seq: int, rng: random.Random) -> None:
    """A new hardware report (fresh values) from each agent, through the real ingest."""
    now = time.time()
    reports = [
        (agent_id, Report(int(now * 1000), "b", "bench", simulated_hardware(rng, host), seq=seq))
        for agent_id, host in agents
    ]
    # Concurrent callers share group commits, as agents' Submit calls do.
    with ThreadPoolExecutor(8) as pool:
        for _ in pool.map(
            lambda a: store.ingest(a[0], [decode_report(to_pb(a[1]), now)], now), reports
        ):
            pass


def _cpu(renderers: list[FleetRenderer]) -> float:
    """CPU seconds used so far by this process and the renderers' children."""
    children = [psutil.Process(pid) for r in renderers for pid in r.pids]
    return time.process_time() + sum(sum(c.cpu_times()[:2]) for c in children)


def _median(
    render: Callable[[], bytes],
    repeat: int,
    before: Callable[[int], object],
    renderers: Callable[[], list[FleetRenderer]] = list,
) -> Timing:
    wall, cpu, body = [], [], b""
    for i in range(repeat):
        before(i)
        start, start_cpu = time.perf_counter(), _cpu(renderers())
        body = render()
        cpu.append(_cpu(renderers()) - start_cpu)
        wall.append(time.perf_counter() - start)
    return Timing(statistics.median(wall), statistics.median(cpu), body)


def measure(n: int, repeat: int = 3, changed: float = 0.5) -> dict[str, float]:
    """The collector's way (`FleetRenderer`: RENDER_PROCESSES children, each a shard of the
    agents; started beforehand, as after the first scrape) and, for comparison, a cold render
    in this one process."""
    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{Path(d) / 'bench.db'}"
        store = Store(url, sqlite_synchronous="normal")
        agents = _fleet(store, n)
        rng = random.Random(-n)
        one = _median(lambda: Exposition(store, stale_after=3600).render(), repeat, _nothing)
        with contextlib.ExitStack() as stack:
            current: list[FleetRenderer] = []

            def fresh(_: int) -> None:
                if current:
                    current[0].close()
                renderer = stack.enter_context(contextlib.closing(FleetRenderer(url, 3600)))
                start = time.perf_counter()
                renderer.start()
                startup.append(time.perf_counter() - start)
                current[:] = [renderer]

            startup: list[float] = []
            cold = _median(
                lambda: Exposition(store, 3600, fleet=current[0]).render(),
                repeat,
                fresh,
                lambda: current,
            )
            exposition = Exposition(store, 3600, fleet=current[0])

            def report_half(i: int) -> None:
                _report(store, rng.sample(agents, int(n * changed)), i + 2, rng)

            steady = _median(exposition.render, repeat, report_half, lambda: current)
            unchanged = _median(exposition.render, repeat, _nothing, lambda: current)
        series = _series(cold.body)
        assert _series(one.body) == series, "one process and the renderers disagree"
        assert _series(steady.body) == series, "the kept lines and a fresh render disagree"
        assert _series(unchanged.body) == series
        baseline_registry = CollectorRegistry(auto_describe=False)
        baseline_registry.register(_Flat(series))
        baseline = _median(lambda: generate_latest(baseline_registry), repeat, _nothing)
        store.close()
    return {
        "agents": n,
        "series": series,
        "bytes": len(cold.body),
        "processes": RENDER_PROCESSES,
        "startup_s": statistics.median(startup),
        "cold_s": cold.wall,
        "cold_cpu_s": cold.cpu,
        "cold_one_process_s": one.wall,
        "cold_one_process_cpu_s": one.cpu,
        "steady_s": steady.wall,
        "steady_cpu_s": steady.cpu,
        "changed_share": changed,
        "unchanged_s": unchanged.wall,
        "unchanged_cpu_s": unchanged.cpu,
        "baseline_s": baseline.wall,
        "baseline_cpu_s": baseline.cpu,
    }


def _series(body: bytes) -> int:
    return sum(
        1
        for line in body.decode().splitlines()
        if line.startswith("canhgac_") and "_created" not in line
    )


def _nothing(_: int) -> None:
    pass


def main() -> dict[str, float]:
    figures: dict[str, float] = {}
    print("/metrics rendering vs prometheus_client generate_latest on the same series count")
    print(
        f"(wall s / CPU s of every process; as the collector renders: {RENDER_PROCESSES} renderer"
        " processes, each a shard of the agents; steady = half the agents sent a new report"
        " since the last scrape, unchanged = none did; one process = a cold render without them)"
    )
    print(
        f"{'agents':>7}{'series':>9}{'MB':>6}{'cold':>14}{'steady':>14}{'unchanged':>14}"
        f"{'one process':>14}{'baseline':>14}{'cold/base':>11}{'steady/base':>13}"
    )
    for n in (1_000, 10_000):
        r = measure(n)
        print(
            f"{r['agents']:>7}{r['series']:>9}{r['bytes'] / 1e6:>6.1f}"
            f"{r['cold_s']:>7.3f}/{r['cold_cpu_s']:<6.3f}{r['steady_s']:>7.3f}/{r['steady_cpu_s']:<6.3f}"
            f"{r['unchanged_s']:>7.3f}/{r['unchanged_cpu_s']:<6.3f}"
            f"{r['cold_one_process_s']:>7.3f}/{r['cold_one_process_cpu_s']:<6.3f}"
            f"{r['baseline_s']:>7.3f}/{r['baseline_cpu_s']:<6.3f}"
            f"{r['cold_s'] / r['baseline_s']:>11.2f}{r['steady_s'] / r['baseline_s']:>13.2f}"
        )
        figures.update({f"agents{n}_{k}": v for k, v in r.items() if k != "agents"})
    print(
        "  renderer start-up (process, imports, store opened; paid once, by the first scrape after"
        f" a collector start): {figures['agents10000_startup_s']:.2f} s"
    )
    return figures


if __name__ == "__main__":
    main()
