"""Link health probe: ICMP, TCP, DNS and HTTP(S) checks, throughput to the collector, LAN faults."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import platform
import socket
import struct
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

from agent.errors import ProbeFailed
from agent.model import (
    DnsCheck,
    HttpCheck,
    IpConflict,
    Link,
    PingResult,
    TcpCheck,
    ThroughputResult,
)
from agent.platform import icmp, lan, netcheck, windows
from agent.platform.linux import read_text
from agent.platform.netcheck import split_host_port
from agent.platform.ping import Pinger, PingPlan, ping_target
from agent.platform.psbatch import CADENCE_SLACK, Query
from agent.platform.throughput import ThroughputOptions, measure_throughput
from agent.probes.base import CollectorLink, Probe, ProbeOptions
from agent.settings import Duration, Section, option

__all__ = [
    "POWERSHELL_SCRIPT",
    "PROC_NET_ROUTE",
    "DhcpOptions",
    "HttpCheckOptions",
    "LinkOptions",
    "LinkProbe",
    "parse_proc_net_route",
    "parse_windows_link",
]

_log = logging.getLogger(__name__)

PROC_NET_ROUTE = "/proc/net/route"
_RTF_GATEWAY = 0x2

# The Windows query runs beside the cycle's other PowerShell queries in one process; `timeout`
# (3 s) is a network check's and too short for loading NetTCPIP on an old PC.
WINDOWS_QUERY_TIMEOUT = 15.0

# At most one read every `windows_every` (5 minutes): the default route and recent Tcpip
# address-conflict events (4198: conflict with another machine, 4199: conflict detected while
# the address was in use). Event Properties are numbers and addresses, not the localized text.
POWERSHELL_SCRIPT = "; ".join(
    [
        "$ErrorActionPreference = 'Stop'",
        "$routes = @(Get-NetRoute -DestinationPrefix '0.0.0.0/0' -ErrorAction SilentlyContinue"
        " | Sort-Object -Property RouteMetric | Select-Object -Property NextHop, InterfaceAlias,"
        " RouteMetric)",
        "$events = @(Get-WinEvent -FilterHashtable @{ LogName = 'System';"
        " ProviderName = 'Microsoft-Windows-Tcpip', 'Tcpip'; Id = 4198, 4199;"
        " StartTime = (Get-Date).AddDays(-1) } -MaxEvents 50 -ErrorAction SilentlyContinue"
        " | ForEach-Object { [ordered]@{ Id = $_.Id;"
        " TimeCreated = $_.TimeCreated.ToUniversalTime().ToString('o');"
        " Properties = @($_.Properties | ForEach-Object { $_.Value }) } })",
        "[ordered]@{ Routes = $routes; ConflictEvents = $events }"
        " | ConvertTo-Json -Compress -Depth 4",
    ]
)


class HttpCheckOptions(Section):
    name: str
    url: str = option(pattern=r"^https?://")
    # CA bundle to verify the service's certificate with (default: the system store).
    ca_file: Path | None = None
    # The status a healthy service answers (default: any below 400).
    expect_status: int | None = option(default=None, ge=100, le=599)
    # This check's timeout (default: the probe's `timeout`).
    timeout: Duration | None = option(default=None, gt=0)


class DhcpOptions(Section):
    # Sends one DHCPDISCOVER per cycle from a fixed locally administered MAC; off by default.
    enabled: bool = False
    interface: str = ""
    # Server identifiers (addresses) of the DHCP servers that are supposed to answer.
    allowed_servers: list[str] = option(default_factory=list)
    timeout: Duration = option(default=3.0, gt=0)


class LinkOptions(ProbeOptions):
    # Hosts to ping, e.g. the commune router, the district switch, the province gateway.
    targets: list[str] = option(default_factory=list)
    ping_gateway: bool = True
    ping_collector: bool = True
    count: int = option(default=10, ge=1, le=1000)
    ping_interval: Duration = option(default=0.2, gt=0)
    ping_timeout: Duration = option(default=1.0, gt=0)
    # "host:port" pairs whose TCP handshake is timed.
    tcp_targets: list[str] = option(default_factory=list)
    # Resolver addresses, each asked for every name in dns_names.
    resolvers: list[str] = option(default_factory=list)
    dns_names: list[str] = option(default_factory=list)
    http_checks: list[HttpCheckOptions] = option(default_factory=list)
    # Public services declared at the collector (its `services:`), pushed with the central
    # settings (docs/fleet.md); checked like http_checks, reported with `service: true`.
    services: list[HttpCheckOptions] = option(default_factory=list)
    # Timeout of one TCP, DNS or HTTP check.
    timeout: Duration = option(default=3.0, gt=0)
    # The whole probe stops starting new checks past this; what is left is reported as skipped.
    budget: Duration = option(default=30.0, gt=0)
    throughput: ThroughputOptions = option(default_factory=ThroughputOptions)
    traceroute: bool = True
    traceroute_max_hops: int = option(default=16, ge=1, le=64)
    # IPv4 networks ("192.168.1.0/24", at most /22) swept with ARP for one IP on two MACs.
    arp_networks: list[str] = option(default_factory=list)
    arp_interface: str = ""
    dhcp: DhcpOptions = option(default_factory=DhcpOptions)


class LinkProbe(Probe[LinkOptions]):
    """Measures the paths this machine depends on; every timeout is a result, not a failure."""

    name: ClassVar[str] = "link"

    def __init__(
        self,
        options: LinkOptions | None = None,
        *,
        system: Callable[[], str] = platform.system,
        read_file: Callable[[str], str | None] = read_text,
        powershell: windows.PowerShell | None = None,
        pinger: Pinger | None = None,
        raw_lan: lan.RawLan | None = None,
        clock: Callable[[], float] = time.monotonic,
        windows_every: float = 300.0,
    ) -> None:
        super().__init__(options)
        self._system = system
        self._read_file = read_file
        self._powershell = powershell or windows.shared_batch()
        # Windows: the gateway and conflict events of the last read (clock, gateway,
        # conflicts, error), carried between reads; a PowerShell run every cycle (15 s) would
        # cost more CPU than everything else the agent does (docs/probes.md, cost).
        self._windows_every = windows_every
        self._windows: tuple[float, str, tuple[IpConflict, ...], str] | None = None
        self._windows_planned: bool | None = None
        self._pinger = pinger
        self._lan = raw_lan
        self._clock = clock
        self._collector: CollectorLink | None = None
        self._throughput_due = float("-inf")

    def connect(self, collector: CollectorLink) -> None:
        self._collector = collector

    def _query(self) -> Query:
        return Query(self.name, POWERSHELL_SCRIPT, WINDOWS_QUERY_TIMEOUT)

    def _windows_due(self) -> bool:
        last = self._windows
        return last is None or self._clock() - last[0] >= self._windows_every - CADENCE_SLACK

    def prepare(self) -> None:
        if self._system() == "Windows":
            self._windows_planned = self._windows_due()
            if self._windows_planned:
                self._powershell.declare(self._query())

    def _read_windows(self) -> tuple[str, tuple[IpConflict, ...], str]:
        due = self._windows_due() if self._windows_planned is None else self._windows_planned
        self._windows_planned = None
        if due or self._windows is None:
            try:
                gateway, conflicts = parse_windows_link(self._powershell.result(self._query()))
                self._windows = (self._clock(), gateway, tuple(conflicts), "")
            except ProbeFailed as e:
                # Asked again at the next read, not every cycle: a broken PowerShell stays so.
                self._windows = (self._clock(), "", (), str(e))
        return self._windows[1:]

    def collect(self) -> Link:
        o = self._options
        skipped: list[str] = []
        system = self._system()
        gateway = ""
        conflicts: tuple[IpConflict, ...] = ()
        if system == "Windows":
            gateway, conflicts, error = self._read_windows()
            if error:
                skipped.append(f"gateway and conflict events: {error}")
        else:
            gateway = parse_proc_net_route(self._read_file(PROC_NET_ROUTE) or "")
        # The budget starts here: on Windows the read above may wait for the cycle's whole
        # PowerShell batch, which is not this probe's time to spend.
        deadline = self._clock() + o.budget

        def left() -> float:
            return deadline - self._clock()

        pinger = self._pinger or (icmp.ping_windows if system == "Windows" else icmp.ping_linux)
        targets = list(o.targets)
        if o.ping_gateway and gateway:
            targets.append(gateway)
        if o.ping_collector and self._collector is not None:
            targets.append(split_host_port(self._collector.address, 0)[0])
        pings = []
        for target in dict.fromkeys(targets):
            if left() <= o.ping_timeout:
                skipped.append(f"ping {target}: budget exhausted")
                continue
            pings.append(
                ping_target(
                    target,
                    pinger,
                    PingPlan(o.count, o.ping_interval, o.ping_timeout),
                    left(),
                    sequential=system == "Windows",
                )
            )
        tcp, dns, http = self._service_checks(left, skipped)
        throughput = self._throughput(skipped)
        lan_result = lan.Findings()
        if system != "Windows":
            lan_result = self._lan_checks(pings, left, skipped)
        return Link(
            gateway=gateway,
            pings=tuple(pings),
            tcp_checks=tuple(tcp),
            dns_checks=tuple(dns),
            http_checks=tuple(http),
            throughput=throughput,
            traceroutes=lan_result.traceroutes,
            dhcp_servers=lan_result.dhcp_servers,
            ip_conflicts=conflicts + lan_result.ip_conflicts,
            skipped=tuple(skipped) + lan_result.skipped,
        )

    def _service_checks(
        self, left: Callable[[], float], skipped: list[str]
    ) -> tuple[list[TcpCheck], list[DnsCheck], list[HttpCheck]]:
        o = self._options
        tcp: list[TcpCheck] = []
        for target in o.tcp_targets:
            if left() <= 0:
                skipped.append(f"tcp {target}: budget exhausted")
                continue
            host, port = split_host_port(target, 443)
            tcp.append(netcheck.check_tcp(host, port, min(o.timeout, left())))
        dns: list[DnsCheck] = []
        for resolver in o.resolvers:
            for name in o.dns_names:
                if left() <= 0:
                    skipped.append(f"dns {resolver} {name}: budget exhausted")
                    continue
                dns.append(netcheck.check_dns(resolver, name, min(o.timeout, left())))
        http: list[HttpCheck] = []
        checks = [(c, False) for c in o.http_checks] + [(c, True) for c in o.services]
        for check, service in checks:
            if left() <= 0:
                skipped.append(f"http {check.name}: budget exhausted")
                continue
            timeout = min(check.timeout or o.timeout, left())
            result = netcheck.check_http(
                check.name, check.url, timeout, check.ca_file, check.expect_status
            )
            http.append(dataclasses.replace(result, service=True) if service else result)
        return tcp, dns, http

    def _throughput(self, skipped: list[str]) -> ThroughputResult | None:
        o = self._options.throughput
        now = self._clock()
        if not o.enabled or now < self._throughput_due:
            return None
        if self._collector is None:
            skipped.append("throughput: no collector connection in this run")
            return None
        self._throughput_due = now + o.every
        return measure_throughput(self._collector, o.bytes)

    def _lan_checks(
        self, pings: Sequence[PingResult], left: Callable[[], float], skipped: list[str]
    ) -> lan.Findings:
        o = self._options
        failing = [p.address for p in pings if p.address and p.sent and not p.received]
        wanted = (o.traceroute and failing) or o.arp_networks or o.dhcp.enabled
        if not wanted:
            return lan.Findings()
        raw = self._lan or lan.ScapyLan()
        return lan.run_lan_checks(
            raw,
            lan.LanPlan(
                traceroute_targets=tuple(failing) if o.traceroute else (),
                max_hops=o.traceroute_max_hops,
                timeout=o.ping_timeout,
                arp_networks=tuple(o.arp_networks),
                arp_interface=o.arp_interface,
                dhcp_interface=o.dhcp.interface if o.dhcp.enabled else None,
                dhcp_allowed=frozenset(o.dhcp.allowed_servers),
                dhcp_timeout=o.dhcp.timeout,
            ),
            left,
        )


# ---- pure parsers ---------------------------------------------------------------------


def parse_proc_net_route(text: str) -> str:
    """The IPv4 default gateway in /proc/net/route text (lowest metric), "" when none."""
    best: tuple[int, str] | None = None
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 7 or fields[1] != "00000000":
            continue
        try:
            flags, metric = int(fields[3], 16), int(fields[6])
            # Little-endian hex as the kernel prints it on x86 and ARM alike.
            gateway = socket.inet_ntoa(struct.pack("<L", int(fields[2], 16)))
        except ValueError:
            continue
        if flags & _RTF_GATEWAY and (best is None or metric < best[0]):
            best = (metric, gateway)
    return best[1] if best else ""


def parse_windows_link(document: str) -> tuple[str, list[IpConflict]]:
    """Default gateway and IP conflicts from the POWERSHELL_SCRIPT document."""
    document = document.lstrip("\ufeff")
    try:
        parsed: object = json.loads(document)
    except json.JSONDecodeError as e:
        raise ProbeFailed(f"PowerShell link document is not valid JSON: {e.msg}") from e
    if not isinstance(parsed, dict):
        raise ProbeFailed("PowerShell link document is not a JSON object")
    gateway = ""
    for route in _as_list(parsed.get("Routes")):
        hop = str(route.get("NextHop") or "") if isinstance(route, dict) else ""
        if hop and hop != "0.0.0.0":  # noqa: S104 (on-link route, no gateway)
            gateway = hop
            break
    macs: dict[str, set[str]] = {}
    for event in _as_list(parsed.get("ConflictEvents")):
        if not isinstance(event, dict) or event.get("Id") not in (4198, 4199):
            continue
        address, mac = _conflict_from_properties(_as_list(event.get("Properties")))
        if address and mac:
            macs.setdefault(address, set()).add(mac)
    conflicts = [
        IpConflict(address, tuple(sorted(found)), "windows-event")
        for address, found in sorted(macs.items())
    ]
    return gateway, conflicts


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _conflict_from_properties(properties: Sequence[object]) -> tuple[str, str]:
    # The property order differs between Windows releases; pick values by their shape.
    address = mac = ""
    for value in properties:
        if isinstance(value, str) and not address:
            try:
                address = str(ipaddress.IPv4Address(value.strip()))
                continue
            except ValueError:
                pass
        if not mac:
            mac = _mac_from(value)
    return address, mac


def _mac_from(value: object) -> str:
    if isinstance(value, list) and len(value) == 6 and all(isinstance(b, int) for b in value):
        return ":".join(f"{b:02x}" for b in value)
    if isinstance(value, str):
        text = value.strip().replace("-", ":").lower()
        parts = text.split(":")
        if len(parts) == 6 and all(len(p) == 2 for p in parts):
            try:
                bytes.fromhex("".join(parts))
            except ValueError:
                return ""
            return text
    return ""
