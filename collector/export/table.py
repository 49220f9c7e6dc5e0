"""What an export is made of: tables of typed columns whose rows are read when written.

A table's rows are a callable, not a list: each format reads them again from the store (or
another generator), so a month of 10,000 machines is never held in memory at once.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = ["Cell", "Column", "Kind", "Table", "local_time", "nfc"]

# text: a string; int: a count; share: a fraction 0..1 (written as a percent where people read
# it); time: Unix seconds (written in the export's zone, labelled); None is an unknown value.
Kind = Literal["text", "int", "share", "time"]
Cell = str | int | float | None


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    vi: str
    en: str
    kind: Kind = "text"

    def title(self, lang: str) -> str:
        return self.vi if lang == "vi" else self.en


@dataclass(frozen=True, slots=True)
class Table:
    """One section of an export: a sheet in XLSX, a file in CSV and JSON."""

    name: str  # file and sheet name: [a-z0-9-], at most 31 characters (an Excel sheet's limit)
    vi: str
    en: str
    columns: Sequence[Column]
    rows: Callable[[], Iterable[Sequence[Cell]]]

    def __post_init__(self) -> None:
        if (
            not self.name
            or len(self.name) > 31
            or not all(c.isalnum() or c == "-" for c in self.name)
        ):
            raise ValueError(f"table name {self.name!r}: 1-31 letters, digits or '-'")

    def title(self, lang: str) -> str:
        return self.vi if lang == "vi" else self.en

    def each(self) -> Iterator[Sequence[Cell]]:
        """The rows, each checked against the columns (a wrong width is a bug, said clearly)."""
        width = len(self.columns)
        for n, row in enumerate(self.rows(), 1):
            if len(row) != width:
                raise ValueError(f"table {self.name}: row {n} has {len(row)} cells, not {width}")
            yield row


def nfc(text: str) -> str:
    """Vietnamese typed in decomposed form (NFD) looks the same and compares different."""
    return unicodedata.normalize("NFC", text)


def local_time(ts: float, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ts, zone)
