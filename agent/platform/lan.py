"""LAN fault finding with raw packets (Linux, CAP_NET_RAW): traceroute, ARP sweep, rogue DHCP.

scapy is imported lazily and only the layers used (scapy.all costs ~30 MB more), and only when
one of these checks actually runs.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.model import DhcpServer, IpConflict, Traceroute, TracerouteHop

__all__ = [
    "CAP_NET_RAW",
    "DHCP_CLIENT_MAC",
    "DhcpOffer",
    "Findings",
    "LanPlan",
    "RawLan",
    "ScapyLan",
    "classify_offers",
    "find_conflicts",
    "has_cap_net_raw",
    "run_lan_checks",
    "summarize_traceroute",
]

CAP_NET_RAW = 13
# Locally administered (bit 1 of the first octet) and fixed, so a DHCP server's logs show one
# recognisable client and no real machine's lease is ever touched. Only DISCOVER is sent.
DHCP_CLIENT_MAC = "02:ca:6e:9a:c0:01"
_MAX_ARP_HOSTS = 1024


@dataclass(frozen=True)
class DhcpOffer:
    server_id: str
    mac: str
    offered_address: str


class RawLan(Protocol):
    """The raw-packet boundary; ScapyLan is the real one."""

    def traceroute(self, address: str, max_hops: int, timeout: float) -> list[TracerouteHop]: ...

    def arp_sweep(self, network: str, interface: str, timeout: float) -> list[tuple[str, str]]: ...

    def dhcp_discover(self, interface: str, timeout: float) -> list[DhcpOffer]: ...


@dataclass(frozen=True)
class LanPlan:
    traceroute_targets: tuple[str, ...] = ()
    max_hops: int = 16
    timeout: float = 1.0
    arp_networks: tuple[str, ...] = ()
    arp_interface: str = ""
    dhcp_interface: str | None = None  # None: no DHCP check
    dhcp_allowed: frozenset[str] = frozenset()
    dhcp_timeout: float = 3.0


@dataclass(frozen=True)
class Findings:
    traceroutes: tuple[Traceroute, ...] = ()
    dhcp_servers: tuple[DhcpServer, ...] = ()
    ip_conflicts: tuple[IpConflict, ...] = ()
    skipped: tuple[str, ...] = field(default=())


def has_cap_net_raw(status_text: str) -> bool:
    """Whether the CapEff line of /proc/self/status includes CAP_NET_RAW."""
    for line in status_text.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_NET_RAW & 1)
    return False


def _read_status() -> str:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return f.read()
    except OSError:
        return ""


def run_lan_checks(
    raw: RawLan,
    plan: LanPlan,
    left: Callable[[], float],
    status_text: Callable[[], str] = _read_status,
) -> Findings:
    """Run what `plan` asks for while the budget (`left()` seconds) lasts."""
    if not has_cap_net_raw(status_text()):
        return Findings(skipped=("traceroute, ARP sweep and DHCP check: need CAP_NET_RAW",))
    skipped: list[str] = []
    traceroutes = []
    for target in plan.traceroute_targets:
        # The worst case of one traceroute is a timeout per hop; skip if that cannot fit.
        if left() < plan.timeout * 2:
            skipped.append(f"traceroute {target}: budget exhausted")
            continue
        hops = raw.traceroute(target, plan.max_hops, min(plan.timeout * 2, left()))
        traceroutes.append(summarize_traceroute(target, hops))
    pairs: list[tuple[str, str]] = []
    for network in plan.arp_networks:
        if left() < plan.timeout:
            skipped.append(f"arp {network}: budget exhausted")
            continue
        try:
            size = ipaddress.IPv4Network(network, strict=False).num_addresses
        except ValueError:
            skipped.append(f"arp {network}: not an IPv4 network")
            continue
        if size > _MAX_ARP_HOSTS:
            skipped.append(f"arp {network}: larger than {_MAX_ARP_HOSTS} addresses")
            continue
        pairs += raw.arp_sweep(network, plan.arp_interface, min(plan.timeout * 2, left()))
    servers: tuple[DhcpServer, ...] = ()
    if plan.dhcp_interface is not None:
        if left() < plan.dhcp_timeout:
            skipped.append("dhcp: budget exhausted")
        else:
            offers = raw.dhcp_discover(plan.dhcp_interface, plan.dhcp_timeout)
            servers = classify_offers(offers, plan.dhcp_allowed)
    return Findings(tuple(traceroutes), servers, find_conflicts(pairs), tuple(skipped))


# ---- pure analysis ------------------------------------------------------------------------


def summarize_traceroute(target: str, hops: Iterable[TracerouteHop]) -> Traceroute:
    """Ordered hops, whether the target answered, and the last hop that did (where it breaks)."""
    ordered = sorted(hops, key=lambda h: h.ttl)
    reached = False
    last: TracerouteHop | None = None
    trimmed = []
    for hop in ordered:
        trimmed.append(hop)
        if hop.address:
            last = hop
        if hop.address == target:
            reached = True
            break
    return Traceroute(
        target,
        tuple(trimmed),
        last.ttl if last else 0,
        last.address if last else "",
        reached,
    )


def find_conflicts(pairs: Iterable[tuple[str, str]]) -> tuple[IpConflict, ...]:
    """IPs that more than one MAC answered for in an ARP sweep."""
    seen: dict[str, set[str]] = {}
    for ip, mac in pairs:
        seen.setdefault(ip, set()).add(mac.lower())
    return tuple(
        IpConflict(ip, tuple(sorted(macs)), "arp")
        for ip, macs in sorted(seen.items(), key=lambda kv: ipaddress.IPv4Address(kv[0]))
        if len(macs) > 1
    )


def classify_offers(offers: Sequence[DhcpOffer], allowed: frozenset[str]) -> tuple[DhcpServer, ...]:
    """One entry per answering server; those not on the allow-list are the rogue ones."""
    unique = {(o.server_id, o.mac): o for o in offers}
    return tuple(
        DhcpServer(o.server_id, o.mac, o.offered_address, o.server_id in allowed)
        for o in sorted(unique.values(), key=lambda o: (o.server_id, o.mac))
    )


# ---- OS boundary: scapy ------------------------------------------------------------------


class ScapyLan:
    """Raw packets through scapy's Linux sockets."""

    def traceroute(self, address: str, max_hops: int, timeout: float) -> list[TracerouteHop]:
        from scapy.layers.inet import ICMP, IP  # noqa: PLC0415
        from scapy.sendrecv import sr  # noqa: PLC0415

        ident = os.getpid() & 0xFFFF
        probes = [
            IP(dst=address, ttl=ttl) / ICMP(id=ident, seq=ttl) for ttl in range(1, max_hops + 1)
        ]
        answered, _ = sr(probes, timeout=timeout, verbose=0)
        hops = {ttl: TracerouteHop(ttl) for ttl in range(1, max_hops + 1)}
        for sent, received in answered:
            hops[sent.ttl] = TracerouteHop(
                sent.ttl, str(received.src), float(received.time) - float(sent.sent_time or 0)
            )
        return list(hops.values())

    def arp_sweep(self, network: str, interface: str, timeout: float) -> list[tuple[str, str]]:
        from scapy.layers.l2 import ARP, Ether  # noqa: PLC0415
        from scapy.sendrecv import srp  # noqa: PLC0415

        # multi=True keeps every answer, so two machines answering for one IP both show.
        answered, _ = srp(
            Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=network),
            iface=interface or None,
            timeout=timeout,
            multi=True,
            verbose=0,
        )
        return [(str(r[ARP].psrc), str(r[ARP].hwsrc)) for _, r in answered]

    def dhcp_discover(self, interface: str, timeout: float) -> list[DhcpOffer]:
        from scapy.config import conf  # noqa: PLC0415
        from scapy.layers.dhcp import BOOTP, DHCP  # noqa: PLC0415
        from scapy.layers.inet import IP, UDP  # noqa: PLC0415
        from scapy.layers.l2 import Ether  # noqa: PLC0415
        from scapy.sendrecv import srp  # noqa: PLC0415

        conf.checkIPaddr = False  # offers come from the server's address, not the broadcast
        chaddr = bytes.fromhex(DHCP_CLIENT_MAC.replace(":", ""))
        discover = (
            Ether(src=DHCP_CLIENT_MAC, dst="ff:ff:ff:ff:ff:ff")
            / IP(src="0.0.0.0", dst="255.255.255.255")  # noqa: S104 (DHCP client source)
            / UDP(sport=68, dport=67)
            / BOOTP(chaddr=chaddr, xid=int.from_bytes(os.urandom(4), "big"), flags=0x8000)
            / DHCP(options=[("message-type", "discover"), "end"])
        )
        answered, _ = srp(discover, iface=interface or None, timeout=timeout, multi=True, verbose=0)
        return [_offer(r) for _, r in answered]


def _offer(packet: Any) -> DhcpOffer:
    from scapy.layers.dhcp import BOOTP, DHCP  # noqa: PLC0415
    from scapy.layers.inet import IP  # noqa: PLC0415
    from scapy.layers.l2 import Ether  # noqa: PLC0415

    server = str(packet[IP].src)
    for option in packet[DHCP].options:
        if isinstance(option, tuple) and option[0] == "server_id":
            server = str(option[1])
    return DhcpOffer(server, str(packet[Ether].src), str(packet[BOOTP].yiaddr))
