"""Metrics of the software section: the count of installed programs (the list is in the store)."""

from __future__ import annotations

from typing import Any

from collector.metrics.base import Add, agent_spec

__all__ = ["SECTION", "SPECS", "render"]

SECTION = "software"

SPECS = (
    agent_spec(
        "canhgac_software_programs",
        "gauge",
        "Installed programs (Uninstall registry entries shown to users, or dpkg/rpm packages)",
    ),
)


def render(add: Add, section: dict[str, Any]) -> None:
    add("canhgac_software_programs", section.get("count", 0))
