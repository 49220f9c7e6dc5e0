"""Explicit registry of probes. Adding a probe: a line here and its options in agent.config."""

from __future__ import annotations

from agent.probes.base import Probe, ProbeOptions
from agent.probes.hardware import HardwareProbe
from agent.probes.link import LinkProbe

__all__ = ["PROBES", "Probe", "ProbeOptions"]

PROBES: dict[str, type[Probe]] = {
    HardwareProbe.name: HardwareProbe,
    LinkProbe.name: LinkProbe,
}
