"""What every part of the store shares: the connection helpers Store provides, and one change."""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import Connection, Engine, Executable

from collector.errors import NotFoundError

__all__ = ["StoreBase"]


class StoreBase:
    """Base of Store and of the table groups mixed into it (alerts, mail, meetings)."""

    _engine: Engine

    def _write(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def _read(self) -> contextlib.AbstractContextManager[Connection]:
        raise NotImplementedError

    def _change_one(self, statement: Executable, missing: str) -> None:
        """Run an UPDATE/DELETE meant for one live row; NotFoundError(`missing`) when none."""
        with self._write() as conn:
            result: Any = conn.execute(statement)
        if not result.rowcount:
            raise NotFoundError(missing)
