"""Link probe against faults injected in namespaces the test builds (only those are probed)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.netns import Lab, require_tool

NO_DEFAULTS = {"ping_gateway": False, "ping_collector": False, "traceroute": False}


def _pair(lab: Lab) -> tuple[str, str]:
    """Prober namespace and target namespace on one veth link: 10.77.0.1 <-> 10.77.0.2."""
    prober, target = lab.ns(), lab.ns()
    lab.link(prober, "p0", "10.77.0.1/24", target, "t0", "10.77.0.2/24")
    return prober, target


def _nft_chain(lab: Lab, ns: str, hook: str) -> None:
    lab.exec(ns, "nft", "add", "table", "inet", "canhgac")
    spec = f"{{ type filter hook {hook} priority 0; }}"
    lab.exec(ns, "nft", "add", "chain", "inet", "canhgac", hook, spec)


def _one_ping(link: dict[str, Any]) -> dict[str, Any]:
    pings: list[dict[str, Any]] = link["pings"]
    assert len(pings) == 1 and not pings[0].get("error"), pings
    return pings[0]


@pytest.mark.parametrize("loss_percent", [0, 10, 30])
def test_loss_within_binomial_tolerance(lab: Lab, loss_percent: int) -> None:
    require_tool("nft")
    prober, target = _pair(lab)
    if loss_percent:
        _nft_chain(lab, target, "input")
        lab.exec(
            target,
            "nft",
            "add",
            "rule",
            "inet",
            "canhgac",
            "input",
            "icmp",
            "type",
            "echo-request",
            "numgen",
            "random",
            "mod",
            "100",
            "<",
            str(loss_percent),
            "drop",
        )
    count = 400
    link = lab.probe(
        prober,
        {
            **NO_DEFAULTS,
            "targets": ["10.77.0.2"],
            "count": count,
            "ping_interval": 0.003,
            "ping_timeout": 0.5,
        },
    )
    ping = _one_ping(link)
    assert ping["sent"] == count
    p = loss_percent / 100
    # Four standard deviations of a binomial share: false alarms about once in 15,000 runs.
    tolerance = 4 * math.sqrt(p * (1 - p) / count)
    print(f"loss {loss_percent} %: measured {ping['loss_ratio']:.3f} ± {tolerance:.3f} allowed")
    assert abs(ping["loss_ratio"] - p) <= tolerance, (ping["loss_ratio"], p, tolerance)
    assert ping["received"] == count - round(ping["loss_ratio"] * count)


def test_delay_and_jitter_from_userspace_responder(lab: Lab) -> None:
    prober, target = _pair(lab)
    lab.exec(target, "sysctl", "-q", "-w", "net.ipv4.icmp_echo_ignore_all=1")
    responder = lab.start(
        target,
        sys.executable,
        str(Path(__file__).with_name("icmp_delay_responder.py")),
        "0.060",
        "0.100",
        "60",
    )
    assert responder.stdout is not None and responder.stdout.readline().strip() == "ready"
    link = lab.probe(
        prober,
        {**NO_DEFAULTS, "targets": ["10.77.0.2"], "count": 60, "ping_interval": 0.05},
    )
    ping = _one_ping(link)
    assert ping["received"] == 60
    print(f"rtt avg {ping['rtt_avg_seconds']:.4f} s, jitter {ping['jitter_seconds']:.4f} s")
    # Delays uniform on 60..100 ms: mean 80 ms; mean |difference| of two draws = 40/3 ms.
    assert ping["rtt_avg_seconds"] == pytest.approx(0.080, abs=0.010)
    assert ping["rtt_min_seconds"] >= 0.060 and ping["rtt_max_seconds"] <= 0.120
    assert ping["jitter_seconds"] == pytest.approx(0.040 / 3, abs=0.005)


def test_gateway_discovered_in_namespace_and_pinged(lab: Lab) -> None:
    prober, _target = _pair(lab)
    lab.exec(prober, "ip", "route", "add", "default", "via", "10.77.0.2")
    link = lab.probe(prober, {"ping_collector": False, "count": 3, "ping_interval": 0.01})
    assert link["gateway"] == "10.77.0.2"
    ping = _one_ping(link)
    assert (ping["target"], ping["received"]) == ("10.77.0.2", 3)


_COLLECTOR_SNIPPET = """
import json, sys, time
from tests.integration.harness import collector_config
from collector.app import CollectorApp
from collector.model import Placement
cfg = collector_config(sys.argv[1])
app = CollectorApp(cfg, grpc_address="10.78.0.2:0", http_address="127.0.0.1:0")
app.start()
placement = Placement("Cao Bằng", "Hạ Lang", "Thanh Nhật", "", "workstation")
_, token = app.store.create_token(placement, 3600, time.time())
print(json.dumps({"address": f"10.78.0.2:{app.grpc_port}", "token": token}), flush=True)
time.sleep(float(sys.argv[2]))
"""

_THROUGHPUT_SNIPPET = """
import json, sys
from agent.probes.base import CollectorLink
from agent.probes.link import LinkOptions, LinkProbe
from agent.transport.client import CollectorClient, MachineFacts
address, token = sys.argv[1], sys.argv[2]
with CollectorClient(address, timeout=60) as c:
    secret = c.enroll(token, MachineFacts("m", "h", "Linux", "6", "0.1.0")).secret
