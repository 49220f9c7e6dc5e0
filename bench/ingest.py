"""Collector ingest: reports/s with a durable commit, batch 1 and batch 50, against a no-op gRPC
servicer of the same proto in the same run, with the server's CPU per call; p50/p99 Submit
latency at half the batch-1 peak and for 10,000 agents reporting every 60 s; the same
throughput with the shipped rule pack as a diagnostic.

The collector runs as its own process (`canhgac-collector serve`, SQLite, synchronous=FULL,
default config: no rules); load comes from separate client processes over loopback, each
agent a thread with one call in flight, as a fleet's calls overlap. `python -m bench.ingest`.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import psutil

from agent.platform.cpu import cpu_usage_ratio
from agent.transport.client import CollectorClient
from bench.fleet import simulated_hardware, tokens_for
from canhgac_proto.v1 import collector_pb2 as pb
from collector.decode import decode_report
from collector.model import Placement
from collector.sites import load_sites
from collector.store import MachineFacts, Store

__all__ = ["Collector", "Result", "collector_process", "free_port", "load", "main", "measure"]

CLIENT_PROCESSES = 2
AGENTS_PER_PROCESS = 8  # each a thread with one call in flight
SECONDS = 4.0
# The sizing target: this many agents, each reporting once per interval, for this long.
FLEET_AGENTS = 10_000
FLEET_INTERVAL = 60.0
FLEET_SECONDS = 15.0
HALF_SECONDS = 8.0  # Submit latency at 50 % of the batch-1 peak: ≈ 2,800 calls here
RULES = Path(__file__).resolve().parent.parent / "rules"


@dataclass(frozen=True)
class Result:
    reports_per_second: float
    p50_ms: float
    p99_ms: float
    server_cpu_us_per_call: float
    # The same window's other CPU, per call: the load generator's client processes, the
    # PostgreSQL server's processes (`postgres` given, else 0) and the rest of the machine.
    client_cpu_us_per_call: float = 0.0
    postgres_cpu_us_per_call: float = 0.0
    other_cpu_us_per_call: float = 0.0
    calls_per_second: float = 0.0
    machine_busy_percent: float = 0.0  # of all cores, over the window


@dataclass(frozen=True)
class Collector:
    address: str
    secrets: list[str]
    tmp: Path
    pid: int


def free_port() -> int:
    """A loopback port that was free a moment ago (for the processes a benchmark starts)."""
    import socket  # noqa: PLC0415

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _template() -> bytes:

    from agent.model import Report  # noqa: PLC0415
    from agent.transport.encode import encode_report  # noqa: PLC0415

    hw = simulated_hardware(random.Random(1), "pc-bench")
    return encode_report(Report(int(time.time() * 1000), "b", "bench", hardware=hw))


SUBMIT = f"/{pb.DESCRIPTOR.services_by_name['Collector'].full_name}/Submit"
# The last seq sent for each agent (by its secret), across the runs of this process: like an
# agent, the load generator keeps one spool and one increasing sequence per agent. A spool of
# its own for every run, as before, made every measured call the first of a spool to the
# collector: a reinstall, registered in a write transaction of its own (the half-peak p99 went
# from 7 ms to 0.75-1.8 s with it).
_LAST_SEQ: dict[str, int] = {}


def spool_of(secret: str) -> int:
    """The bench agent's spool id: the same in every run, its own for each agent."""
    return int.from_bytes(hashlib.sha256(secret.encode()).digest()[:8], "big") >> 1 | 1


