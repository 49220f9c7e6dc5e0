"""Sustained fleet: 10,000 enrolled agents each submitting once per 60 s interval to a collector
with the default rule pack and the Hạ Lang sites file, while /metrics is scraped every 30 s.

Latency is measured from each report's scheduled send time (calls are issued asynchronously on
schedule, so a slow collector cannot hide behind a client that waits: no coordinated omission).
`python -m bench.sustained`; BENCH_SUSTAINED_AGENTS / _INTERVAL / _ROUNDS / _SCRAPE change it.
"""

from __future__ import annotations

import collections
import multiprocessing as mp
import os
import random
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc

from agent.model import Report
from agent.transport.encode import encode_report
from bench.fleet import simulated_hardware, simulated_link
from bench.ingest import collector_process, free_port
from canhgac_proto.v1 import collector_pb2 as pb
from canhgac_proto.v1 import collector_pb2_grpc as pb_grpc

__all__ = ["main", "measure"]

ROOT = Path(__file__).resolve().parent.parent
SITES = ROOT / "configs" / "sites.example.yaml"
RULES = ROOT / "rules"
CLIENT_PROCESSES = 2
AGENTS_PER_CHANNEL = 250  # agents share connections as they share a commune's NAT uplink
SCRAPE_EVERY = float(os.environ.get("BENCH_SUSTAINED_SCRAPE", "30"))  # 0 = no scrapes
TEMPLATES = 64  # distinct report bodies; each call sets its own seq and time


def _templates() -> list[pb.Report]:
    rng = random.Random(7)
    now = int(time.time() * 1000)
    return [
        pb.Report.FromString(
            encode_report(
                Report(
                    now,
                    "b",
                    "bench",
                    hardware=simulated_hardware(rng, f"pc-{i}"),
                    link=simulated_link(rng),
                )
            )
        )
        for i in range(TEMPLATES)
    ]


def _client(
    address: str,
    creds: list[str],
    offset: int,
    total: int,
    interval: float,
    rounds: int,
    start_at: float,
    out: Any,
) -> None:
    """Agent k (global index offset + i) sends at start_at + r*interval + k*interval/total."""
    templates = _templates()
    channels = [grpc.insecure_channel(address) for _ in range(0, len(creds), AGENTS_PER_CHANNEL)]
    stubs = [pb_grpc.CollectorStub(c) for c in channels]  # type: ignore[no-untyped-call]
    latencies: list[tuple[int, float]] = []  # (round, seconds)
    failures: list[tuple[int, str]] = []
    lock = threading.Lock()
    pending = threading.Semaphore(0)

    def done(scheduled: float, seq: int, fut: Any) -> None:
        finished = time.time()
        error = fut.exception()
        with lock:
            if error is not None:
                failures.append((seq, f"{error.code().name}: {error.details()}"))
            elif seq not in fut.result().stored_seqs:
                failures.append((seq, "not stored"))
            else:
                latencies.append((seq, finished - scheduled))
        pending.release()

    schedule = sorted(
        (start_at + r * interval + (offset + i) * interval / total, i)
        for r in range(rounds)
        for i in range(len(creds))
    )
    seqs = [0] * len(creds)
    for scheduled, i in schedule:
        time.sleep(max(0.0, scheduled - time.time()))
        seqs[i] += 1
        report = templates[(offset + i) % TEMPLATES]
        report.seq = seqs[i]
        report.collected_at_ms = int(scheduled * 1000)
        fut = stubs[i // AGENTS_PER_CHANNEL].Submit.future(
            pb.SubmitRequest(reports=[report]),
            metadata=[("authorization", f"Bearer {creds[i]}")],
            timeout=30,
        )
        fut.add_done_callback(lambda f, s=scheduled, q=seqs[i]: done(s, q, f))
    deadline = time.monotonic() + 60  # a call still unanswered then is counted as lost
    answered = sum(pending.acquire(timeout=max(0.0, deadline - time.monotonic())) for _ in schedule)
    failures += [(0, "no answer within 60 s")] * (len(schedule) - answered)
    for c in channels:
        c.close()
    out.put((latencies, failures))


