"""Metrics of the meeting_room section: readiness colour, per-check pass/fail, reasons count."""

from __future__ import annotations

from typing import Any

from collector.metrics.base import Add, agent_spec
from collector.model import MEETING_SECTION

__all__ = ["CHECKS", "SECTION", "SPECS", "render"]

SECTION = MEETING_SECTION

_STATE = {"red": 0.0, "amber": 1.0, "green": 2.0}

# Reason code -> the check it fails; every check is emitted so a pass shows as 1, not absent.
CHECKS: dict[str, tuple[str, ...]] = {
    "devices": ("devices_unreadable", "device_missing"),
    "path": ("path_down", "path_unmeasured", "rtt_high", "jitter_high", "loss_high"),
    "throughput": ("throughput_low", "throughput_failed", "throughput_unmeasured"),
    "apps": ("app_missing",),
    "clock": ("clock_offset",),
    "headroom": ("cpu_busy", "memory_low", "disk_low"),
}

SPECS = (
    agent_spec(
        "canhgac_meeting_room_ready",
        "gauge",
        "Meeting-room readiness: 0 red, 1 amber, 2 green (count == 2 by district for 'n ready')",
    ),
    agent_spec(
        "canhgac_meeting_room_check_ok",
        "gauge",
        "1 if no amber or red reason of this check (devices, path, throughput, apps, clock, "
        "headroom), else 0",
        "check",
    ),
    agent_spec(
        "canhgac_meeting_room_reasons",
        "gauge",
        "Amber and red readiness reasons in the last check",
    ),
)


def render(add: Add, room: dict[str, Any]) -> None:
    readiness = room.get("readiness") or {}
    state = _STATE.get(readiness.get("state", ""))
    if state is None:
        return
    add("canhgac_meeting_room_ready", state)
    failing = {
        r.get("code", "")
        for r in readiness.get("reasons", [])
        if r.get("severity") in ("amber", "red")
    }
    for check, codes in CHECKS.items():
        add("canhgac_meeting_room_check_ok", 0.0 if failing & set(codes) else 1.0, check)
    add(
        "canhgac_meeting_room_reasons",
        float(sum(1 for r in readiness.get("reasons", []) if r.get("severity") != "info")),
    )