def _varint(n: int) -> bytes:
    """Protocol Buffers' base-128 varint of n >= 0."""
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _client(
    address: str,
    last: dict[str, int],
    batch: int,
    seconds: float,
    rate: float,
    out: Any,
    go: Any,
    connections: bool = False,
) -> None:
    """Submit for `seconds` from AGENTS_PER_PROCESS threads sharing the agents of `last` (secret:
    the last seq it sent), each on its spool_of and on from its last seq; `rate` > 0 paces
    the calls (per process), and latency then counts from the scheduled time, so a stalled
    server cannot hide its backlog. `connections`: each thread on a TCP connection of its own
    (as agents are), so that SO_REUSEPORT can spread them over several server processes. Says
    "ready" on `out` and waits for `go` before the first call; puts its counts and its own CPU
    seconds from `go` to the last answer, and the last seq of each agent."""
    template = pb.Report.FromString(_template())
    secrets, seqs = list(last), dict(last)
    # Each agent's report bytes after its seq (field 1): with the seq's in front, the same
    # bytes SerializeToString gives. Requests are joined from them, not built as messages: the
    # collector receives what it did, and the load generator spends less of the cores it shares.
    bodies = {}
    for secret in secrets:
        template.spool_id = spool_of(secret)
        bodies[secret] = template.SerializeToString()
    lock = threading.Lock()
    calls, done, latencies, errors = [0], [0], [], []

    def submit_for() -> Any:
        """Submit on a channel, bytes in, bytes out; connected before the measured window."""
        options = [("grpc.use_local_subchannel_pool", 1)] if connections else []
        channel = grpc.insecure_channel(address, options)
        grpc.channel_ready_future(channel).result(timeout=30)
        return channel.unary_unary(SUBMIT, request_serializer=None, response_deserializer=None)

    shared: Any = None if connections else submit_for()
    submits = [submit_for() if connections else shared for _ in range(AGENTS_PER_PROCESS)]
    out.put("ready")
    go.wait()
    cpu = time.process_time()  # every thread of this process, gRPC's own included
    end = time.monotonic() + seconds

    def agent_thread(k: int, mine: list[str]) -> None:
        submit = submits[k]
        period = AGENTS_PER_PROCESS / rate if rate else 0.0
        next_at = time.monotonic() + period * k / AGENTS_PER_PROCESS  # spread over a period
        i = 0
        while (now := time.monotonic()) < end:
            secret = mine[i % len(mine)]
            i += 1
            with lock:
                first = seqs[secret] + 1
                seqs[secret] += batch
            body = bodies[secret]
            reports = [b"\x08" + _varint(seq) + body for seq in range(first, first + batch)]
            req = b"".join(b"\x0a" + _varint(len(r)) + r for r in reports)  # field 1, reports
            if period:
                time.sleep(max(0.0, next_at - now))
                start, next_at = next_at, next_at + period
            else:
                start = time.monotonic()
            try:
                answer = submit(req, metadata=(("authorization", f"Bearer {secret}"),), timeout=30)
            except grpc.RpcError as e:
                errors.append(f"{e.code()}: {e.details()}")
                return
            took = time.monotonic() - start
            resp = pb.SubmitResponse.FromString(answer)
            if list(resp.stored_seqs) != list(range(first, first + batch)):
                errors.append(f"ack stored {len(resp.stored_seqs)} of {batch}: {resp.rejected}")
                return
            with lock:
                calls[0] += 1
                done[0] += batch
                latencies.append(took)

    threads = [
        threading.Thread(target=agent_thread, args=(k, secrets[k::AGENTS_PER_PROCESS]))
        for k in range(AGENTS_PER_PROCESS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu = time.process_time() - cpu
    out.put((calls[0], done[0], latencies, errors, cpu, seqs))


def load(
    address: str,
    pid: int,
    secrets: list[str],
    batch: int,
    rate: float = 0.0,
    seconds: float = SECONDS,
    connections: bool = False,
    postgres: int | None = None,
) -> Result:
    """`postgres`: the postmaster's pid, to count the CPU of its processes too."""
    spawn = mp.get_context("spawn")  # a fresh gRPC in each client: no fork of a live channel
    out, go = spawn.Queue(), spawn.Event()
    procs = [
        spawn.Process(
            target=_client,
            args=(
                address,
                {s: _LAST_SEQ.get(s, 0) for s in secrets[i::CLIENT_PROCESSES]},
                batch,
                seconds,
                rate / CLIENT_PROCESSES,
                out,
                go,
                connections,
            ),
        )
        for i in range(CLIENT_PROCESSES)
    ]
    server = psutil.Process(pid)
    pg = psutil.Process(postgres) if postgres else None
    for p in procs:
        p.start()
    for _ in procs:  # started, imported, connected to nothing yet: not what is measured
        if out.get(timeout=120) != "ready":
            raise RuntimeError("a load client did not start")
    machine, start = psutil.cpu_times(), time.monotonic()
    before, pg_before = _cpu_seconds(server), _cpu_seconds(pg) if pg else 0.0
    go.set()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    after, pg_after = _cpu_seconds(server), _cpu_seconds(pg) if pg else 0.0
    window = time.monotonic() - start
    share = cpu_usage_ratio(machine._asdict(), psutil.cpu_times()._asdict())
    busy = share * window * (psutil.cpu_count() or 1)  # CPU seconds of the machine, all cores
    for p in procs:
        p.join(30)
    for r in results:
        _LAST_SEQ.update(r[5])
    errors = [e for r in results for e in r[3]]
    if errors:
        alive = "running" if psutil.pid_exists(pid) else "gone"
        raise RuntimeError(f"Submit to {address} failed (server {alive}): {errors[0]}")
    calls = sum(r[0] for r in results)
    lat = sorted(x for r in results for x in r[2])
    cpu, pg_cpu, client_cpu = after - before, pg_after - pg_before, sum(r[4] for r in results)
    return Result(
        sum(r[1] for r in results) / seconds,
        lat[len(lat) // 2] * 1000,
        lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
        cpu / calls * 1e6,
        client_cpu / calls * 1e6,
        pg_cpu / calls * 1e6,
        max(0.0, busy - cpu - pg_cpu - client_cpu) / calls * 1e6,
        calls / seconds,
        share * 100,
    )


def _cpu_seconds(root: psutil.Process) -> float:
    """CPU time of a process and all its descendants, the exited ones its processes have waited
    for included (`serve --processes N`: the supervisor's children do the work; PostgreSQL: the
    postmaster's backends and workers, autovacuum's come and go)."""
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def _wait_ready(address: str) -> None:
    deadline = time.monotonic() + 30
    with CollectorClient(address) as c:
        while not c.reachable(1):  # refused at once until the server listens
            if time.monotonic() > deadline:
                raise RuntimeError(f"server on {address} did not start")
            time.sleep(0.1)


@contextlib.contextmanager
def collector_process(
    agents: int,
    rules: Path | None = None,
    *,
    sites: Path | None = None,
    config: str = "",
    http_port: int = 0,
    store_url: str | None = None,
    serve: tuple[str, ...] = (),
    reported: bool = False,
) -> Iterator[Collector]:
    """A real `canhgac-collector serve` process on a temp SQLite store (or `store_url`) with
    `agents` enrolled (all in one commune, or spread over the places of `sites`, which becomes
    its sites_file), `rules` as its rules.path, `config` as more YAML and `serve` as more
    arguments of serve; stops the process afterwards. `reported`: each agent's first report on
    its spool_of stored too, for the load generator: what is then measured is a fleet that has
    reported before, not first reports (each registers its agent's spool)."""
    with tempfile.TemporaryDirectory() as d:
        db, config_file = Path(d) / "c.db", Path(d) / "collector.yaml"
        url = store_url or f"sqlite:///{db}"
        port = free_port()
        config_file.write_text(
            f"grpc_listen: 127.0.0.1:{port}\nhttp_listen: 127.0.0.1:{http_port}\n"
            f"store:\n  url: {url}\nlog_level: warning\n"
            + (f"rules:\n  path: {rules}\n" if rules else "")
            + (f"sites_file: {sites}\n" if sites else "")
            + config
        )
        # Enrolled here, not over gRPC: 10,000 enrollments are set-up, not what is measured.
        store = Store(url, "normal")
        if sites:
            tokens = list(tokens_for(store, load_sites(sites)).values())
        else:
            place = Placement("Cao Bằng", "Hạ Lang", "An Lạc", "", "workstation")
            tokens = [store.create_token(place, 3600, time.time())[1]]
        enrolled = [
            store.enroll(
                tokens[i % len(tokens)],
                MachineFacts(f"bench-{i}", f"pc-{i}", "W", "10", "bench"),
                0.0,
            )
            for i in range(agents)
        ]
        if reported:
            first = pb.Report.FromString(_template())
            first.seq = 1
            for e in enrolled:
                first.spool_id = spool_of(e.credential)
                store.ingest(e.agent.agent_id, [decode_report(first, time.time())], time.time())
                _LAST_SEQ[e.credential] = 1
        secrets = [e.credential for e in enrolled]
        store.close()
        bin_dir = Path(sys.executable).parent
        server = subprocess.Popen(
            [str(bin_dir / "canhgac-collector"), "--config", str(config_file), "serve", *serve],
            stdout=subprocess.DEVNULL,
        )
        try:
            address = f"127.0.0.1:{port}"
            _wait_ready(address)
            yield Collector(address, secrets, Path(d), server.pid)
        finally:
            server.terminate()
            server.wait(30)


@contextlib.contextmanager
def _noop_process() -> Iterator[tuple[str, int]]:
    port = free_port()
    noop = subprocess.Popen([sys.executable, "-m", "bench.noop_server", str(port)])
    try:
        _wait_ready(f"127.0.0.1:{port}")
        yield f"127.0.0.1:{port}", noop.pid
    finally:
        noop.terminate()
        noop.wait(30)


def measure(c: Collector, noop: tuple[str, int]) -> dict[str, float]:
    """One run against `c` (FLEET_AGENTS enrolled) and the no-op server at `noop`."""
    busy = CLIENT_PROCESSES * AGENTS_PER_PROCESS
    figures: dict[str, float] = {}
    for batch in (1, 50):
        ours = load(c.address, c.pid, c.secrets[:busy], batch)
        base = load(*noop, c.secrets[:busy], batch)
        figures[f"batch{batch}_reports_per_s"] = ours.reports_per_second
        figures[f"batch{batch}_noop_reports_per_s"] = base.reports_per_second
        figures[f"batch{batch}_ratio"] = ours.reports_per_second / base.reports_per_second
        figures[f"batch{batch}_server_cpu_us_per_call"] = ours.server_cpu_us_per_call
        figures[f"batch{batch}_noop_cpu_us_per_call"] = base.server_cpu_us_per_call
        if batch == 1:  # latency at half the peak just measured, paced from the schedule
            half = load(c.address, c.pid, c.secrets, 1, ours.reports_per_second / 2, HALF_SECONDS)
            figures["half_peak_reports_per_s"] = half.reports_per_second
            figures["half_peak_p50_ms"] = half.p50_ms
            figures["half_peak_p99_ms"] = half.p99_ms
    fleet = load(c.address, c.pid, c.secrets, 1, FLEET_AGENTS / FLEET_INTERVAL, FLEET_SECONDS)
    figures["fleet_reports_per_s"] = fleet.reports_per_second
    figures["fleet_p50_ms"] = fleet.p50_ms
    figures["fleet_p99_ms"] = fleet.p99_ms
    # Diagnostic, not the headline: the shipped rule pack judging every stored report.
    with collector_process(busy, RULES, reported=True) as ruled:
        for batch in (1, 50):
            r = load(ruled.address, ruled.pid, ruled.secrets, batch)
            figures[f"rules_batch{batch}_reports_per_s"] = r.reports_per_second
            figures[f"rules_batch{batch}_server_cpu_us_per_call"] = r.server_cpu_us_per_call
    return figures


def main() -> dict[str, float]:
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    with _noop_process() as noop, collector_process(FLEET_AGENTS, reported=True) as c:
        samples = [measure(c, noop) for _ in range(runs)]
    med = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
    print(f"ingest (median of {runs} runs; SQLite synchronous=FULL; loopback; default config)")
    for batch in (1, 50):
        print(
            f"  batch {batch:>2}: {med[f'batch{batch}_reports_per_s']:>9.0f} reports/s"
            f"  no-op {med[f'batch{batch}_noop_reports_per_s']:>9.0f}"
            f"  ratio {med[f'batch{batch}_ratio']:.2f}"
            f"  server CPU/call {med[f'batch{batch}_server_cpu_us_per_call']:>6.0f} µs"
            f" (no-op {med[f'batch{batch}_noop_cpu_us_per_call']:.0f})"
        )
    print(
        f"  batch 1 at half the peak ({med['half_peak_reports_per_s']:.0f} reports/s):"
        f" p50 {med['half_peak_p50_ms']:.1f} ms, p99 {med['half_peak_p99_ms']:.1f} ms"
    )
    print(
        f"  {FLEET_AGENTS:,} agents every {FLEET_INTERVAL:.0f} s "
        f"({med['fleet_reports_per_s']:.0f} reports/s): "
        f"p50 {med['fleet_p50_ms']:.1f} ms, p99 {med['fleet_p99_ms']:.1f} ms"
    )
    print(
        "  diagnostic, shipped rule pack on:"
        f" batch 1 {med['rules_batch1_reports_per_s']:.0f} reports/s"
        f" ({med['rules_batch1_server_cpu_us_per_call']:.0f} µs/call),"
        f" batch 50 {med['rules_batch50_reports_per_s']:.0f} reports/s"
        f" ({med['rules_batch50_server_cpu_us_per_call']:.0f} µs/call)"
    )
    return med


if __name__ == "__main__":
    main()
