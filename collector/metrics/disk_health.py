"""Metrics of the disk health section: each physical drive's health, wear and bad sectors."""

from __future__ import annotations

from typing import Any

from collector.metrics.base import Add, agent_spec

__all__ = ["SECTION", "SPECS", "render"]

SECTION = "disk_health"

HEALTH_STATES = ("ok", "warning", "failing", "unknown")

SPECS = (
    agent_spec(
        "canhgac_drive_health",
        "gauge",
        "1 for the drive's health state (ok, warning, failing, unknown), 0 for the others",
        "device",
        "media",
        "state",
    ),
    agent_spec(
        "canhgac_drive_wear_ratio",
        "gauge",
        "Share of the SSD's rated endurance used (0-1, 1 = worn out), when the drive says",
        "device",
    ),
    agent_spec(
        "canhgac_drive_reallocated_sectors",
        "gauge",
        "Sectors the drive has replaced by spares (SMART 5), when it says",
        "device",
    ),
    agent_spec(
        "canhgac_drive_pending_sectors",
        "gauge",
        "Unreadable sectors waiting to be replaced (SMART 197), when the drive says",
        "device",
    ),
)


def render(add: Add, section: dict[str, Any]) -> None:
    for d in section.get("drives", []):
        device, media, health = d.get("device", ""), d.get("media", "unknown"), d.get("health")
        for state in HEALTH_STATES:
            add("canhgac_drive_health", 1.0 if state == health else 0.0, device, media, state)
        wear = d.get("wear_percent", -1)
        if type(wear) is int and wear >= 0:
            add("canhgac_drive_wear_ratio", wear / 100.0, device)
        for field, name in (
            ("reallocated_sectors", "canhgac_drive_reallocated_sectors"),
            ("pending_sectors", "canhgac_drive_pending_sectors"),
        ):
            value = d.get(field, -1)
            if type(value) is int and value >= 0:
                add(name, value, device)
