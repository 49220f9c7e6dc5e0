"""Metrics of the power section: mains or battery, the battery's charge, each UPS."""

from __future__ import annotations

from typing import Any

from collector.metrics.base import NUMBERS, Add, agent_spec

__all__ = ["SECTION", "SPECS", "render"]

SECTION = "power"

UPS_STATES = ("online", "on_battery", "low_battery", "unreachable", "unknown")

SPECS = (
    agent_spec(
        "canhgac_power_on_battery",
        "gauge",
        "1 while the machine runs on its battery or a UPS on battery, 0 on mains; absent unknown",
    ),
    agent_spec("canhgac_battery_ratio", "gauge", "Battery charge (0-1), only on machines with one"),
    agent_spec(
        "canhgac_ups_status",
        "gauge",
        "1 for the UPS's state (online, on_battery, low_battery, unreachable, unknown), else 0",
        "ups",
        "state",
    ),
    agent_spec("canhgac_ups_charge_ratio", "gauge", "UPS battery charge (0-1), when known", "ups"),
    agent_spec(
        "canhgac_ups_runtime_seconds", "gauge", "UPS runtime left on battery, when known", "ups"
    ),
)

_SUPPLY = {"battery": 1.0, "mains": 0.0}


def render(add: Add, section: dict[str, Any]) -> None:
    add("canhgac_power_on_battery", _SUPPLY.get(section.get("supply", "")))
    battery = section.get("battery")
    if type(battery) is dict:
        percent: Any = battery.get("percent")
        if type(percent) in NUMBERS:
            add("canhgac_battery_ratio", percent / 100.0)
    for u in section.get("ups", []):
        name, status = u.get("name", ""), u.get("status")
        for state in UPS_STATES:
            add("canhgac_ups_status", 1.0 if state == status else 0.0, name, state)
        charge, runtime = u.get("charge_percent", -1), u.get("runtime_seconds", -1)
        if type(charge) in NUMBERS and charge >= 0:
            add("canhgac_ups_charge_ratio", charge / 100.0, name)
        if type(runtime) in NUMBERS and runtime >= 0:
            add("canhgac_ups_runtime_seconds", runtime, name)