with CollectorClient(address, timeout=60, secret=secret, gzip=False) as client:
    probe = LinkProbe(LinkOptions.model_validate(
        {"ping_gateway": False, "ping_collector": False, "throughput": {"bytes": 1048576}}))
    probe.connect(CollectorLink(address, client.throughput))
    print(json.dumps(probe.collect().throughput.__dict__))
"""


def test_throughput_through_a_2_mbit_cap(lab: Lab, tmp_path: Path) -> None:
    agent_ns, collector_ns = lab.ns(), lab.ns()
    lab.link(agent_ns, "a0", "10.78.0.1/24", collector_ns, "c0", "10.78.0.2/24")
    # Collector -> agent is the measured direction; a small burst keeps the cap honest.
    lab.exec(
        collector_ns,
        "tc",
        "qdisc",
        "add",
        "dev",
        "c0",
        "root",
        "tbf",
        "rate",
        "2mbit",
        "burst",
        "8kb",
        "latency",
        "400ms",
    )
    server = lab.start(
        collector_ns, sys.executable, "-c", _COLLECTOR_SNIPPET, str(tmp_path / "c.db"), "90"
    )
    assert server.stdout is not None
    started = json.loads(server.stdout.readline())
    result = lab.python(
        agent_ns, _THROUGHPUT_SNIPPET, started["address"], started["token"], timeout=90
    )
    assert result["error"] == "" and result["bytes"] == 1048576
    print(f"throughput through a 2 Mbit/s cap: {result['bits_per_second'] / 1e6:.3f} Mbit/s")
    assert result["bits_per_second"] == pytest.approx(2_000_000, rel=0.20)


def test_traceroute_names_the_hop_that_drops(lab: Lab) -> None:
    require_tool("nft")
    host, r1, r2, far = lab.ns(), lab.ns(), lab.ns(), lab.ns()
    lab.link(host, "h0", "10.81.1.2/24", r1, "r1a", "10.81.1.1/24")
    lab.link(r1, "r1b", "10.81.2.1/24", r2, "r2a", "10.81.2.2/24")
    lab.link(r2, "r2b", "10.81.3.1/24", far, "f0", "10.81.3.2/24")
    lab.exec(host, "ip", "route", "add", "default", "via", "10.81.1.1")
    lab.exec(r1, "ip", "route", "add", "default", "via", "10.81.2.2")
    lab.exec(r2, "ip", "route", "add", "10.81.1.0/24", "via", "10.81.2.1")
    lab.exec(far, "ip", "route", "add", "default", "via", "10.81.3.1")
    for router in (r1, r2):
        lab.exec(router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
    options = {
        **NO_DEFAULTS,
        "traceroute": True,
        "traceroute_max_hops": 6,
        "targets": ["10.81.3.2"],
        "count": 3,
        "ping_interval": 0.05,
        "ping_timeout": 0.5,
    }
    healthy = lab.probe(host, options)
    assert _one_ping(healthy)["received"] == 3
    assert healthy.get("traceroutes", []) == []  # only failing targets are traced
    # R2 forwards nothing (it still answers for itself, as a broken router does).
    _nft_chain(lab, r2, "forward")
    lab.exec(r2, "nft", "add", "rule", "inet", "canhgac", "forward", "drop")
    broken = lab.probe(host, options)
    assert _one_ping(broken)["received"] == 0
    (trace,) = broken["traceroutes"]
    assert trace["target"] == "10.81.3.2" and not trace.get("reached", False)
    assert (trace["last_responding_ttl"], trace["last_responding_address"]) == (2, "10.81.2.2")
    assert [h.get("address", "") for h in trace["hops"][:2]] == ["10.81.1.1", "10.81.2.2"]


def test_arp_sweep_finds_one_ip_on_two_macs(lab: Lab) -> None:
    prober, twin1, twin2 = lab.ns(), lab.ns(), lab.ns()
    lab.exec(prober, "ip", "link", "add", "br0", "type", "bridge")
    lab.exec(prober, "ip", "addr", "add", "10.82.0.1/24", "dev", "br0")
    lab.exec(prober, "ip", "link", "set", "br0", "up")
    macs = []
    for i, twin in enumerate((twin1, twin2)):
        lab.link(prober, f"port{i}", "", twin, "e0", "10.82.0.7/24")
        lab.exec(prober, "ip", "link", "set", f"port{i}", "master", "br0")
        macs.append(lab.exec(twin, "cat", "/sys/class/net/e0/address").strip())
    link = lab.probe(
        prober,
        {**NO_DEFAULTS, "arp_networks": ["10.82.0.0/28"], "arp_interface": "br0"},
    )
    assert link["ip_conflicts"] == [{"address": "10.82.0.7", "macs": sorted(macs), "source": "arp"}]


@pytest.mark.parametrize("allowed", [False, True])
def test_rogue_dhcp_server_detected_unless_allowed(lab: Lab, tmp_path: Path, allowed: bool) -> None:
    require_tool("dnsmasq")
    client, server = lab.ns(), lab.ns()
    lab.link(client, "d0", "", server, "s0", "10.83.0.1/24")
    dnsmasq = lab.start(
        server,
        "dnsmasq",
        "--no-daemon",
        "--conf-file=/dev/null",
        "--port=0",
        "--no-ping",
        "--interface=s0",
        "--bind-interfaces",
        "--dhcp-range=10.83.0.100,10.83.0.150,1h",
        f"--dhcp-leasefile={tmp_path / 'leases'}",
        f"--pid-file={tmp_path / 'pid'}",
    )
    link = lab.probe(
        client,
        {
            **NO_DEFAULTS,
            "dhcp": {
                "enabled": True,
                "interface": "d0",
                "allowed_servers": ["10.83.0.1"] if allowed else [],
                "timeout": 3,
            },
        },
    )
    assert dnsmasq.poll() is None, "dnsmasq exited early"
    (found,) = link["dhcp_servers"]
    assert found["server_id"] == "10.83.0.1"
    assert found["offered_address"].startswith("10.83.0.1")
    assert found.get("allowed", False) is allowed
    # Only a DISCOVER was sent: the server handed out no lease.
    leases = tmp_path / "leases"
    assert not leases.exists() or leases.read_text() == ""
