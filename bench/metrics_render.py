"""/metrics rendering cost for 1,000 and 10,000 agents, beside prometheus_client's own
`generate_latest` on the same number of series in the same run (the baseline).

Each figure is the median of several renders. Run with `make bench`.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.model import Report
from agent.transport.encode import to_pb
from bench.fleet import simulated_hardware
from collector.decode import decode_report
from collector.metrics import Exposition
from collector.model import Placement
from collector.store import MachineFacts, Store

__all__ = ["main", "measure"]

COMMUNES = ("Thanh Nhật", "An Lạc", "Cô Ngân", "Đồng Loan", "Đức Quang", "Kim Loan", "Lý Quốc")


class _Flat(Collector):
    """The baseline: `series` gauge samples with six labels, no store behind them."""

    def __init__(self, series: int) -> None:
        self._series = series

    def collect(self) -> Iterator[Metric]:
        fam = GaugeMetricFamily("baseline", "baseline", labels=["a", "b", "c", "d", "e", "f"])
        for i in range(self._series):
            fam.add_metric([str(i), "Hạ Lang", "An Lạc", "", f"pc-{i}", "workstation"], 1.0)
        yield fam


def _fleet(store: Store, n: int) -> None:
    rng = random.Random(n)
    now = time.time()
    tokens = {
        c: store.create_token(Placement("Cao Bằng", "Hạ Lang", c, "", "workstation"), 3600, now)[1]
        for c in COMMUNES
    }
    for i in range(n):
        host = f"pc-{i:05d}"
        e = store.enroll(
            tokens[COMMUNES[i % len(COMMUNES)]], MachineFacts(f"m{i}", host, "W", "10", "b"), now
        )
        report = Report(int(now * 1000), "b", "bench", simulated_hardware(rng, host), seq=1)
        store.ingest(e.agent.agent_id, [decode_report(to_pb(report), now)], now)


def _median_seconds(render: Callable[[], bytes], repeat: int) -> tuple[float, bytes]:
    times, body = [], b""
    for _ in range(repeat):
        start = time.perf_counter()
        body = render()
        times.append(time.perf_counter() - start)
    return statistics.median(times), body


def measure(n: int, repeat: int = 5) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        store = Store(f"sqlite:///{Path(d) / 'bench.db'}", sqlite_synchronous="normal")
        _fleet(store, n)
        ours, body = _median_seconds(Exposition(store, stale_after=3600).render, repeat)
        series = sum(
            1
            for line in body.decode().splitlines()
            if line.startswith("canhgac_") and "_created" not in line
        )
        baseline_registry = CollectorRegistry(auto_describe=False)
        baseline_registry.register(_Flat(series))
        baseline, _ = _median_seconds(lambda: generate_latest(baseline_registry), repeat)
        store.close()
    return {
        "agents": n,
        "series": series,
        "bytes": len(body),
        "ours_s": ours,
        "baseline_s": baseline,
    }


def main() -> dict[str, float]:
    figures: dict[str, float] = {}
    print("/metrics rendering vs prometheus_client generate_latest on the same series count")
    print(f"{'agents':>7}{'series':>9}{'MB':>7}{'ours s':>9}{'baseline s':>12}{'ratio':>7}")
    for n in (1_000, 10_000):
        r = measure(n)
        print(
            f"{r['agents']:>7}{r['series']:>9}{r['bytes'] / 1e6:>7.1f}{r['ours_s']:>9.3f}"
            f"{r['baseline_s']:>12.3f}{r['ours_s'] / r['baseline_s']:>7.2f}"
        )
        figures.update({f"agents{n}_{k}": v for k, v in r.items() if k != "agents"})
    return figures


if __name__ == "__main__":
    main()
