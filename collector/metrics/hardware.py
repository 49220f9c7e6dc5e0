"""Metrics of the hardware section: a handful of series per machine, rolled up where possible."""

from __future__ import annotations

from typing import Any

from collector.metrics.base import Add, agent_spec, num

__all__ = ["SECTION", "SPECS", "render"]

SECTION = "hardware"

SPECS = (
    agent_spec("canhgac_cpu_usage_ratio", "gauge", "CPU busy fraction over the last cycle (0-1)"),
    agent_spec("canhgac_cpu_logical_cores", "gauge", "Logical CPU cores"),
    agent_spec("canhgac_load1", "gauge", "1-minute load average"),
    agent_spec("canhgac_memory_total_bytes", "gauge", "Physical memory"),
    agent_spec("canhgac_memory_available_bytes", "gauge", "Memory available without swapping"),
    agent_spec("canhgac_swap_total_bytes", "gauge", "Swap / page file size"),
    agent_spec("canhgac_swap_used_bytes", "gauge", "Swap / page file in use"),
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
    agent_spec("canhgac_temperature_celsius", "gauge", "Hottest reading of a sensor", "sensor"),
    agent_spec("canhgac_battery_ratio", "gauge", "Battery charge (0-1), only on machines with one"),
    agent_spec("canhgac_interface_up", "gauge", "1 if the network interface is up", "interface"),
    agent_spec(
        "canhgac_interface_errors_total",
        "counter",
        "Receive/transmit errors of a network interface",
        "interface",
        "direction",
    ),
)


def render(add: Add, hw: dict[str, Any]) -> None:
    add("canhgac_cpu_usage_ratio", num(hw, "cpu", "usage_ratio"))
    add("canhgac_cpu_logical_cores", num(hw, "cpu", "logical_cores"))
    add("canhgac_load1", num(hw, "cpu", "load1"))
    add("canhgac_memory_total_bytes", num(hw, "memory", "total_bytes"))
    add("canhgac_memory_available_bytes", num(hw, "memory", "available_bytes"))
    add("canhgac_swap_total_bytes", num(hw, "memory", "swap_total_bytes"))
    add("canhgac_swap_used_bytes", num(hw, "memory", "swap_used_bytes"))
    add("canhgac_boot_time_seconds", num(hw, "host", "boot_time"))
    for d in hw.get("disks", []):
        add("canhgac_disk_size_bytes", num(d, "total_bytes"), d["mountpoint"], d["fstype"])
        add("canhgac_disk_free_bytes", num(d, "free_bytes"), d["mountpoint"], d["fstype"])
    hottest: dict[str, float] = {}
    for t in hw.get("temperatures", []):
        hottest[t["sensor"]] = max(hottest.get(t["sensor"], float("-inf")), t["celsius"])
    for sensor, celsius in sorted(hottest.items()):
        add("canhgac_temperature_celsius", celsius, sensor)
    battery = num(hw, "battery", "percent")
    add("canhgac_battery_ratio", None if battery is None else battery / 100.0)
    for i in hw.get("interfaces", []):
        add("canhgac_interface_up", 1.0 if i.get("up") else 0.0, i["name"])
        add("canhgac_interface_errors_total", num(i, "errors_in"), i["name"], "in")
        add("canhgac_interface_errors_total", num(i, "errors_out"), i["name"], "out")
