"""The database under every part of the store: engine, SQLite pragmas, migrations, the
writer lock, and the three ways a part talks to it (a write, a read, the ack path's cursor)."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Executable,
    create_engine,
    event,
    inspect,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from canhgac_common.i18n import gettext_ as _
from collector.errors import NotFoundError, StoreError
from collector.store.hotpath import Connections
from collector.store.schema import (
    ALERT_TABLES,
    MAIL_TABLES,
    SCHEMA_VERSION,
    agents,
    meeting_results,
    meetings,
    metadata,
    releases,
    report_blocks,
    reports,
    retention_marks,
    rollups,
    schema_version,
    settings_layers,
    software_inventories,
    spools,
    tokens,
)

__all__ = ["Database"]

log = logging.getLogger(__name__)

# Pages given back per transaction (4 KiB each): a short hold of the writer.
_VACUUM_PAGES = 256


def _to_v2(conn: Connection) -> None:
    """Schema 2: compliance and alert tables (nothing existing changes)."""
    metadata.create_all(conn, tables=list(ALERT_TABLES))


def _to_v3(conn: Connection) -> None:
    """Schema 3: the mail queue and outbox of the notifier (nothing existing changes)."""
    metadata.create_all(conn, tables=list(MAIL_TABLES))


def _to_v4(conn: Connection) -> None:
    """Schema 4: meetings and their per-room results (nothing existing changes)."""
    metadata.create_all(conn, tables=[meetings, meeting_results])


def _to_v5(conn: Connection) -> None:
    """Schema 5: reports keep the protobuf received (`wire`); older rows keep their JSON."""
    blob = reports.c.wire.type.compile(dialect=conn.dialect)
    conn.execute(text(f"ALTER TABLE reports ADD COLUMN wire {blob}"))


def _to_v6(conn: Connection) -> None:
    """Schema 6: agents.snapshot_version, what /metrics compares to find changed agents."""
    big = agents.c.snapshot_version.type.compile(dialect=conn.dialect)
    conn.execute(text(f"ALTER TABLE agents ADD COLUMN snapshot_version {big} NOT NULL DEFAULT 0"))


def _to_v7(conn: Connection) -> None:
    """Schema 7: spools (reports keyed by agent, spool and seq) and the clone marks of agents.
    Every agent's reports so far are its first spool's, the one of id 0 (agents older than
    spool ids send 0, and a spool they wrote keeps 0 when the agent is upgraded)."""
    for column in (agents.c.clone_suspected_at, agents.c.seq_conflicts):
        kind = column.type.compile(dialect=conn.dialect)
        default = " NOT NULL DEFAULT 0" if column.name == "seq_conflicts" else ""
        conn.execute(text(f"ALTER TABLE agents ADD COLUMN {column.name} {kind}{default}"))
    metadata.create_all(conn, tables=[spools])
    conn.execute(
        spools.insert().from_select(
            ["agent_id", "spool_id", "ordinal", "first_seen_at", "first_seq"],
            select(
                agents.c.agent_id,
                literal_column("0"),
                literal_column("0"),
                agents.c.enrolled_at,
                literal_column("1"),
            ).where(agents.c.last_seq > 0),
        )
    )


def _to_v8(conn: Connection) -> None:
    """Schema 8: agents.clone_of (enrolled with a taken machine id, without proof) and
    tokens.replaces (a token that re-enrolls one agent, keeping its id)."""
    for table, column in ((agents, agents.c.clone_of), (tokens, tokens.c.replaces)):
        kind = column.type.compile(dialect=conn.dialect)
        conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))


def _to_v9(conn: Connection) -> None:
    """Schema 9: rollups, the retention pass's marks, and reports indexed by arrival."""
    metadata.create_all(conn, tables=[rollups, retention_marks])
    for index in reports.indexes:
        index.create(conn)


def _to_software_inventory(conn: Connection) -> None:
    """Schema 10: the last full software list per agent (nothing existing changes)."""
    metadata.create_all(conn, tables=[software_inventories])


def _to_v11(conn: Connection) -> None:
    """Schema 11: mail attachments (the monthly report's PDF). A store older than schema 3
    made its mail tables in this run, from today's schema, with the column already."""
    if "attachments" not in {c["name"] for c in inspect(conn).get_columns("mail_outbox")}:
        conn.execute(
            text("ALTER TABLE mail_outbox ADD COLUMN attachments TEXT NOT NULL DEFAULT '[]'")
        )


