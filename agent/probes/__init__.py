"""Explicit registry of probes; adding one: a line here (docs/architecture.md, "Adding a probe")."""

from __future__ import annotations

from typing import Any

from agent.probes.antivirus import AntivirusProbe
from agent.probes.base import Probe, ProbeOptions
from agent.probes.disk_health import DiskHealthProbe
from agent.probes.hardware import HardwareProbe
from agent.probes.link import LinkProbe
from agent.probes.meeting_room import MeetingRoomProbe
from agent.probes.power import PowerProbe
from agent.probes.security import SecurityProbe
from agent.probes.software import SoftwareProbe

__all__ = ["PROBES", "Probe", "ProbeOptions"]

PROBES: dict[str, type[Probe[Any]]] = {
    HardwareProbe.name: HardwareProbe,
    LinkProbe.name: LinkProbe,
    AntivirusProbe.name: AntivirusProbe,
    SecurityProbe.name: SecurityProbe,
    MeetingRoomProbe.name: MeetingRoomProbe,
    DiskHealthProbe.name: DiskHealthProbe,
    PowerProbe.name: PowerProbe,
    SoftwareProbe.name: SoftwareProbe,
}
