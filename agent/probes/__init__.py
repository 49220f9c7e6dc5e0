"""Explicit registry of probes: name -> factory. Adding a probe means adding a line here."""

from __future__ import annotations

from collections.abc import Callable

from agent.probes.base import Probe
from agent.probes.hardware import HardwareProbe

__all__ = ["PROBES", "Probe"]

PROBES: dict[str, Callable[[], Probe]] = {
    HardwareProbe.name: HardwareProbe,
}
