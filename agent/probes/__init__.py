"""Explicit registry of probes. Adding a probe: a line here and its options in agent.config."""

from __future__ import annotations

from agent.probes.antivirus import AntivirusProbe
from agent.probes.base import Probe, ProbeOptions
from agent.probes.hardware import HardwareProbe
from agent.probes.link import LinkProbe
from agent.probes.meeting_room import MeetingRoomProbe
from agent.probes.security import SecurityProbe

__all__ = ["PROBES", "Probe", "ProbeOptions"]

PROBES: dict[str, type[Probe]] = {
    HardwareProbe.name: HardwareProbe,
    LinkProbe.name: LinkProbe,
    AntivirusProbe.name: AntivirusProbe,
    SecurityProbe.name: SecurityProbe,
    MeetingRoomProbe.name: MeetingRoomProbe,
}
