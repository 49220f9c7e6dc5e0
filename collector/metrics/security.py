"""Metrics of the security section: firewall per profile, OS update age, risky listeners."""

from __future__ import annotations

from typing import Any

from collector.metrics.base import Add, agent_spec

__all__ = ["SECTION", "SPECS", "render"]

SECTION = "security"

_ON_OFF = {"on": 1.0, "off": 0.0}

SPECS = (
    agent_spec(
        "canhgac_firewall_enabled",
        "gauge",
        "1 if the firewall profile (Windows) or ruleset (Linux) filters inbound traffic, else 0",
        "profile",
    ),
    agent_spec(
        "canhgac_os_update_age_seconds",
        "gauge",
        "Seconds since the last successful OS update (not antivirus signatures), at scrape time",
        age=True,
    ),
    agent_spec(
        "canhgac_risky_listeners",
        "gauge",
        "Listening RDP, SMB, Telnet or VNC sockets on non-loopback addresses",
    ),
)


def render(add: Add, sec: dict[str, Any]) -> None:
    for profile in sec.get("firewall", []):
        add("canhgac_firewall_enabled", _ON_OFF.get(profile.get("state", "")), profile["name"])
    add("canhgac_os_update_age_seconds", sec.get("os_updated_at") or None)
    add("canhgac_risky_listeners", float(len(sec.get("risky_listeners", []))))
