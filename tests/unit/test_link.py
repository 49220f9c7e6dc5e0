"""Link probe: pure parsers on fixtures, statistics, budget and throughput seam, loopback checks."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from agent.config import load_config
from agent.errors import ProbeFailed
from agent.model import DhcpServer, HttpCheck, IpConflict, Link, Report, TracerouteHop
from agent.platform import icmp, lan, netcheck
from agent.platform.netcheck import split_host_port
from agent.platform.ping import ping_result
from agent.probes.base import CollectorLink
from agent.probes.link import (
    LinkOptions,
    LinkProbe,
    parse_proc_net_route,
    parse_windows_link,
)
from agent.transport.encode import to_pb
from collector.decode import decode_report

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "link"
REPO = Path(__file__).resolve().parents[2]


def test_gateway_from_proc_net_route_lowest_metric() -> None:
    text = (FIXTURES / "proc_net_route.txt").read_text()
    assert parse_proc_net_route(text) == "192.168.1.254"
    assert parse_proc_net_route(text.splitlines()[0]) == ""


def test_windows_document_gateway_and_conflicts() -> None:
    gateway, conflicts = parse_windows_link((FIXTURES / "windows_link_vi-VN.json").read_text())
    assert gateway == "192.168.10.1"
    assert conflicts == [
        IpConflict("192.168.10.23", ("00:11:22:33:44:55", "ac:1f:6b:00:12:34"), "windows-event")
    ]
    single = (FIXTURES / "windows_link_single.json").read_text()
    assert parse_windows_link("\ufeff" + single) == ("10.20.1.1", [])
    with pytest.raises(ProbeFailed, match="not valid JSON"):
        parse_windows_link('{"Routes": [')


def _echo_reply_struct(address: str, status: int, rtt_ms: int, pointer_size: int) -> bytes:
    # ICMP_ECHO_REPLY from ipexport.h: Address, Status, RoundTripTime, DataSize, Reserved, Data*,
    # then IP_OPTION_INFORMATION (Ttl, Tos, Flags, OptionsSize, OptionsData*).
    pointer = b"\0" * pointer_size
    head = socket.inet_aton(address) + struct.pack("<LLHH", status, rtt_ms, 8, 0)
    return head + pointer + bytes([64, 0, 0, 0]) + b"\0" * (pointer_size - 4) + pointer


@pytest.mark.parametrize("pointer_size", [4, 8])
def test_windows_echo_reply_struct(pointer_size: int) -> None:
    ok = _echo_reply_struct("10.20.1.1", icmp.IP_SUCCESS, 23, pointer_size)
    assert icmp.parse_windows_echo_reply(ok, pointer_size) == icmp.WindowsEchoReply(
        "10.20.1.1", 0, 23
    )
    lost = _echo_reply_struct("0.0.0.0", icmp.IP_REQ_TIMED_OUT, 0, pointer_size)
    assert icmp.parse_windows_echo_reply(lost, pointer_size).status == icmp.IP_REQ_TIMED_OUT
    with pytest.raises(ValueError, match="needs"):
        icmp.parse_windows_echo_reply(ok[:10], pointer_size)


def test_echo_packets_roundtrip_and_checksum() -> None:
    request = icmp.build_echo_request(0x1234, 7, b"token123")
    assert icmp.checksum(request) == 0  # a correct checksum sums to zero
    reply = bytes([0]) + request[1:]
    assert icmp.parse_echo_reply(reply, with_ip_header=False) == icmp.EchoReply(
        0x1234, 7, b"token123"
    )
    ip_header = bytes([0x45]) + b"\0" * 19
    assert icmp.parse_echo_reply(ip_header + reply, with_ip_header=True) is not None
    assert icmp.parse_echo_reply(request, with_ip_header=False) is None  # a request, not a reply
    assert icmp.parse_echo_reply(b"\0\0", with_ip_header=False) is None


def test_ping_statistics_jitter_and_loss() -> None:
    run = icmp.PingRun("icmp-raw", (0.010, None, 0.030, 0.020, None))
    r = ping_result("gw", "10.0.0.1", run)
    assert (r.sent, r.received, r.loss_ratio) == (5, 3, 0.4)
    assert (r.rtt_min_seconds, r.rtt_max_seconds) == (0.010, 0.030)
    assert r.rtt_avg_seconds == pytest.approx(0.020)
    assert r.jitter_seconds == pytest.approx((0.020 + 0.010) / 2)
    dead = ping_result("gw", "10.0.0.1", icmp.PingRun("icmp-raw", (None, None)))
    assert (dead.loss_ratio, dead.received, dead.rtt_avg_seconds) == (1.0, 0, 0.0)


def test_dns_query_and_response_parsing() -> None:
    query = netcheck.build_dns_query(0xBEEF, "dichvucong.caobang.gov.vn")
    # A response: the query with QR set, one answer pointing back at the question name.
    header = struct.pack("!HHHHHH", 0xBEEF, 0x8180, 1, 2, 0, 0)
    answer = struct.pack("!HHHLH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton("10.1.2.3")
    cname = struct.pack("!HHHLH", 0xC00C, 5, 1, 60, 2) + b"\xc0\x0c"
    response = header + query[12:] + cname + answer
    assert netcheck.parse_dns_response(response) == netcheck.DnsAnswer(0xBEEF, 0, ("10.1.2.3",))
    nx = struct.pack("!HHHHHH", 1, 0x8183, 1, 0, 0, 0) + query[12:]
    assert netcheck.parse_dns_response(nx).rcode == 3
    with pytest.raises(ValueError, match="truncated"):
        netcheck.parse_dns_response(header + query[12:] + answer[:6])
    with pytest.raises(ValueError, match="not a DNS response"):
        netcheck.parse_dns_response(query)


def test_lan_analysis() -> None:
    conflicts = lan.find_conflicts(
        [("10.0.0.5", "AA:00:00:00:00:01"), ("10.0.0.5", "aa:00:00:00:00:02"), ("10.0.0.6", "b")]
    )
    assert conflicts == (IpConflict("10.0.0.5", ("aa:00:00:00:00:01", "aa:00:00:00:00:02"), "arp"),)
    offers = [
        lan.DhcpOffer("10.0.0.1", "aa:00:00:00:00:01", "10.0.0.50"),
        lan.DhcpOffer("10.0.0.99", "aa:00:00:00:00:99", "10.0.0.150"),
        lan.DhcpOffer("10.0.0.99", "aa:00:00:00:00:99", "10.0.0.150"),
    ]
    assert lan.classify_offers(offers, frozenset({"10.0.0.1"})) == (
        DhcpServer("10.0.0.1", "aa:00:00:00:00:01", "10.0.0.50", True),
        DhcpServer("10.0.0.99", "aa:00:00:00:00:99", "10.0.0.150", False),
    )
    hops = [TracerouteHop(2, "10.0.12.2", 0.002), TracerouteHop(1, "10.0.1.1", 0.001)]
    hops += [TracerouteHop(ttl) for ttl in range(3, 6)]
    t = lan.summarize_traceroute("10.0.23.3", hops)
    assert (t.last_responding_ttl, t.last_responding_address, t.reached) == (2, "10.0.12.2", False)
    assert [h.ttl for h in t.hops] == [1, 2, 3, 4, 5]
    reached = lan.summarize_traceroute("10.0.1.1", [*hops, TracerouteHop(9, "10.0.1.1")])
    assert reached.reached and [h.ttl for h in reached.hops] == [1]


def test_cap_net_raw_from_status() -> None:
    assert lan.has_cap_net_raw("Name:\tx\nCapEff:\t0000000000002000\n")
    assert not lan.has_cap_net_raw("CapEff:\t0000000000000000\n")
    assert not lan.has_cap_net_raw("")
    findings = lan.run_lan_checks(
        lan.ScapyLan(), lan.LanPlan(arp_networks=("10.0.0.0/24",)), lambda: 10.0, lambda: ""
    )
    assert findings.skipped == ("traceroute, ARP sweep and DHCP check: need CAP_NET_RAW",)


def test_split_host_port() -> None:
    assert split_host_port("portal.gov.vn:8443", 443) == ("portal.gov.vn", 8443)
    assert split_host_port("portal.gov.vn", 443) == ("portal.gov.vn", 443)
    assert split_host_port("[::1]:50051", 0) == ("::1", 50051)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_probe_budget_gateway_and_throughput_schedule() -> None:
    clock = _Clock()
    calls: list[tuple[str, int]] = []

    def pinger(address: str, count: int, interval: float, timeout: float) -> icmp.PingRun:
        calls.append((address, count))
        clock.now += 9.5  # the first target leaves less than ping_timeout of the 10 s budget
        return icmp.PingRun("icmp-dgram", (0.001,) * count)

    throughput_calls: list[int] = []

    def throughput(nbytes: int) -> tuple[int, float]:
        throughput_calls.append(nbytes)
        return nbytes, 2.0

    options = LinkOptions(targets=["127.0.0.1", "127.0.0.2"], budget=10.0, count=5)
    probe = LinkProbe(
        options,
        system=lambda: "Linux",
        read_file=lambda _path: (FIXTURES / "proc_net_route.txt").read_text(),
        pinger=pinger,
        clock=clock,
    )
    probe.connect(CollectorLink("127.0.0.3:50051", throughput))
    link = probe.collect()
    assert link.gateway == "192.168.1.254"
    assert [p.target for p in link.pings] == ["127.0.0.1"]
    assert "ping 127.0.0.2: budget exhausted" in link.skipped
    assert "ping 192.168.1.254: budget exhausted" in link.skipped
    assert link.throughput is not None
    assert link.throughput.bits_per_second == pytest.approx(1024 * 1024 * 8 / 2.0)
    clock.now += 60.0
    assert probe.collect().throughput is None  # not due again before `every`
    assert throughput_calls == [1024 * 1024]


def test_throughput_failure_is_a_result() -> None:
    def failing(nbytes: int) -> tuple[int, float]:
        raise ProbeFailed("collector said UNAVAILABLE")

    probe = LinkProbe(
        LinkOptions(ping_gateway=False, ping_collector=False),
        system=lambda: "Linux",
        read_file=lambda _path: None,
    )
    probe.connect(CollectorLink("127.0.0.1:1", failing))
    result = probe.collect().throughput
    assert result is not None and "UNAVAILABLE" in result.error and result.bits_per_second == 0


def test_example_config_link_options() -> None:
    cfg = load_config(REPO / "configs" / "agent.example.yaml")
    assert cfg.probes.link.throughput.every == 6 * 3600.0
    assert cfg.probes.link.dhcp.enabled is False


# ---- real checks on loopback -------------------------------------------------------------


@pytest.fixture
def http_server() -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/" else 503)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_http_and_tcp_on_loopback(http_server: int) -> None:
    ok = netcheck.check_http("svc", f"http://127.0.0.1:{http_server}/", 2.0)
    assert (ok.ok, ok.status, ok.tls_cert_expires_in_seconds) == (True, 200, None)
    assert ok.ttfb_seconds > 0
    bad = netcheck.check_http("svc", f"http://127.0.0.1:{http_server}/down", 2.0)
    assert (bad.ok, bad.status, bad.error) == (False, 503, "HTTP 503")
    assert netcheck.check_tcp("127.0.0.1", http_server, 2.0).ok
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    refused = netcheck.check_tcp("127.0.0.1", port, 2.0)
    assert not refused.ok and refused.error


def test_dns_timeout_is_a_result() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        result = netcheck.check_dns("127.0.0.1", "example.invalid", 0.2, port=port)
    assert (result.ok, result.error) == (False, "timeout")


def test_link_section_on_the_wire_keeps_traceroute_and_unknown_expiry() -> None:
    link = Link(
        http_checks=(
            HttpCheck("plain", "http://portal/", True, 200, 0.1),
            HttpCheck("tls", "https://portal/", True, 200, 0.1, 0.0),
        ),
        traceroutes=(
            lan.summarize_traceroute(
                "10.9.0.1", [TracerouteHop(1, "192.168.1.1", 0.001), TracerouteHop(2)]
            ),
        ),
    )
    report = decode_report(to_pb(Report(1_700_000_000_000, "b", "0.1.0", link=link, seq=1)), 1.8e9)
    section = report.sections["link"]
    # `agent show` prints the snapshot, so the last traceroute of a failing target is there.
    assert section["traceroutes"][0]["last_responding_address"] == "192.168.1.1"
    plain_check, tls_check = section["http_checks"]
    assert "tls_cert_expires_in_seconds" not in plain_check  # unknown, not "expires now"
    assert tls_check["tls_cert_expires_in_seconds"] == 0.0


def test_importing_the_probe_does_not_load_scapy() -> None:
    # scapy costs tens of MB; it is imported only when a raw-packet check runs.
    code = "import sys, agent.probes; print('scapy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