def _to_v12(conn: Connection) -> None:
    """Schema 12: central agent settings, one row per change of a layer."""
    metadata.create_all(conn, tables=[settings_layers])


def _to_v13(conn: Connection) -> None:
    """Schema 13: agents.retired_at and retired_reason (`agent retire`); columns already
    there (a table made from today's schema, its version set back) are kept."""
    have = {c["name"] for c in inspect(conn).get_columns("agents")}
    if "retired_at" not in have:
        when = agents.c.retired_at.type.compile(dialect=conn.dialect)
        conn.execute(text(f"ALTER TABLE agents ADD COLUMN retired_at {when}"))
    if "retired_reason" not in have:
        conn.execute(text("ALTER TABLE agents ADD COLUMN retired_reason TEXT NOT NULL DEFAULT ''"))


def _to_releases(conn: Connection) -> None:
    """Schema 14: signed agent releases and their rollout (nothing existing changes)."""
    metadata.create_all(conn, tables=[releases])


def _to_v15(conn: Connection) -> None:
    """Schema 15: packed report blocks (nothing existing changes; the next retention passes
    pack the raw reports already kept)."""
    metadata.create_all(conn, tables=[report_blocks])


# version -> the step that brings a store from version-1 to it, in one transaction.
_MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    2: _to_v2,
    3: _to_v3,
    4: _to_v4,
    5: _to_v5,
    6: _to_v6,
    7: _to_v7,
    8: _to_v8,
    9: _to_v9,
    10: _to_software_inventory,
    11: _to_v11,
    12: _to_v12,
    13: _to_v13,
    14: _to_releases,
    15: _to_v15,
}


