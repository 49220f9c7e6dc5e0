"""Agent footprint beside Debian's prometheus-node-exporter, measured side by side in one run:
steady RSS, and CPU per collection cycle (ours: every probe, network waits excluded) vs CPU per
scrape (node_exporter). `python -m bench.footprint`."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import psutil

__all__ = ["main", "measure"]

CYCLES = 20
REPORT_INTERVAL = 15.0
SCRAPES = 20


def _child() -> None:
    """Run in a fresh process: import the agent as the service does and collect CYCLES times."""
    import resource  # noqa: PLC0415

    from agent.config import AgentConfig  # noqa: PLC0415
    from agent.probes import PROBES  # noqa: PLC0415
    from agent.runner import collect  # noqa: PLC0415

    # Link: loopback only and no waits worth counting (no gateway, one echo, no traceroute).
    cfg = AgentConfig.model_validate(
        {
            "probes": {
                "link": {
                    "targets": ["127.0.0.1"],
                    "ping_gateway": False,
                    "ping_collector": False,
                    "count": 1,
                    "traceroute": False,
                    "throughput": {"enabled": False},
                },
                "antivirus": {"clamd": {"self_test_interval": "1d"}},
            }
        }
    )
    options = {n: getattr(cfg.probes, n) for n in PROBES if getattr(cfg.probes, n).enabled}
    probes = {n: PROBES[n].from_options(o) for n, o in options.items()}
    collect(probes, "bench", int(time.time() * 1000))  # warm-up: lazy imports, first reads

    def cpu() -> float:
        u = resource.getrusage(resource.RUSAGE_SELF)
        return u.ru_utime + u.ru_stime

    per_probe = {}
    for name, probe in probes.items():
        before = cpu()
        for _ in range(CYCLES):
            collect({name: probe}, "bench", int(time.time() * 1000))
        per_probe[name] = (cpu() - before) / CYCLES
    # With the default intervals a 15 s cycle runs each probe only when it is due.
    amortised = sum(
        t * min(1.0, REPORT_INTERVAL / (options[n].interval or REPORT_INTERVAL))
        for n, t in per_probe.items()
    )
    rss = psutil.Process().memory_info().rss
    print(
        json.dumps(
            {
                "cpu_per_cycle_s": sum(per_probe.values()),
                "cpu_amortised_s": amortised,
                "per_probe_s": per_probe,
                "rss_bytes": rss,
            }
        )
    )


def _node_exporter() -> dict[str, float]:
    binary = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if binary is None:
        raise SystemExit("prometheus-node-exporter is not installed (apt-get install it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
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
        before = sum(p.cpu_times()[:2])
        for _ in range(SCRAPES):
            urllib.request.urlopen(url, timeout=10).read()
        cpu = (sum(p.cpu_times()[:2]) - before) / SCRAPES
        return {"cpu_per_scrape_s": cpu, "rss_bytes": float(p.memory_info().rss)}
    finally:
        proc.terminate()
        proc.wait(10)


def measure() -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.footprint", "--child"],
        capture_output=True,
        text=True,
        check=True,
    )
    ours = json.loads(out.stdout.strip().splitlines()[-1])
    node = _node_exporter()
    return {
        "agent_rss_mb": ours["rss_bytes"] / 2**20,
        "agent_cpu_ms_per_cycle": ours["cpu_per_cycle_s"] * 1000,
        "agent_cpu_ms_amortised": ours["cpu_amortised_s"] * 1000,
        **{f"probe_{n}_ms": t * 1000 for n, t in ours["per_probe_s"].items()},
        "node_exporter_rss_mb": node["rss_bytes"] / 2**20,
        "node_exporter_cpu_ms_per_scrape": node["cpu_per_scrape_s"] * 1000,
    }


def main() -> dict[str, float]:
    m = measure()
    print("agent footprint vs prometheus-node-exporter (same run)")
    print(
        f"  RSS: agent {m['agent_rss_mb']:.1f} MB, node_exporter {m['node_exporter_rss_mb']:.1f} MB"
        f"  ratio {m['agent_rss_mb'] / m['node_exporter_rss_mb']:.2f}"
    )
    print(
        f"  CPU: agent {m['agent_cpu_ms_per_cycle']:.1f} ms per cycle, node_exporter "
        f"{m['node_exporter_cpu_ms_per_scrape']:.1f} ms per scrape"
        f"  ratio {m['agent_cpu_ms_per_cycle'] / m['node_exporter_cpu_ms_per_scrape']:.2f}"
    )
    print(
        f"  CPU per 15 s cycle with the default probe intervals: {m['agent_cpu_ms_amortised']:.1f}"
        f" ms  ratio {m['agent_cpu_ms_amortised'] / m['node_exporter_cpu_ms_per_scrape']:.2f}"
    )
    probes = ", ".join(f"{k[6:-3]} {v:.1f}" for k, v in m.items() if k.startswith("probe_"))
    print(f"  per probe (ms): {probes}")
    return m


if __name__ == "__main__":
    if "--child" in sys.argv:
        _child()
    else:
        main()
