"""The kept software lists: each agent's last full inventory, read as value types (audit)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from collector.model import InstalledProgram, SoftwareInventory
from collector.store.base import Part
from collector.store.schema import software_inventories

__all__ = ["InventoryTables"]


def _inventory(row: Any) -> SoftwareInventory:
    return SoftwareInventory(
        agent_id=row.agent_id,
        collected_at=row.collected_at,
        hash=row.hash,
        source=row.source,
        programs=tuple(
            InstalledProgram(
                name=p.get("name", ""),
                version=p.get("version", ""),
                publisher=p.get("publisher", ""),
                installed_at=float(p.get("installed_at", 0.0)),
                origin=p.get("origin", ""),
            )
            for p in json.loads(row.programs)
        ),
    )


class InventoryTables(Part):
    """Written by the ingest (Store), in the report's transaction; read here."""

    def software(self, agent_id: str) -> SoftwareInventory | None:
        """The agent's last full software list, None when none has arrived yet."""
        with self._read() as conn:
            row = conn.execute(
                select(software_inventories).where(software_inventories.c.agent_id == agent_id)
            ).first()
        return None if row is None else _inventory(row)

    def all_software(self) -> Iterator[SoftwareInventory]:
        """Every agent's kept list, by agent id (one row at a time: lists are large)."""
        with self._read() as conn:
            for row in conn.execute(
                select(software_inventories).order_by(software_inventories.c.agent_id)
            ):
                yield _inventory(row)
