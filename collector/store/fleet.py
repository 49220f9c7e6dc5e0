"""The fleet reads behind /metrics: every agent's row and version, then only the changed data."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, Select, select

from collector.store.base import Part
from collector.store.schema import agents, snapshots

__all__ = ["FleetAgent", "FleetTables"]

_ACTIVE_AGENTS = (
    # In FleetAgent's order.
    select(
        agents.c.agent_id,
        agents.c.district,
        agents.c.commune,
        agents.c.unit,
        agents.c.hostname,
        agents.c.role,
        agents.c.os_name,
        agents.c.os_version,
        agents.c.agent_version,
        agents.c.last_report_at,
        agents.c.snapshot_version,
        agents.c.clone_of,
        agents.c.clone_suspected_at,
        agents.c.last_seen_at,
    )
    # No ORDER BY: /metrics does not need one, and it costs a tenth of this read.
    .where(agents.c.revoked_at.is_(None))
)
_SECTIONS = select(snapshots.c.agent_id, snapshots.c.section, snapshots.c.data)
# Placeholder of the drivers' parameter styles (sqlite3: qmark; psycopg: pyformat).
_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}

# Agents per `IN (...)` query: well under SQLite's smallest bound-parameter limit (999).
_CHUNK = 500


class FleetAgent(NamedTuple):
    """The agents-row fields /metrics shows; everything before `last_seen_at` is what an
    agent's kept lines depend on (`last_seen_at` only through whether it is up)."""

    agent_id: str
    district: str
    commune: str
    unit: str
    hostname: str
    role: str
    os_name: str
    os_version: str
    agent_version: str
    last_report_at: float | None
    # agents.snapshot_version: raised in the transaction that stores a new report, so a
    # snapshot read after this row is at least as new as this version says.
    version: int
    clone_of: str | None  # schema 8: a possible clone of this active agent
    clone_suspected_at: float | None  # schema 7: its reports came from two machines
    last_seen_at: float | None


class FleetTables(Part):
    """A part of the store: two cheap reads so a scrape decodes only what changed."""

    def fleet_versions(self) -> list[FleetAgent]:
        """Every active agent with its snapshot version, in no particular order."""
        with self._read() as conn:
            rows = _fetch(conn, self._sql(_ACTIVE_AGENTS))
        return list(map(FleetAgent._make, rows))

    def fleet_sections(self, agent_ids: Collection[str], scan: bool) -> dict[str, dict[str, Any]]:
        """The decoded snapshot of each given agent that has one. `scan`: read the whole
        table once instead of looking the agents up (cheaper for most of the fleet)."""
        found: dict[str, dict[str, Any]] = {}
        wanted = set(agent_ids) if scan else None
        with self._read() as conn:
            for rows in self._section_rows(conn, agent_ids, scan):
                for agent_id, section, data in rows:
                    entry = found.get(agent_id)
                    if entry is None:
                        if wanted is not None and agent_id not in wanted:
                            continue
                        entry = found[agent_id] = {}
                    try:
                        entry[section] = orjson.loads(data)
                    except orjson.JSONDecodeError:  # NaN and Infinity: json.dumps writes them
                        entry[section] = json.loads(data)
        return found

    def _section_rows(
        self, conn: Connection, agent_ids: Collection[str], scan: bool
    ) -> list[Sequence[Any]]:
        select_sections = self._sql(_SECTIONS)
        if scan:
            return [_fetch(conn, select_sections)]
        ids = list(agent_ids)
        select_some = select_sections + " WHERE snapshots.agent_id IN "
        mark = _MARKS[self._engine.dialect.paramstyle]
        return [
            _fetch(conn, f"{select_some}({', '.join([mark] * len(chunk))})", chunk)
            for chunk in (ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK))
        ]

    def _sql(self, statement: Select[Any]) -> str:
        return str(statement.compile(self._engine))


def _fetch(conn: Connection, sql: str, params: Sequence[str] = ()) -> Sequence[Any]:
    """Plain DBAPI tuples: SQLAlchemy's Row layer was a third of these reads at 10,000
    agents, and they run at every scrape."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()
