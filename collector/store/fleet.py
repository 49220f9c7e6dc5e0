"""The fleet reads behind /metrics: stored versions of every agent, then only the changed data."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, Engine, Select, select

from collector.store.base import StoreBase
from collector.store.schema import agents, snapshots

__all__ = ["FleetAgent", "FleetTables", "Sections"]

_ACTIVE_AGENTS = (
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
    # No ORDER BY: /metrics does not need one, and it costs a tenth of this read.
    .where(agents.c.revoked_at.is_(None))
)
_SNAPSHOT_SEQS = select(snapshots.c.agent_id, snapshots.c.seq)
_SECTIONS = select(snapshots.c.agent_id, snapshots.c.section, snapshots.c.seq, snapshots.c.data)
# Placeholder of the drivers' parameter styles (sqlite3: qmark; psycopg: pyformat).
_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}

# Agents per `IN (...)` query: well under SQLite's smallest bound-parameter limit (999).
_CHUNK = 500


def _decode(data: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:  # NaN and Infinity, which json.dumps writes and orjson refuses
        return json.loads(data)


class FleetAgent(NamedTuple):
    """The agents-row fields /metrics shows, and the version of the agent's stored snapshot."""

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
    version: tuple[int, int]


def _version(seqs: Iterable[int]) -> tuple[int, int]:
    """(sections, sum of their seqs): it changes whenever the snapshot does, whichever
    collector sharing the store wrote it, because sections are never removed and a section
    is only ever replaced by one with a higher seq (Store's snapshot upsert)."""
    count = total = 0
    for seq in seqs:
        count += 1
        total += seq
    return count, total


class Sections(NamedTuple):
    """One agent's decoded snapshot and the version it was read at."""

    data: dict[str, Any]
    version: tuple[int, int]


class FleetTables(StoreBase):
    """Mixed into Store: two cheap reads so a scrape decodes only what changed."""

    _engine: Engine

    def fleet_versions(self) -> list[FleetAgent]:
        """Every active agent with its snapshot's version, in no particular order."""
        with self._read() as conn:
            rows = _fetch(conn, self._sql(_ACTIVE_AGENTS))
            # Two plain scans matched here: the outer join costs more than both.
            seqs = _fetch(conn, self._sql(_SNAPSHOT_SEQS))
        per_agent: dict[str, list[int]] = {r[0]: [] for r in rows}
        for agent_id, seq in seqs:
            found = per_agent.get(agent_id)
            if found is not None:
                found.append(seq)
        return [FleetAgent._make((*r, _version(per_agent[r[0]]))) for r in rows]

    def fleet_sections(self, agent_ids: Iterable[str]) -> dict[str, Sections]:
        """The decoded snapshot of each given agent that has one."""
        wanted = list(agent_ids)
        select_sections = self._sql(_SECTIONS) + " WHERE snapshots.agent_id IN "
        mark = _MARKS[self._engine.dialect.paramstyle]
        found: dict[str, tuple[dict[str, Any], list[int]]] = {}
        with self._read() as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                sql = f"{select_sections}({', '.join([mark] * len(chunk))})"
                for agent_id, section, seq, data in _fetch(conn, sql, chunk):
                    entry = found.get(agent_id)
                    if entry is None:
                        entry = found[agent_id] = ({}, [])
                    entry[0][section] = _decode(data)
                    entry[1].append(seq)
        return {a: Sections(data, _version(seqs)) for a, (data, seqs) in found.items()}

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
