"""Spool replay after a 24-hour outage (15 s interval: 5,760 reports): time to drain with the
default pacing, and whether the collector stays responsive to another agent meanwhile.
`python -m bench.replay`."""

from __future__ import annotations

import itertools
import random
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

from agent.config import DeliveryConfig
from agent.model import Report, SpoolStats
from agent.runner import Runner
from agent.spool import Spool
from agent.transport.client import CollectorClient
from agent.transport.encode import encode_report
from bench.fleet import simulated_antivirus, simulated_hardware, simulated_link, simulated_security
from bench.ingest import collector_process

__all__ = ["main", "measure"]

BACKLOG = 24 * 3600 // 15


def _fill(spool: Spool, n: int) -> None:
    rng = random.Random(3)
    now = time.time()
    hw = simulated_hardware(rng, "pc-replay")
    for i in range(n):
        at = now - (n - i) * 15
        report = Report(
            int(at * 1000), "b", "bench", hardware=hw,
            antivirus=simulated_antivirus(random.Random(1), at),
            security=simulated_security(random.Random(1), at), link=simulated_link(rng),
        )  # fmt: skip

        def encode(seq: int, stats: SpoolStats, report: Report = report) -> bytes:
            return encode_report(replace(report, seq=seq, spool=stats))

        spool.append(report.collected_at_ms, encode)


def _latencies(
    client: CollectorClient, stop: threading.Event, out: list[float], seqs: Iterator[int]
) -> None:
    """`seqs`: one sequence for the agent across both measured windows (restarted, its seqs
    came again with other content: refused, and the agent flagged a suspected clone)."""
    payload_report = Report(0, "b", "bench", hardware=simulated_hardware(random.Random(4), "pc-b"))
    while not stop.is_set():
        seq = next(seqs)
        r = replace(payload_report, seq=seq, collected_at_ms=int(time.time() * 1000))
        start = time.perf_counter()
        client.submit([encode_report(r)])
        out.append(time.perf_counter() - start)
        stop.wait(0.2)


def measure(pace: float = DeliveryConfig().pace) -> dict[str, float]:
    with collector_process(2) as collector:
        address, secrets = collector.address, collector.secrets
        spool = Spool(collector.tmp / "spool.db", 1 << 30, 30 * 86400)
        _fill(spool, BACKLOG)
        replaying = CollectorClient(address, secret=secrets[0], timeout=60)
        other = CollectorClient(address, secret=secrets[1], timeout=60)
        seqs = itertools.count(1)
        idle: list[float] = []
        stop = threading.Event()
        probe = threading.Thread(target=_latencies, args=(other, stop, idle, seqs))
        probe.start()
        time.sleep(3)  # the other agent's latency with no replay going on
        stop.set()
        probe.join()
        during: list[float] = []
        stop = threading.Event()
        probe = threading.Thread(target=_latencies, args=(other, stop, during, seqs))
        probe.start()
        runner = Runner({}, spool, replaying.submit, DeliveryConfig(pace=pace), boot_id="b")
        start = time.monotonic()
        while (more := runner.deliver_batch()) is not False:
            if more is None:
                raise RuntimeError("delivery failed during the replay benchmark")
            time.sleep(pace)
        drain = time.monotonic() - start
        stop.set()
        probe.join()
        spool.close()
        replaying.close()
        other.close()

    def p99(xs: list[float]) -> float:
        return sorted(xs)[min(len(xs) - 1, int(len(xs) * 0.99))] * 1000

    return {
        "drain_s": drain,
        "reports_per_s": BACKLOG / drain,
        "idle_p50_ms": statistics.median(idle) * 1000,
        "idle_p99_ms": p99(idle),
        "during_p50_ms": statistics.median(during) * 1000,
        "during_p99_ms": p99(during),
    }


def main() -> dict[str, float]:
    m = measure()
    print(f"spool replay of a 24 h backlog ({BACKLOG} reports, batches of 50, default pacing)")
    print(f"  drained in {m['drain_s']:.1f} s ({m['reports_per_s']:.0f} reports/s)")
    print(
        f"  another agent's Submit latency: idle p50 {m['idle_p50_ms']:.1f} / p99 "
        f"{m['idle_p99_ms']:.1f} ms; during replay p50 {m['during_p50_ms']:.1f} / p99 "
        f"{m['during_p99_ms']:.1f} ms"
    )
    return m


if __name__ == "__main__":
    main()
