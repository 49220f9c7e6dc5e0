"""Which collector leads: only one at a time evaluates fleet rules and sends notifications.

On SQLite there is one collector, so it always leads. On PostgreSQL, collectors sharing the
database compete for a session advisory lock held on a dedicated connection: when the leader
dies, PostgreSQL drops its session and the lock, and the next collector to ask takes over.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from collector.store import Store

__all__ = ["LEADER_LOCK", "Leadership"]

log = logging.getLogger(__name__)

# Arbitrary but fixed: every collector of one deployment must use the same key.
LEADER_LOCK = 0x63676C64  # "cgld"


class Leadership:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    def is_leader(self) -> bool:
        """True while this collector holds leadership; tries to take it when free."""
        if self._store.dialect != "postgresql":
            return True
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT 1"))
                    return True
                except SQLAlchemyError:
                    log.warning("lost the leader connection; leadership released")
                    self._release()
            try:
                conn = self._store.engine.connect()
                won = conn.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": LEADER_LOCK}
                ).scalar()
                conn.commit()  # end the implicit transaction; the session lock stays
            except SQLAlchemyError as e:
                log.warning("cannot ask for leadership: %s", e)
                return False
            if won:
                self._conn = conn
                log.info(
                    "this collector (pid %d) now leads (fleet rules, notifications)",
                    os.getpid(),
                )
                return True
            conn.close()
            return False

    def _release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._release()
