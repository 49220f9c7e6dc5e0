"""Metrics of the hardware section: a handful of series per machine, rolled up where possible."""

from __future__ import annotations

from typing import Any

from collector.metrics.base import NUMBERS, Add, agent_spec

__all__ = ["SECTION", "SPECS", "render"]

SECTION = "hardware"

# Per-machine facts only: inventory (cores, interface lists) stays in the snapshot, and what has
# one value per sensor or interface is rolled up to one series per machine.
SPECS = (
    agent_spec("canhgac_cpu_usage_ratio", "gauge", "CPU busy fraction over the last cycle (0-1)"),
    agent_spec("canhgac_memory_total_bytes", "gauge", "Physical memory"),
    agent_spec("canhgac_memory_available_bytes", "gauge", "Memory available without swapping"),
    agent_spec(
        "canhgac_swap_used_ratio",
        "gauge",
        "Share of swap / page file in use (0-1), when there is one",
    ),
    agent_spec(
        "canhgac_disk_size_bytes", "gauge", "Size of a mounted filesystem", "mountpoint", "fstype"
    ),
    agent_spec(
        "canhgac_disk_free_bytes",
        "gauge",
        "Free space of a mounted filesystem",
        "mountpoint",
        "fstype",
    ),
    agent_spec("canhgac_boot_time_seconds", "gauge", "Unix time the machine booted"),
    agent_spec("canhgac_temperature_celsius", "gauge", "Hottest reading of any sensor"),
    agent_spec(
        "canhgac_interface_errors_total",
        "counter",
        "Receive and transmit errors of all network interfaces together",
    ),
)


def render(add: Add, hw: dict[str, Any]) -> None:
    # Plain .get and type checks, no helpers, where add skips what is not a number: this runs
    # for every changed agent at every scrape.
    add("canhgac_cpu_usage_ratio", (hw.get("cpu") or {}).get("usage_ratio"))
    memory = hw.get("memory") or {}
    add("canhgac_memory_total_bytes", memory.get("total_bytes"))
    add("canhgac_memory_available_bytes", memory.get("available_bytes"))
    swap_total = memory.get("swap_total_bytes")
    swap_used = memory.get("swap_used_bytes")
    if swap_total and type(swap_total) in NUMBERS and type(swap_used) in NUMBERS:
        add("canhgac_swap_used_ratio", swap_used / swap_total)
    add("canhgac_boot_time_seconds", (hw.get("host") or {}).get("boot_time"))
    for d in hw.get("disks", []):
        add("canhgac_disk_size_bytes", d.get("total_bytes"), d["mountpoint"], d["fstype"])
        add("canhgac_disk_free_bytes", d.get("free_bytes"), d["mountpoint"], d["fstype"])
    temperatures = [t["celsius"] for t in hw.get("temperatures", [])]
    add("canhgac_temperature_celsius", max(temperatures) if temperatures else None)
    interfaces = hw.get("interfaces")
    if interfaces:
        errors = 0.0
        for i in interfaces:
            errors_in, errors_out = i.get("errors_in"), i.get("errors_out")
            if type(errors_in) in NUMBERS:
                errors += errors_in
            if type(errors_out) in NUMBERS:
                errors += errors_out
        add("canhgac_interface_errors_total", errors)
