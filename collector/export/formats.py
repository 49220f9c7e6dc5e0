"""The export's file formats: CSV, XLSX, JSON (streamed row by row) and a PDF summary page.

Each writer reads a table's rows once and holds one row at a time (XLSX: XlsxWriter's
constant_memory mode flushes every row), so memory stays flat however large the period.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from collector.export.table import Cell, Column, Table, local_time, nfc

__all__ = [
    "FORMATS",
    "Heading",
    "find_font",
    "write_csv",
    "write_json",
    "write_pdf",
    "write_xlsx",
]

FORMATS = ("xlsx", "csv", "pdf", "json")
JSON_SCHEMA = "canhgac-export-table/1"

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection, OWASP).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# Fonts that cover Vietnamese, from Debian's fonts-noto-core and fonts-dejavu-core.
FONT_CANDIDATES = (
    (
        Path("/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"),
        Path("/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf"),
    ),
    (
        Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
        Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    ),
)


def _text_cell(value: str) -> str:
    value = nfc(value)
    return "'" + value if value.startswith(_FORMULA_START) else value


def _plain(column: Column, value: Cell, zone: ZoneInfo) -> Cell:
    """A cell as CSV and JSON write it: times ISO 8601 with the zone's offset."""
    if value is None:
        return None
    if column.kind == "time":
        return local_time(float(value), zone).isoformat(timespec="seconds")
    if column.kind == "text":
        return nfc(str(value))
    return value


def _headers(table: Table, lang: str, zone: ZoneInfo) -> list[str]:
    out = []
    for c in table.columns:
        title = c.title(lang)
        if c.kind == "time":
            title = f"{title} ({zone.key})"
        elif c.kind == "share":
            title = f"{title} (%)"
        out.append(title)
    return out


def write_csv(table: Table, path: Path, lang: str, zone: ZoneInfo) -> None:
    """UTF-8 with a BOM (Excel opens Vietnamese right only then); shares as percents."""
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(_headers(table, lang, zone))
        for row in table.each():
            cells: list[str] = []
            for c, v in zip(table.columns, row, strict=True):
                p = _plain(c, v, zone)
                if p is None:
                    cells.append("")
                elif c.kind == "share":
                    cells.append(f"{100.0 * float(p):.1f}")
                elif c.kind == "text":
                    cells.append(_text_cell(str(p)))
                else:
                    cells.append(str(p))
            w.writerow(cells)


def write_json(table: Table, path: Path, lang: str, zone: ZoneInfo) -> None:
    """One object per table; rows as objects keyed by column; shares as fractions 0..1."""
    head = {
        "schema": JSON_SCHEMA,
        "table": table.name,
        "title": table.title(lang),
        "timezone": zone.key,
        "columns": [{"key": c.key, "title": c.title(lang), "kind": c.kind} for c in table.columns],
    }
    with path.open("w", encoding="utf-8") as f:
        f.write(json.dumps(head, ensure_ascii=False)[:-1])
        f.write(', "rows": [')
        for n, row in enumerate(table.each()):
            obj = {c.key: _plain(c, v, zone) for c, v in zip(table.columns, row, strict=True)}
            f.write(("," if n else "") + "\n" + json.dumps(obj, ensure_ascii=False))
        f.write("\n]}\n")


def write_xlsx(tables: Sequence[Table], path: Path, lang: str, zone: ZoneInfo) -> None:
    """One sheet per table: typed cells (dates, percents, numbers), a frozen header row."""
    import xlsxwriter  # noqa: PLC0415 (only `export` loads it, never the serving collector)

    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "in_memory": False})
    try:
        bold = wb.add_format({"bold": True, "text_wrap": True, "valign": "top"})
        pct = wb.add_format({"num_format": "0.0%"})
        when = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        for table in tables:
            ws = wb.add_worksheet(table.name)
            ws.freeze_panes(1, 0)
            for col, title in enumerate(_headers(table, lang, zone)):
                ws.write_string(0, col, title, bold)
                ws.set_column(col, col, max(10, min(40, len(title) + 2)))
            for r, row in enumerate(table.each(), 1):
                for col, (c, v) in enumerate(zip(table.columns, row, strict=True)):
                    if v is None:
                        continue
                    if c.kind == "text":
                        ws.write_string(r, col, nfc(str(v)))
                    elif c.kind == "int":
                        ws.write_number(r, col, int(v))
                    elif c.kind == "share":
                        ws.write_number(r, col, float(v), pct)
                    else:  # Excel has no zones: the local time, the zone is in the header
                        t = local_time(float(v), zone).replace(tzinfo=None)
                        ws.write_datetime(r, col, t, when)
    finally:
        wb.close()


@dataclass(frozen=True, slots=True)
class Heading:
    """The PDF summary page's words around its table."""

    title: str
    lines: Sequence[str]  # period, place, when made: one line each
    footer: Sequence[str]  # notes, then the signature block
    sign_as: str  # "Người duyệt" / "Approved by"


def find_font(configured: Path | None) -> tuple[Path, Path]:
    """A regular and a bold font that cover Vietnamese; a clear error naming what to install."""
    if configured is not None:
        if not configured.is_file():
            raise FileNotFoundError(f"export font {configured}: no such file")
        return configured, configured
    for regular, bold in FONT_CANDIDATES:
        if regular.is_file():
            return regular, bold if bold.is_file() else regular
    raise FileNotFoundError(
        "no font covering Vietnamese found for the PDF: install fonts-noto-core "
        "(apt-get install fonts-noto-core) or set export.font to a .ttf file"
    )


def write_pdf(
    summary: Table,
    heading: Heading,
    path: Path,
    *,
    lang: str,
    zone: ZoneInfo,
    font: tuple[Path, Path],
) -> None:
    """A summary page a chairman can sign: the indicators table in an embedded font."""
    from fpdf import FPDF  # noqa: PLC0415 (only `export` loads it, never the serving collector)

    # fontTools logs each glyph table it prunes while embedding the font subset, at INFO.
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_font("body", "", str(font[0]))
    pdf.add_font("body", "B", str(font[1]))
    pdf.set_text_shaping(True)  # HarfBuzz: combining marks placed as the font says
    pdf.add_page()
    pdf.set_font("body", "B", 15)
    pdf.multi_cell(0, 8, nfc(heading.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("body", "", 10)
    for line in heading.lines:
        pdf.multi_cell(0, 6, nfc(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("body", "", 9)
    # The first column (the indicator's name) takes half the width; the numbers share the rest.
    widths = (3 * len(summary.columns), *([3] * (len(summary.columns) - 1)))
    with pdf.table(first_row_as_headings=True, text_align="LEFT", col_widths=widths) as t:
        header = t.row()
        for title in _headers(summary, lang, zone):
            header.cell(nfc(title))
        for row in summary.each():
            r = t.row()
            for c, v in zip(summary.columns, row, strict=True):
                r.cell(_pdf_cell(c, v, zone))
    pdf.ln(4)
    pdf.set_font("body", "", 9)
    for line in heading.footer:
        pdf.multi_cell(0, 5, nfc(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(10)
    pdf.set_font("body", "B", 11)
    pdf.cell(0, 6, nfc(heading.sign_as), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


def _pdf_cell(column: Column, value: Cell, zone: ZoneInfo) -> str:
    if value is None:
        return "—"
    if column.kind == "share":
        return f"{100.0 * float(value):.1f}%"
    if column.kind == "time":
        return local_time(float(value), zone).strftime("%Y-%m-%d %H:%M")
    return nfc(str(value))