class Database:
    """One engine and its connections; SQLite writers serialised by a lock instead of spinning
    on SQLITE_BUSY. A store newer than the code refuses to open."""

    def __init__(self, url: str, sqlite_synchronous: str = "full") -> None:
        self.url = url
        try:
            self.engine: Engine = create_engine(url)
        except (SQLAlchemyError, ImportError, ValueError) as e:
            raise StoreError(_("store url {url!r}: {error}").format(url=url, error=e)) from None
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            self._configure_sqlite(sqlite_synchronous)
        # SQLite has one writer at a time; serialise writers here instead of spinning on BUSY.
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if self.dialect == "sqlite" else contextlib.nullcontext()
        )
        self._migrate()
        if self.dialect == "sqlite":
            self._space_reuse()
        self._readers = Connections(self.engine, autocommit=True)
        self._writers = Connections(self.engine, autocommit=False)
        # The ack path runs on the driver's cursor: its errors are the driver's.
        self.failures = (SQLAlchemyError, self.engine.dialect.loaded_dbapi.Error)

    def close(self) -> None:
        self._readers.close()
        self._writers.close()
        self.engine.dispose()

    def _configure_sqlite(self, synchronous: str) -> None:
        path = self.engine.url.database
        if path and path != ":memory:":
            from pathlib import Path  # noqa: PLC0415

            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Created 0600 before SQLite opens it (it would be 0644 under the usual umask):
            # the store holds every machine's reports and the credential hashes. SQLite
            # gives the -wal and -shm files the database file's mode.
            try:
                os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            except OSError as e:
                raise StoreError(
                    _("store {path}: cannot create: {error}").format(path=path, error=e.strerror)
                ) from None

        @event.listens_for(self.engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # First: switching a new file to WAL takes a lock that another opener may hold.
            cur.execute("PRAGMA busy_timeout=10000")
            # Schema 9: pages freed by retention are given back by incremental_vacuum (in a
            # new file; an older one is converted once, below).
            # Only on an empty file: the pragma writes, and a store must open on a full disk.
            if cur.execute("PRAGMA page_count").fetchone()[0] == 0:
                cur.execute("PRAGMA auto_vacuum=INCREMENTAL")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous.upper()}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    def _current(self) -> bool:
        """The schema is this collector's already: read without the writer's lock, so a store
        opens (to read, to render /metrics) even on a full disk."""
        with self.engine.connect() as conn:
            if not inspect(conn).has_table(schema_version.name):
                return False
            return bool(conn.execute(select(schema_version.c.version)).scalar() == SCHEMA_VERSION)

    def _migrate(self, attempt: int = 0) -> None:
        try:
            if self._current():
                return
            with self.engine.connect() as conn, conn.begin():
                if self.dialect == "sqlite":
                    # The writer's lock before the version is read: a second process opening a
                    # new store at once (the CLI while the service starts) waits for this one
                    # (busy_timeout) and then finds the schema, instead of racing to create it.
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                metadata.create_all(conn, tables=[schema_version])
                found = conn.execute(select(schema_version.c.version)).scalar()
                if found is None:
                    metadata.create_all(conn)
                    conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
                elif found > SCHEMA_VERSION:
                    raise StoreError(
                        _(
                            "{url}: schema version {found} is newer than this collector"
                            " understands ({known}); upgrade canhgac"
                        ).format(url=self.url, found=found, known=SCHEMA_VERSION)
                    )
                else:
                    for version in range(found + 1, SCHEMA_VERSION + 1):
                        _MIGRATIONS[version](conn)
                        conn.execute(update(schema_version).values(version=version))
        except SQLAlchemyError as e:
            if attempt < 3 and "database is locked" in str(e):
                # Switching a new file to WAL does not wait for another opener (no busy
                # handler there): that opener is done within moments.
                time.sleep(0.2 * (attempt + 1))
                self._migrate(attempt + 1)
                return
            raise StoreError(
                _("{url}: cannot open store: {error}").format(url=self.url, error=e)
            ) from None

    def _space_reuse(self) -> None:
        """A file made before schema 9 has no auto_vacuum: one VACUUM converts it (it takes
        a while on a large file, and needs free space of the file's size, once)."""
        with self.engine.connect() as conn:
            if conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() == 2:  # incremental
                return
            log.warning("%s: converting to incremental vacuum (once; VACUUM)", self.url)
            conn.exec_driver_sql("PRAGMA auto_vacuum=INCREMENTAL")
            conn.commit()
            raw = conn.connection.dbapi_connection
            assert raw is not None
            raw.execute("VACUUM")

    def reclaim(self, pace: Callable[[], None], stopped: Callable[[], bool]) -> int:
        """SQLite: the file's free pages given back, a few at a time; pages freed."""
        if self.dialect != "sqlite":
            return 0  # PostgreSQL's autovacuum reuses space within each table
        freed = 0
        while not stopped():
            with self.write() as conn:
                free = conn.exec_driver_sql("PRAGMA freelist_count").scalar() or 0
                if not free:
                    break
                conn.exec_driver_sql(f"PRAGMA incremental_vacuum({_VACUUM_PAGES})")
                freed += min(free, _VACUUM_PAGES)
            pace()
        return freed

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        with self._write_lock:
            try:
                with self.engine.begin() as conn:
                    yield conn
            except self.failures as e:
                raise StoreError(_("store write failed: {error}").format(error=e)) from None

    @contextlib.contextmanager
    def cursor(self, write: bool) -> Iterator[Any]:
        """The ack path's driver cursor on one of the store's kept connections (no SQLAlchemy
        Connection or pool: their set-up and teardown cost more than the statements). A write
        commits on success; any failure discards the connection, so a broken one is not kept."""
        kept = self._writers if write else self._readers
        with self._write_lock if write else contextlib.nullcontext():
            try:
                conn = kept.take()
            except self.failures as e:
                raise StoreError(_("store unavailable: {error}").format(error=e)) from None
            try:
                cursor = conn.cursor()
                yield cursor
                cursor.close()
                if write:
                    conn.commit()
            except self.failures as e:
                kept.discard(conn)
                failed = (
                    _("store write failed: {error}") if write else _("store read failed: {error}")
                )
                raise StoreError(failed.format(error=e)) from None
            except BaseException:
                kept.discard(conn)
                raise
            kept.give(conn)

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except self.failures as e:
            raise StoreError(_("store read failed: {error}").format(error=e)) from None

    def ping(self) -> bool:
        try:
            with self.read() as conn:
                conn.execute(select(1))
        except StoreError:
            return False
        return True

    def change_one(self, statement: Executable, missing: str) -> None:
        """Run an UPDATE/DELETE meant for one live row; NotFoundError(`missing`) when none."""
        with self.write() as conn:
            result: Any = conn.execute(statement)
        if not result.rowcount:
            raise NotFoundError(missing)
