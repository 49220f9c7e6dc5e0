"""The ack path's statements (credential lookup, report insert, snapshot upsert, agent update),
compiled once for the store's database and run on the driver's own cursor."""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Dialect,
    Engine,
    Float,
    bindparam,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from collector.store.schema import agents, reports, snapshots, software_inventories

__all__ = ["AgentRow", "Connections", "HotPath"]

# A row of `agents` as the driver returns it, readable by column name like SQLAlchemy's Row.
AgentRow = collections.namedtuple("AgentRow", [c.name for c in agents.c])  # type: ignore[misc]

_REPORT_COLUMNS = tuple(c.name for c in reports.c)
_SNAPSHOT_COLUMNS = [c.name for c in snapshots.c]
_INVENTORY_COLUMNS = [c.name for c in software_inventories.c]
# Reports per INSERT: one statement per size is compiled and kept, and 50 rows of 7 values
# stay far below SQLite's limit on bound parameters.
_CHUNK = 50


class HotPath:
    """SQLAlchemy's per-execution work (parameter processing, result wrapping, statement
    cache lookup) costs several times what SQLite spends running these statements; the
    strings are compiled by SQLAlchemy once, so both databases still get their own SQL."""

    def __init__(self, dialect: Dialect) -> None:
        postgres = dialect.name == "postgresql"
        # Named parameters, given as dicts: the drivers' own styles (psycopg: %(name)s).
        self._dialect = dialect if postgres else sqlite.dialect(paramstyle="named")
        self._insert = postgresql.insert if postgres else sqlite.insert
        self.select_agent = self._sql(select(agents).where(agents.c.agent_id == bindparam("id")))
        snap = self._insert(snapshots)
        # Late data (a replayed backlog) never overwrites a newer snapshot.
        upsert = snap.on_conflict_do_update(
            index_elements=["agent_id", "section"],
            set_={
                "seq": snap.excluded.seq,
                "collected_at": snap.excluded.collected_at,
                "data": snap.excluded.data,
            },
            where=snapshots.c.seq < snap.excluded.seq,
        )
        self.upsert_snapshot = self._sql(upsert, _SNAPSHOT_COLUMNS)
        kept = self._insert(software_inventories)
        # Like a snapshot: only a list from a later report replaces the one kept.
        self.upsert_inventory = self._sql(
            kept.on_conflict_do_update(
                index_elements=["agent_id"],
                set_={c: kept.excluded[c] for c in _INVENTORY_COLUMNS if c != "agent_id"},
                where=software_inventories.c.seq < kept.excluded.seq,
            ),
            _INVENTORY_COLUMNS,
        )
        touch = update(agents).where(agents.c.agent_id == bindparam("id"))
        self.touch_agent = self._sql(touch.values(last_seen_at=bindparam("seen")))
        # Two-argument max: scalar max() on SQLite, greatest() on PostgreSQL.
        greatest = func.greatest if postgres else func.max
        self.advance_agent = self._sql(
            touch.values(
                last_seen_at=bindparam("seen"),
                snapshot_version=agents.c.snapshot_version + literal_column("1"),
                last_seq=greatest(agents.c.last_seq, bindparam("seq", type_=BigInteger)),
                last_report_at=greatest(
                    func.coalesce(agents.c.last_report_at, literal_column("0.0")),
                    bindparam("at", type_=Float),
                ),
            )
        )
        self.select_report_origin = self._sql(
            select(reports.c.boot_id, reports.c.collected_at).where(
                reports.c.agent_id == bindparam("id"), reports.c.seq == bindparam("seq")
            )
        )
        self.suspect_clone = self._sql(
            touch.values(
                clone_suspected_at=func.coalesce(
                    agents.c.clone_suspected_at, bindparam("now", type_=Float)
                ),
                seq_conflicts=agents.c.seq_conflicts + bindparam("conflicts", type_=BigInteger),
                # /metrics shows the mark: the agent's lines are drawn again.
                snapshot_version=agents.c.snapshot_version + literal_column("1"),
            )
        )
        self._inserts: dict[int, tuple[str, list[str]]] = {}

    def _sql(self, statement: Any, column_keys: list[str] | None = None) -> str:
        return str(statement.compile(dialect=self._dialect, column_keys=column_keys))

    def _insert_sql(self, rows: int) -> tuple[str, list[str]]:
        """The INSERT of `rows` reports and its parameter names, row by row, column by column."""
        found = self._inserts.get(rows)
        if found is None:
            names = [[f"{c}{i}" for c in _REPORT_COLUMNS] for i in range(rows)]
            statement = (
                self._insert(reports)
                .values(
                    [
                        {c: bindparam(n) for c, n in zip(_REPORT_COLUMNS, row, strict=True)}
                        for row in names
                    ]
                )
                .on_conflict_do_nothing(index_elements=["agent_id", "seq"])
                .returning(reports.c.agent_id, reports.c.seq)
            )
            found = self._inserts[rows] = (self._sql(statement), [n for row in names for n in row])
        return found

    def insert_reports(self, cursor: Any, rows: Sequence[dict[str, Any]]) -> set[tuple[str, int]]:
        """Insert rows of `reports` unless their (agent, seq) is stored already;
        returns the (agent, seq) of those that were new. RETURNING, not rowcount: it names
        exactly the new rows (and psycopg's rowcount is -1 here)."""
        new: set[tuple[str, int]] = set()
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            sql, names = self._insert_sql(len(chunk))
            cursor.execute(
                sql,
                dict(zip(names, [row[c] for row in chunk for c in _REPORT_COLUMNS], strict=True)),
            )
            new.update((agent_id, seq) for agent_id, seq in cursor.fetchall())
        return new


class Connections:
    """Driver connections kept for the ack path, outside SQLAlchemy's pool: a pool checkout
    and return (events, reset by rollback, queue locking) cost a third of the collector's own
    work in a batch-1 Submit.

    Each is made by the engine (so the SQLite pragmas apply) and then detached from its pool.
    A connection is taken by one caller at a time. One that failed is closed, not given back,
    and so are the idle ones: after a database restart they are all broken, and making new
    ones is cheap next to failing one call per stale connection.
    `autocommit` is for readers: a lone SELECT then leaves no transaction open on PostgreSQL.
    """

    def __init__(self, engine: Engine, *, autocommit: bool) -> None:
        self._engine = engine
        self._autocommit = autocommit
        self._idle: list[Any] = []  # list.pop/append are atomic: no lock needed

    def take(self) -> Any:
        try:
            return self._idle.pop()
        except IndexError:
            pass
        fairy = self._engine.raw_connection()
        fairy.detach()
        conn: Any = fairy.dbapi_connection
        if self._autocommit:
            self._engine.dialect.set_isolation_level(conn, "AUTOCOMMIT")
        return conn

    def give(self, conn: Any) -> None:
        self._idle.append(conn)

    def discard(self, conn: Any) -> None:
        _close(conn)
        self.close()

    def close(self) -> None:
        while True:
            try:
                conn = self._idle.pop()
            except IndexError:
                return
            _close(conn)


def _close(conn: Any) -> None:
    with contextlib.suppress(Exception):  # it may have failed already; closing is all that is left
        conn.close()
