"""`write_export`: the chosen formats of the same tables written into a temporary folder,
then `manifest.seal` signs it and renames it into place."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collector.export.formats import (
    FORMATS,
    Heading,
    find_font,
    write_csv,
    write_json,
    write_pdf,
    write_xlsx,
)
from collector.export.manifest import seal
from collector.export.table import Table

__all__ = ["write_export"]


def write_export(
    root: Path,
    name: str,
    *,
    summary: Table,
    tables: Sequence[Table],
    heading: Heading,
    formats: Sequence[str],
    parameters: Mapping[str, Any],
    key: Ed25519PrivateKey,
    lang: str,
    zone: ZoneInfo,
    font: Path | None = None,
    progress: Callable[[str], None] = lambda _: None,
    now: float | None = None,
) -> Path:
    """The sealed export folder `root/name`. `summary` comes first in every format and is the
    PDF's table; `progress` hears one line per file as it is written."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"export formats: {', '.join(unknown) or 'none'}; choose from {FORMATS}")
    fonts = find_font(font) if "pdf" in formats else None  # fail before any work is done
    every = [summary, *tables]

    def write(folder: Path) -> None:
        if "xlsx" in formats:
            progress("xlsx: canhgac.xlsx")
            write_xlsx(every, folder / "canhgac.xlsx", lang, zone)
        for fmt, writer in (("csv", write_csv), ("json", write_json)):
            if fmt in formats:
                (folder / fmt).mkdir()
                for t in every:
                    progress(f"{fmt}: {t.name}.{fmt}")
                    writer(t, folder / fmt / f"{t.name}.{fmt}", lang, zone)
        if fonts is not None:
            progress("pdf: summary.pdf")
            write_pdf(summary, heading, folder / "summary.pdf", lang=lang, zone=zone, font=fonts)

    return seal(root, name, {**parameters, "formats": list(formats)}, key=key, write=write, now=now)