def _scrape(url: str, stop: threading.Event, seconds: list[float]) -> None:
    while SCRAPE_EVERY and not stop.wait(SCRAPE_EVERY):
        start = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as r:
            r.read()
        seconds.append(time.perf_counter() - start)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def measure(agents: int, interval: float, rounds: int) -> dict[str, float]:
    http = free_port()
    extra = f"report_interval: {interval}s\n"
    with collector_process(agents, RULES, sites=SITES, config=extra, http_port=http) as c:
        out: Any = mp.Queue()
        per = -(-agents // CLIENT_PROCESSES)
        start_at = time.time() + 5.0  # every client process has imported and connected
        procs = [
            mp.Process(
                target=_client,
                args=(
                    c.address,
                    c.secrets[k * per : (k + 1) * per],
                    k * per,
                    agents,
                    interval,
                    rounds,
                    start_at,
                    out,
                ),
            )
            for k in range(CLIENT_PROCESSES)
        ]
        for p in procs:
            p.start()
        stop, scrapes = threading.Event(), list[float]()
        scraper = threading.Thread(
            target=_scrape, args=(f"http://127.0.0.1:{http}/metrics", stop, scrapes)
        )
        scraper.start()
        results = [out.get(timeout=interval * rounds + 120) for _ in procs]
        stop.set()
        scraper.join()
        for p in procs:
            p.join(30)
    figures: dict[str, float] = {"agents": agents, "interval_s": interval, "rounds": rounds}
    for rnd in range(1, rounds + 1):  # seq = round: every agent sends one report per round
        lat = [x for r in results for q, x in r[0] if q == rnd]
        figures[f"round{rnd}_stored"] = len(lat)
        figures[f"round{rnd}_failed"] = sum(q == rnd for r in results for q, _ in r[1])
        figures[f"round{rnd}_p50_ms"] = _percentile(lat, 0.50) * 1000
        figures[f"round{rnd}_p99_ms"] = _percentile(lat, 0.99) * 1000
        figures[f"round{rnd}_max_ms"] = max(lat, default=float("nan")) * 1000
    reasons = collections.Counter(reason for r in results for _, reason in r[1])
    figures["lost"] = sum(n for reason, n in reasons.items() if reason.startswith("no answer"))
    figures["scrapes"] = len(scrapes)
    figures["scrape_max_s"] = max(scrapes, default=float("nan"))
    for reason, n in reasons.most_common(3):
        print(f"  failed {n}×: {reason}")
    return figures


def main() -> dict[str, float]:
    agents = int(os.environ.get("BENCH_SUSTAINED_AGENTS", "10000"))
    interval = float(os.environ.get("BENCH_SUSTAINED_INTERVAL", "60"))
    rounds = int(os.environ.get("BENCH_SUSTAINED_ROUNDS", "2"))
    print(
        f"sustained fleet: {agents} agents every {interval:.0f} s for {rounds} rounds"
        f" ({agents / interval:.0f} reports/s), default rules, /metrics every {SCRAPE_EVERY:.0f} s;"
        " Submit latency from the scheduled send"
    )
    r = measure(agents, interval, rounds)
    for rnd in range(1, rounds + 1):
        label = "first report of every agent" if rnd == 1 else "steady"
        print(
            f"  round {rnd} ({label}): p50 {r[f'round{rnd}_p50_ms']:.1f} ms,"
            f" p99 {r[f'round{rnd}_p99_ms']:.1f} ms, max {r[f'round{rnd}_max_ms']:.0f} ms;"
            f" {r[f'round{rnd}_stored']:.0f} stored, {r[f'round{rnd}_failed']:.0f} failed"
        )
    print(f"  {r['scrapes']:.0f} scrapes of /metrics, slowest {r['scrape_max_s']:.2f} s")
    return r


if __name__ == "__main__":
    main()
