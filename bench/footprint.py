"""Agent footprint beside Debian's prometheus-node-exporter, measured side by side in one run:
steady RSS of the running service, and CPU per collection cycle (ours: every probe and the
report's encoding, network waits excluded, commands it runs included) vs CPU per scrape.
`python -m bench.footprint`."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from agent.platform.clamd import ClamdAddress
from tests.integration.clamav import build_daily_cud, running_clamd

__all__ = ["main", "measure"]

CYCLES = 20
REPORT_INTERVAL = 15.0
SCRAPES = 20
# The service collects every probe each second; RSS is read once this many reports are spooled.
SERVICE_WARMUP = 5
SERVICE_CYCLES = 20
CLAMAV_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def _probes(clamd: ClamdAddress) -> dict[str, Any]:
    """Every probe with its defaults, except the link probe: loopback only and no waits worth
    counting (no gateway, one echo, no traceroute); antivirus talks to a real clamd."""
    return {
        "link": {
            "targets": ["127.0.0.1"],
            "ping_gateway": False,
            "ping_collector": False,
            "count": 1,
            "traceroute": False,
            "throughput": {"enabled": False},
        },
        "antivirus": {"clamd": {"socket": clamd.path, "self_test_interval": "1d"}},
    }


def _cpu() -> float:
    """CPU seconds of this process and of the commands it ran (nft, …): the agent pays both."""
    import resource  # noqa: PLC0415 (POSIX only, like this benchmark)

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _child(probe_config: dict[str, Any]) -> None:
    """Run in a fresh process: import the agent as the service does and collect CYCLES times."""
    from agent.config import AgentConfig  # noqa: PLC0415
    from agent.model import SpoolStats  # noqa: PLC0415
    from agent.probes import PROBES as REGISTRY  # noqa: PLC0415
    from agent.runner import collect  # noqa: PLC0415
    from agent.transport.encode import encode_report  # noqa: PLC0415

    cfg = AgentConfig.model_validate({"probes": probe_config})
    options = {n: getattr(cfg.probes, n) for n in REGISTRY if getattr(cfg.probes, n).enabled}
    probes = {n: REGISTRY[n].from_options(o) for n, o in options.items()}
    # Warm-up (lazy imports, first reads); its report is what each cycle encodes below.
    report = collect(probes, "bench", int(time.time() * 1000))

    per_probe = {}
    for name, probe in probes.items():
        before = _cpu()
        for _ in range(CYCLES):
            collect({name: probe}, "bench", int(time.time() * 1000))
        per_probe[name] = (_cpu() - before) / CYCLES
    # The wire encoding is part of a cycle as the text format is part of a scrape.
    report = dataclasses.replace(report, seq=1, spool=SpoolStats(dropped_total=0, depth=0))
    before = _cpu()
    for _ in range(CYCLES):
        encode_report(report)
    encode = (_cpu() - before) / CYCLES
    # With the default intervals a 15 s cycle runs each probe only when it is due (the encoding
    # counted in full: an upper bound).
    amortised = encode + sum(
        t * min(1.0, REPORT_INTERVAL / (options[n].interval or REPORT_INTERVAL))
        for n, t in per_probe.items()
    )
    print(
        json.dumps(
            {
                "cpu_per_cycle_s": sum(per_probe.values()) + encode,
                "cpu_amortised_s": amortised,
                "per_probe_s": {**per_probe, "encode": encode},
            }
        )
    )


# Run with `python -c` in a fresh interpreter (this module's own imports would count): the
# libraries the service cannot do without and an HTTP/2 connection (h2, as the agent's gRPC
# client uses it) that has made as many Submit calls as the measured service, no agent code.
# Prints its RSS in bytes.
_FLOOR = f"""
import socket, sqlite3, struct, sys, time, zlib
import h2.connection, h2.events, psutil, yaml
from canhgac_proto.v1 import collector_pb2 as pb
db = sqlite3.connect(":memory:")
host, port = sys.argv[1].rsplit(":", 1)
sock = socket.create_connection((host, int(port)), timeout=10)
conn = h2.connection.H2Connection()
conn.initiate_connection()
sock.sendall(conn.data_to_send())
path = "/" + pb.DESCRIPTOR.services_by_name["Collector"].full_name + "/Submit"
for _ in range({SERVICE_WARMUP + SERVICE_CYCLES}):
    body = zlib.compress(pb.SubmitRequest().SerializeToString(), wbits=31)
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":path", path),
        (":authority", sys.argv[1]), ("content-type", "application/grpc"), ("te", "trailers"),
        ("grpc-encoding", "gzip")])
    conn.send_data(sid, struct.pack(">BI", 1, len(body)) + body, end_stream=True)
    sock.sendall(conn.data_to_send())
    done = False
    while not done:
        for event in conn.receive_data(sock.recv(65536)):
            if isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, sid)
            done = done or isinstance(event, h2.events.StreamEnded)
        sock.sendall(conn.data_to_send())
    time.sleep(0.05)
