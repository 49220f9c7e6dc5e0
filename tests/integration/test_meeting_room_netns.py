"""Meeting-room readiness from real paths: scripted delay, loss and bandwidth in namespaces."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.integration.netns import Lab, require_tool
from tests.integration.test_link_netns import _COLLECTOR_SNIPPET

pytestmark = pytest.mark.timeout(300)

# The room's probe with the real ICMP and Throughput call; devices, apps and headroom are
# switched off so that only the path decides the colour.
_ROOM_SNIPPET = """
import json, sys
from agent.probes.base import CollectorLink
from agent.probes.meeting_room import MeetingRoomOptions, MeetingRoomProbe
from agent.transport.client import CollectorClient, MachineFacts
address, token = sys.argv[1], sys.argv[2]
with CollectorClient(address, timeout=60) as c:
    secret = c.enroll(token, MachineFacts("m", "h", "Linux", "6", "0.1.0")).secret
with CollectorClient(address, timeout=60, secret=secret, gzip=False) as client:
    probe = MeetingRoomProbe(MeetingRoomOptions.model_validate({
        "expect": [], "endpoints": [address.split(":")[0]], "ping_collector": False,
        "count": 60, "ping_interval": 0.05, "throughput": {"bytes": 1048576},
        "readiness": {"max_cpu_busy": 1.0, "min_memory_available": 0, "min_disk_free": 0},
    }))
    probe.connect(CollectorLink(address, client.throughput, client.clock_offset))
    room = probe.collect()
    print(json.dumps({
        "state": room.readiness.state,
        "codes": sorted({r.code for r in room.readiness.reasons if r.severity != "info"}),
        "rtt": room.paths[0].rtt_avg_seconds,
        "loss": room.paths[0].loss_ratio,
        "mbps": room.throughput.bits_per_second / 1e6,
    }))
"""


@pytest.mark.parametrize(
    ("profile", "state", "codes"),
    [
        ("clean", "green", []),
        ("delay 110-130 ms", "amber", ["rtt_high"]),
        ("loss 30 %", "red", ["loss_high"]),
        ("2 Mbit/s", "amber", ["throughput_low"]),  # a 1080p room at the 720p rate
        ("1 Mbit/s", "red", ["throughput_low"]),
    ],
)
def test_readiness_from_scripted_paths(
    lab: Lab, tmp_path: Path, profile: str, state: str, codes: list[str]
) -> None:
    room_ns, collector_ns = lab.ns(), lab.ns()
    lab.link(room_ns, "r0", "10.79.0.1/24", collector_ns, "c0", "10.79.0.2/24")
    if profile.startswith("delay"):
        lab.exec(collector_ns, "sysctl", "-q", "-w", "net.ipv4.icmp_echo_ignore_all=1")
        responder = lab.start(
            collector_ns,
            sys.executable,
            str(Path(__file__).with_name("icmp_delay_responder.py")),
            "0.110",
            "0.130",
            "120",
        )
        assert responder.stdout is not None and responder.stdout.readline().strip() == "ready"
    elif profile.startswith("loss"):
        require_tool("nft")
        lab.exec(collector_ns, "nft", "add", "table", "inet", "canhgac")
        spec = "{ type filter hook input priority 0; }"
        lab.exec(collector_ns, "nft", "add", "chain", "inet", "canhgac", "input", spec)
        rule = "icmp type echo-request numgen random mod 100 < 30 drop"
        lab.exec(collector_ns, "nft", "add", "rule", "inet", "canhgac", "input", *rule.split())
    elif profile.endswith("Mbit/s"):
        rate = profile.split(maxsplit=1)[0] + "mbit"
        tbf = ["tc", "qdisc", "add", "dev", "c0", "root", "tbf", "rate", rate, "burst", "8kb"]
        lab.exec(collector_ns, *tbf, "latency", "400ms")
    snippet = _COLLECTOR_SNIPPET.replace("10.78.0.2", "10.79.0.2")
    server = lab.start(collector_ns, sys.executable, "-c", snippet, str(tmp_path / "c.db"), "120")
    assert server.stdout is not None
    started = json.loads(server.stdout.readline())
    got = lab.python(room_ns, _ROOM_SNIPPET, started["address"], started["token"], timeout=120)
    print(f"{profile}: {got}")
    assert (got["state"], got["codes"]) == (state, codes), got
