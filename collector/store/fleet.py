"""The fleet reads behind /metrics: stored versions of every agent, then only the changed data."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select

from collector.store.base import StoreBase
from collector.store.schema import agents, snapshots

__all__ = ["FleetAgent", "FleetTables", "Sections"]

# Agents per `IN (...)` query: well under SQLite's smallest bound-parameter limit (999).
_CHUNK = 500


class FleetAgent(NamedTuple):
    """The agents-row fields /metrics shows, and the stored (section -> seq) of its snapshot.

    A snapshot section is only ever replaced by one with a higher seq, so equal `seqs` mean
    equal data, whichever collector sharing the store ingested it.
    """

    agent_id: str
    hostname: str
    os_name: str
    os_version: str
    agent_version: str
    district: str
    commune: str
    unit: str
    role: str
    last_report_at: float | None
    last_seen_at: float | None
    seqs: dict[str, int]


class Sections(NamedTuple):
    """One agent's decoded snapshot and the seq of each section read with it."""

    data: dict[str, Any]
    seqs: dict[str, int]


class FleetTables(StoreBase):
    """Mixed into Store: two cheap reads so a scrape decodes only what changed."""

    def fleet_versions(self) -> list[FleetAgent]:
        """Every active agent (by agent_id) with the seq of each stored snapshot section."""
        with self._read() as conn:
            rows = conn.execute(
                select(
                    agents.c.agent_id,
                    agents.c.hostname,
                    agents.c.os_name,
                    agents.c.os_version,
                    agents.c.agent_version,
                    agents.c.district,
                    agents.c.commune,
                    agents.c.unit,
                    agents.c.role,
                    agents.c.last_report_at,
                    agents.c.last_seen_at,
                )
                .where(agents.c.revoked_at.is_(None))
                .order_by(agents.c.agent_id)
            ).all()
            # Two plain scans joined here: the outer join costs more than both on SQLite.
            versions = conn.execute(
                select(snapshots.c.agent_id, snapshots.c.section, snapshots.c.seq)
            ).all()
        seqs: dict[str, dict[str, int]] = {r[0]: {} for r in rows}
        for agent_id, section, seq in versions:
            found = seqs.get(agent_id)
            if found is not None:
                found[section] = seq
        return [FleetAgent(*r, seqs[r[0]]) for r in rows]

    def fleet_sections(self, agent_ids: Iterable[str]) -> dict[str, Sections]:
        """The decoded snapshot of each given agent (absent when it has none)."""
        wanted = list(agent_ids)
        query = select(
            snapshots.c.agent_id, snapshots.c.section, snapshots.c.seq, snapshots.c.data
        ).where(snapshots.c.agent_id.in_(bindparam("ids", expanding=True)))
        out: dict[str, Sections] = {}
        with self._read() as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                for agent_id, section, seq, data in conn.execute(query, {"ids": chunk}):
                    entry = out.get(agent_id)
                    if entry is None:
                        entry = out[agent_id] = Sections({}, {})
                    entry.data[section] = json.loads(data)
                    entry.seqs[section] = seq
        return out