print(psutil.Process().memory_info().rss)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _process(argv: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


def _spooled(state_dir: Path) -> int:
    """Reports the service has collected so far (its spool's last seq)."""
    try:
        with contextlib.closing(sqlite3.connect(state_dir / "spool.db", timeout=5)) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0]) if row else 0


def _wait_for(state_dir: Path, seq: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while _spooled(state_dir) < seq:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"agent service stopped or stalled before report {seq}")
        time.sleep(0.2)


def _rss_by_mapping(pid: int) -> dict[str, float]:
    """Resident MB per mapped file (anonymous memory and the heap as one entry)."""
    kib: collections.Counter[str] = collections.Counter()
    name = "anonymous"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if parts[0].endswith(":"):
            if parts[0] == "Rss:":
                kib[name] += int(parts[1])
        else:
            path = parts[5] if len(parts) > 5 else ""
            name = path.rsplit("/", 1)[-1] if path.startswith("/") else "anonymous"
    return {k: v / 1024 for k, v in kib.most_common()}


def _service(probe_config: dict[str, Any]) -> dict[str, Any]:
    """The real `canhgac-agent run` (every probe each second) delivering to a no-op collector:
    steady RSS with its breakdown, and CPU per cycle including encoding, spool and Submit."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="canhgac-footprint-") as tmp:
        state = Path(tmp)
        credential = {
            "collector": f"127.0.0.1:{port}",
            "agent_id": "bench",
            "secret": "bench",
            "report_interval_seconds": 1,
        }
        (state / "credential.json").write_text(json.dumps(credential))
        every_second = {n: {"interval": "1s"} for n in ("antivirus", "security")}
        probes = {
            n: {**probe_config.get(n, {}), **every_second.get(n, {})}
            for n in {*probe_config, *every_second}
        }
        # JSON is YAML: the service reads it as its config file.
        (state / "agent.yaml").write_text(json.dumps({"state_dir": tmp, "probes": probes}))
        server = [sys.executable, "-m", "bench.noop_server", str(port)]
        agent = [sys.executable, "-m", "agent", "--config", str(state / "agent.yaml"), "run"]
        with _process(server), _process([*agent, "--interval", "1"]) as proc:
            p = psutil.Process(proc.pid)
            _wait_for(state, SERVICE_WARMUP, proc)
            seq, cpu = _spooled(state), sum(p.cpu_times()[:4])
            _wait_for(state, seq + SERVICE_CYCLES, proc)
            cycles = _spooled(state) - seq
            cpu = (sum(p.cpu_times()[:4]) - cpu) / cycles
            memory = p.memory_info()
            floor = subprocess.run(
                [sys.executable, "-c", _FLOOR, f"127.0.0.1:{port}"],
                capture_output=True,
                text=True,
                check=True,
            )
            return {
                "rss_bytes": memory.rss,
                "floor_rss_bytes": int(floor.stdout.strip().splitlines()[-1]),
                "cpu_per_cycle_s": cpu,
                "rss_mb_by_mapping": _rss_by_mapping(proc.pid),
            }


def _node_exporter() -> dict[str, float]:
    binary = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if binary is None:
        raise SystemExit("prometheus-node-exporter is not installed (apt-get install it)")
    port = _free_port()
    with _process([binary, f"--web.listen-address=127.0.0.1:{port}"]) as proc:
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url, timeout=5).read()  # warm-up scrape
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        p = psutil.Process(proc.pid)
        before = sum(p.cpu_times()[:4])
        for _ in range(SCRAPES):
            urllib.request.urlopen(url, timeout=10).read()
        cpu = (sum(p.cpu_times()[:4]) - before) / SCRAPES
        return {"cpu_per_scrape_s": cpu, "rss_bytes": float(p.memory_info().rss)}


@contextlib.contextmanager
def _clamd() -> Iterator[ClamdAddress]:
    """clamd with a one-signature database, as the integration tests run it: a Linux office PC
    runs clamd, and the probe's conversation with it is part of a cycle."""
    if shutil.which("clamd", path=CLAMAV_PATH) is None:
        raise SystemExit("clamd is not installed (apt-get install clamav-daemon clamav)")
    with tempfile.TemporaryDirectory(prefix="canhgac-footprint-clamd-") as tmp:
        database = Path(tmp) / "database"
        build_daily_cud(database, Path(tmp) / "build")
        with running_clamd(Path(tmp), database) as (address, _):
            yield address


