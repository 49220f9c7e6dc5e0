"""Metrics of the link section: per target a few series, plus LAN fault counts per machine."""

from __future__ import annotations

from typing import Any

from collector.metrics.base import Add, agent_spec, num

__all__ = ["SECTION", "SPECS", "render"]

SECTION = "link"

SPECS = (
    agent_spec("canhgac_link_up", "gauge", "1 if the target answered any echo request", "target"),
    agent_spec(
        "canhgac_link_rtt_seconds", "gauge", "Mean ICMP round-trip time this cycle", "target"
    ),
    agent_spec(
        "canhgac_link_jitter_seconds",
        "gauge",
        "Mean absolute difference of consecutive round-trip times",
        "target",
    ),
    agent_spec(
        "canhgac_link_loss_ratio", "gauge", "Share of echo requests without reply (0-1)", "target"
    ),
    agent_spec(
        "canhgac_link_throughput_bytes_per_second",
        "gauge",
        "Last measured download rate from the collector",
    ),
    agent_spec(
        "canhgac_tcp_connect_seconds", "gauge", "TCP handshake time (successful only)", "target"
    ),
    agent_spec(
        "canhgac_dns_lookup_success",
        "gauge",
        "1 if the resolver answered every configured name",
        "resolver",
    ),
    agent_spec(
        "canhgac_dns_lookup_seconds",
        "gauge",
        "Slowest successful lookup of the resolver",
        "resolver",
    ),
    agent_spec(
        "canhgac_http_check_success",
        "gauge",
        "1 if the service answered below HTTP 400 (or with its expected status)",
        "check",
    ),
    agent_spec(
        "canhgac_public_service_up",
        "gauge",
        "1 if the public service declared in the collector's `services:` answered as expected "
        "from this machine; per commune: canhgac:public_service_reachable:ratio",
        "service",
    ),
    agent_spec(
        "canhgac_http_ttfb_seconds", "gauge", "Time to first byte incl. connect and TLS", "check"
    ),
    agent_spec(
        "canhgac_tls_cert_expiry_seconds",
        "gauge",
        "Seconds until the service's TLS certificate expires",
        "check",
    ),
    agent_spec(
        "canhgac_dhcp_rogue_servers", "gauge", "DHCP servers answering that are not allowed"
    ),
    agent_spec("canhgac_ip_conflicts", "gauge", "IPv4 addresses claimed by more than one MAC"),
)


def render(add: Add, link: dict[str, Any]) -> None:
    for p in link.get("pings", []):
        if not p.get("sent"):
            continue  # nothing was sent: an error, not a measurement
        target = p["target"]
        up = bool(p.get("received"))
        add("canhgac_link_up", 1.0 if up else 0.0, target)
        add("canhgac_link_loss_ratio", num(p, "loss_ratio"), target)
        if up:
            add("canhgac_link_rtt_seconds", num(p, "rtt_avg_seconds"), target)
            add("canhgac_link_jitter_seconds", num(p, "jitter_seconds"), target)
    throughput = link.get("throughput")
    if throughput and not throughput.get("error"):
        # Bytes, the Prometheus base unit (promtool rejects a bits metric); the wire keeps bits.
        bits = num(throughput, "bits_per_second")
        add("canhgac_link_throughput_bytes_per_second", None if bits is None else bits / 8)
    for t in link.get("tcp_checks", []):
        if t.get("ok"):
            add("canhgac_tcp_connect_seconds", num(t, "connect_seconds"), t["target"])
    resolvers: dict[str, list[dict[str, Any]]] = {}
    for d in link.get("dns_checks", []):
        resolvers.setdefault(d["resolver"], []).append(d)
    for resolver, checks in sorted(resolvers.items()):
        add(
            "canhgac_dns_lookup_success", 1.0 if all(c.get("ok") for c in checks) else 0.0, resolver
        )
        times = [c["seconds"] for c in checks if c.get("ok")]
        add("canhgac_dns_lookup_seconds", max(times) if times else None, resolver)
    for h in link.get("http_checks", []):
        answered = 1.0 if h.get("ok") else 0.0
        if h.get("service"):
            add("canhgac_public_service_up", answered, h["name"])
        else:
            add("canhgac_http_check_success", answered, h["name"])
        if h.get("status"):
            add("canhgac_http_ttfb_seconds", num(h, "ttfb_seconds"), h["name"])
        add("canhgac_tls_cert_expiry_seconds", num(h, "tls_cert_expires_in_seconds"), h["name"])
    add(
        "canhgac_dhcp_rogue_servers",
        float(sum(1 for s in link.get("dhcp_servers", []) if not s.get("allowed"))),
    )
    add("canhgac_ip_conflicts", float(len(link.get("ip_conflicts", []))))
