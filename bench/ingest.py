"""Collector ingest: reports/s with a durable commit, batch 1 and batch 50, against a no-op gRPC
servicer of the same proto in the same run; p50/p99 Submit latency at half the measured peak.

The collector runs as its own process (`canhgac-collector serve`, SQLite, synchronous=FULL);
load comes from separate client processes over loopback. `python -m bench.ingest`.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agent.transport.client import CollectorClient, MachineFacts
from bench.fleet import simulated_hardware
from canhgac_proto.v1 import collector_pb2 as pb
from collector.model import Placement
from collector.store import Store

__all__ = ["Result", "collector_process", "main", "measure"]

CLIENT_PROCESSES = 2
AGENTS_PER_PROCESS = 8
SECONDS = 4.0


@dataclass(frozen=True)
class Result:
    reports_per_second: float
    p50_ms: float
    p99_ms: float


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _template() -> bytes:
    import random  # noqa: PLC0415

    from agent.model import Report  # noqa: PLC0415
    from agent.transport.encode import encode_report  # noqa: PLC0415

    hw = simulated_hardware(random.Random(1), "pc-bench")
    return encode_report(Report(int(time.time() * 1000), "b", "bench", hardware=hw))


def _client(
    address: str,
    secrets: list[str],
    batch: int,
    seconds: float,
    rate: float,
    out: mp.Queue,  # type: ignore[type-arg]
) -> None:
    """Submit for `seconds`; `rate` > 0 paces calls (per process) for the latency run."""
    template = pb.Report.FromString(_template())
    clients = [CollectorClient(address, secret=s, timeout=30, gzip=False) for s in secrets]
    seqs = [int(time.time() * 1000) * 1000 for _ in secrets]  # fresh seqs every run
    done, latencies = 0, []
    end = time.monotonic() + seconds
    i = 0
    next_at = time.monotonic()
    while time.monotonic() < end:
        k = i % len(clients)
        payloads = []
        for _ in range(batch):
            seqs[k] += 1
            template.seq = seqs[k]
            payloads.append(template.SerializeToString())
        if rate:
            next_at += 1.0 / rate
            time.sleep(max(0.0, next_at - time.monotonic()))
        start = time.perf_counter()
        stored = clients[k].submit(payloads).stored
        latencies.append(time.perf_counter() - start)
        done += len(stored)
        i += 1
    out.put((done, latencies))


def _load(address: str, secrets: list[str], batch: int, rate: float = 0.0) -> Result:
    out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    per = len(secrets) // CLIENT_PROCESSES
    procs = [
        mp.Process(
            target=_client,
            args=(address, secrets[i * per : (i + 1) * per], batch, SECONDS, rate, out),
        )
        for i in range(CLIENT_PROCESSES)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=SECONDS + 60) for _ in procs]
    for p in procs:
        p.join(30)
    total = sum(r[0] for r in results)
    lat = sorted(x for r in results for x in r[1])
    return Result(
        total / SECONDS,
        lat[len(lat) // 2] * 1000,
        lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
    )


def _wait_ready(address: str) -> None:
    with CollectorClient(address) as c:
        if not c.reachable(30):
            raise RuntimeError(f"server on {address} did not start")


@contextlib.contextmanager
def collector_process(agents: int) -> Iterator[tuple[str, list[str], Path]]:
    """A real `canhgac-collector serve` process on a temp SQLite store with `agents` enrolled;
    yields (address, their credentials, the temp dir) and stops the process afterwards."""
    with tempfile.TemporaryDirectory() as d:
        db, config = Path(d) / "c.db", Path(d) / "collector.yaml"
        port = _free_port()
        config.write_text(
            f"grpc_listen: 127.0.0.1:{port}\nhttp_listen: 127.0.0.1:0\n"
            f"store:\n  url: sqlite:///{db}\nlog_level: warning\n"
        )
        store = Store(f"sqlite:///{db}")
        place = Placement("Cao Bằng", "Hạ Lang", "An Lạc", "", "workstation")
        _, token = store.create_token(place, 3600, time.time())
        store.close()
        bin_dir = Path(sys.executable).parent
        server = subprocess.Popen(
            [str(bin_dir / "canhgac-collector"), "--config", str(config), "serve"],
            stdout=subprocess.DEVNULL,
        )
        try:
            address = f"127.0.0.1:{port}"
            _wait_ready(address)
            secrets = []
            for i in range(agents):
                with CollectorClient(address) as c:
                    facts = MachineFacts(f"bench-{i}", f"pc-{i}", "W", "10", "bench")
                    secrets.append(c.enroll(token, facts).secret)
            yield address, secrets, Path(d)
        finally:
            server.terminate()
            server.wait(30)


def measure() -> dict[str, float]:
    noop_port = _free_port()
    noop = subprocess.Popen([sys.executable, "-m", "bench.noop_server", str(noop_port)])
    try:
        with collector_process(CLIENT_PROCESSES * AGENTS_PER_PROCESS) as (address, secrets, _):
            noop_address = f"127.0.0.1:{noop_port}"
            _wait_ready(noop_address)
            figures: dict[str, float] = {}
            for batch in (1, 50):
                ours = _load(address, secrets, batch)
                base = _load(noop_address, secrets, batch)
                figures[f"batch{batch}_reports_per_s"] = ours.reports_per_second
                figures[f"batch{batch}_noop_reports_per_s"] = base.reports_per_second
                figures[f"batch{batch}_ratio"] = ours.reports_per_second / base.reports_per_second
            peak_calls = figures["batch1_reports_per_s"]
            half = _load(address, secrets, 1, rate=peak_calls / 2 / CLIENT_PROCESSES)
            figures["half_peak_reports_per_s"] = half.reports_per_second
            figures["half_peak_p50_ms"] = half.p50_ms
            figures["half_peak_p99_ms"] = half.p99_ms
            return figures
    finally:
        noop.terminate()
        noop.wait(30)


def main() -> dict[str, float]:
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    samples = [measure() for _ in range(runs)]
    med = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
    print(f"ingest (median of {runs} runs; SQLite synchronous=FULL; loopback)")
    for batch in (1, 50):
        print(
            f"  batch {batch:>2}: {med[f'batch{batch}_reports_per_s']:>9.0f} reports/s"
            f"  no-op {med[f'batch{batch}_noop_reports_per_s']:>9.0f}"
            f"  ratio {med[f'batch{batch}_ratio']:.2f}"
        )
    print(
        f"  at half peak ({med['half_peak_reports_per_s']:.0f} reports/s):"
        f" p50 {med['half_peak_p50_ms']:.1f} ms, p99 {med['half_peak_p99_ms']:.1f} ms"
    )
    return med


if __name__ == "__main__":
    main()