def measure() -> dict[str, Any]:
    with _clamd() as clamd:
        probe_config = _probes(clamd)
        out = subprocess.run(
            [sys.executable, "-m", "bench.footprint", "--child", json.dumps(probe_config)],
            capture_output=True,
            text=True,
            check=True,
        )
        ours = json.loads(out.stdout.strip().splitlines()[-1])
        service = _service(probe_config)
    node = _node_exporter()
    return {
        "agent_rss_mb": service["rss_bytes"] / 2**20,
        "agent_rss_mb_by_mapping": service["rss_mb_by_mapping"],
        "floor_rss_mb": service["floor_rss_bytes"] / 2**20,
        "agent_service_cpu_ms_per_cycle": service["cpu_per_cycle_s"] * 1000,
        "agent_cpu_ms_per_cycle": ours["cpu_per_cycle_s"] * 1000,
        "agent_cpu_ms_amortised": ours["cpu_amortised_s"] * 1000,
        **{f"probe_{n}_ms": t * 1000 for n, t in ours["per_probe_s"].items()},
        "node_exporter_rss_mb": node["rss_bytes"] / 2**20,
        "node_exporter_cpu_ms_per_scrape": node["cpu_per_scrape_s"] * 1000,
    }


def main() -> dict[str, Any]:
    m = measure()
    node_cpu = m["node_exporter_cpu_ms_per_scrape"]
    print("agent footprint vs prometheus-node-exporter (same run)")
    print(
        f"  RSS: agent service {m['agent_rss_mb']:.1f} MB,"
        f" node_exporter {m['node_exporter_rss_mb']:.1f} MB"
        f"  ratio {m['agent_rss_mb'] / m['node_exporter_rss_mb']:.2f}"
    )
    print(
        f"  floor (python, psutil, sqlite3, yaml, protobuf, h2 connection after the same Submits,"
        f" no agent code): {m['floor_rss_mb']:.1f} MB"
        f"  ratio {m['floor_rss_mb'] / m['node_exporter_rss_mb']:.2f}"
    )
    top = list(m["agent_rss_mb_by_mapping"].items())[:6]
    print("  agent RSS by mapping (MB): " + ", ".join(f"{k} {v:.1f}" for k, v in top))
    print(
        f"  CPU: agent {m['agent_cpu_ms_per_cycle']:.1f} ms per cycle of every probe, encoded,"
        f" node_exporter {node_cpu:.1f} ms per scrape"
        f"  ratio {m['agent_cpu_ms_per_cycle'] / node_cpu:.2f}"
    )
    print(
        f"  CPU of the service per cycle of every probe, with spool and Submit:"
        f" {m['agent_service_cpu_ms_per_cycle']:.1f} ms"
        f"  ratio {m['agent_service_cpu_ms_per_cycle'] / node_cpu:.2f}"
    )
    print(
        f"  CPU per 15 s cycle with the default probe intervals: {m['agent_cpu_ms_amortised']:.1f}"
        f" ms  ratio {m['agent_cpu_ms_amortised'] / node_cpu:.2f}"
    )
    probes = ", ".join(f"{k[6:-3]} {v:.1f}" for k, v in m.items() if k.startswith("probe_"))
    print(f"  per probe and the encoding (ms): {probes}")
    return m


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(json.loads(sys.argv[2]))
    else:
        main()
