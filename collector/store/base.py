"""What every part of the store shares: the database it works on."""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import Connection, Engine, Executable

from collector.store.database import Database

__all__ = ["Part"]


class Part:
    """A group of tables over one `Database` (the store's agents and reports, alerts, mail,
    meetings, the reads behind /metrics): each is handed to the code that needs it."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def _engine(self) -> Engine:
        return self._db.engine

    def _write(self) -> contextlib.AbstractContextManager[Connection]:
        return self._db.write()

    def _read(self) -> contextlib.AbstractContextManager[Connection]:
        return self._db.read()

    def _cursor(self, write: bool) -> contextlib.AbstractContextManager[Any]:
        return self._db.cursor(write)

    def _change_one(self, statement: Executable, missing: str) -> None:
        self._db.change_one(statement, missing)
