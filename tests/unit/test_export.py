"""Audit export files: each format read back by a real reader, and the sealed manifest chain."""

from __future__ import annotations

import csv
import json
import subprocess
import unicodedata
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collector.export.formats import Heading, write_csv, write_json, write_xlsx
from collector.export.manifest import load_or_create_key, load_public_key, verify
from collector.export.table import Cell, Column, Table
from collector.export.write import write_export

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
# 2026-11-30 17:00:00 UTC = 2026-12-01 00:00 in Hà Nội
T = datetime(2026, 12, 1, 0, 0, tzinfo=ZONE).timestamp()
NFD_NAME = unicodedata.normalize("NFD", "Xã Thắng Lợi")

COLUMNS = (
    Column("unit", "Đơn vị", "Unit"),
    Column("machines", "Số máy", "Machines", "int"),
    Column("share", "Tỷ lệ đạt", "Passed", "share"),
    Column("since", "Lỗi từ", "Failing since", "time"),
)
ROWS: list[tuple[Cell, ...]] = [
    (NFD_NAME, 12, 0.875, T),
    ('=HYPERLINK("http://x")', 3, None, None),
    ("-1+2", 0, 1.0, T + 3600),
]


def table(name: str = "units", rows: list[tuple[Cell, ...]] | None = None) -> Table:
    data = ROWS if rows is None else rows
    return Table(name, "Theo đơn vị", "By unit", COLUMNS, lambda: iter(data))


HEADING = Heading(
    title="Báo cáo an toàn thông tin tháng 11/2026",
    lines=["Huyện Hạ Lang", "Kỳ: 01/11/2026 – 30/11/2026"],
    footer=["Số liệu từ Canh Gác."],
    sign_as="Người duyệt",
)


def test_csv_opens_in_excel_and_escapes_formulas(tmp_path: Path) -> None:
    p = tmp_path / "units.csv"
    write_csv(table(), p, "vi", ZONE)
    raw = p.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for UTF-8
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0] == ["Đơn vị", "Số máy", "Tỷ lệ đạt (%)", "Lỗi từ (Asia/Ho_Chi_Minh)"]
    assert rows[1] == ["Xã Thắng Lợi", "12", "87.5", "2026-12-01T00:00:00+07:00"]
    assert rows[1][0] == unicodedata.normalize("NFC", NFD_NAME) != NFD_NAME
    assert rows[2][0] == '\'=HYPERLINK("http://x")'
    assert rows[2][2:] == ["", ""]  # unknown is empty, never 0
    assert rows[3][0] == "'-1+2"


def test_json_rows_are_typed_and_times_carry_their_zone(tmp_path: Path) -> None:
    p = tmp_path / "units.json"
    write_json(table(), p, "en", ZONE)
    doc = json.loads(p.read_text(encoding="utf-8"))
    assert doc["schema"] == "canhgac-export-table/1"
    assert [c["kind"] for c in doc["columns"]] == ["text", "int", "share", "time"]
    assert doc["rows"][0] == {
        "unit": "Xã Thắng Lợi",
        "machines": 12,
        "share": 0.875,
        "since": "2026-12-01T00:00:00+07:00",
    }
    assert doc["rows"][1]["share"] is None
    assert doc["rows"][1]["unit"] == '=HYPERLINK("http://x")'  # JSON is data, not a sheet


def test_xlsx_read_back_cell_by_cell(tmp_path: Path) -> None:
    p = tmp_path / "a.xlsx"
    write_xlsx([table(), table("empty", [])], p, "vi", ZONE)
    wb = openpyxl.load_workbook(p)
    assert wb.sheetnames == ["units", "empty"]
    ws = wb["units"]
    assert ws.freeze_panes == "A2"
    assert ws["A1"].value == "Đơn vị"
    assert ws["A2"].value == "Xã Thắng Lợi"
    assert ws["B2"].value == 12
    assert ws["C2"].value == 0.875 and ws["C2"].number_format == "0.0%"
    assert ws["D2"].value == datetime(2026, 12, 1, 0, 0)  # local time, the zone in the header
    assert ws["D1"].value == "Lỗi từ (Asia/Ho_Chi_Minh)"
    assert ws["A3"].value == '=HYPERLINK("http://x")' and ws["A3"].data_type == "s"
    assert ws["C3"].value is None
    assert wb["empty"].max_row == 1


def test_a_row_of_the_wrong_width_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="row 1 has 2 cells, not 4"):
        write_csv(table(rows=[("a", 1)]), tmp_path / "x.csv", "vi", ZONE)


def test_table_names_fit_a_sheet_and_a_file() -> None:
    with pytest.raises(ValueError, match="1-31"):
        table("machines/all")
    with pytest.raises(ValueError, match="1-31"):
        table("x" * 32)


def _export(root: Path, key: Ed25519PrivateKey, name: str, formats: list[str]) -> Path:
    lines: list[str] = []
    out = write_export(
        root,
        name,
        summary=table("summary"),
        tables=[table()],
        heading=HEADING,
        formats=formats,
        parameters={"period": "2026-11"},
        key=key,
        lang="vi",
        zone=ZONE,
        progress=lines.append,
    )
    assert lines and all(":" in line for line in lines)
    return out


def test_pdf_embeds_a_font_and_keeps_vietnamese(tmp_path: Path) -> None:
    out = _export(tmp_path, Ed25519PrivateKey.generate(), "e1", ["pdf"])
    pdf = out / "summary.pdf"
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True)
    words = unicodedata.normalize("NFC", text.stdout)
    for label in ("Báo cáo an toàn thông tin tháng 11/2026", "Xã Thắng Lợi", "Người duyệt"):
        assert label in words
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True)
    body = fonts.stdout.splitlines()[2:]
    assert body and all(" yes " in line for line in body)  # every font embedded


def test_export_has_every_format_and_verifies(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "keys" / "export.key")
    assert (tmp_path / "keys" / "export.key").stat().st_mode & 0o777 == 0o600
    out = _export(tmp_path / "exports", key, "2026-11", ["xlsx", "csv", "json", "pdf"])
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == [
        "canhgac.xlsx",
        "csv/summary.csv",
        "csv/units.csv",
        "json/summary.json",
        "json/units.json",
        "manifest.json",
        "manifest.sig",
        "summary.pdf",
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parameters"] == {
        "period": "2026-11",
        "formats": ["xlsx", "csv", "json", "pdf"],
    }
    assert manifest["previous"] is None
    pub = key.public_key()
    assert verify(out, pub).ok
    assert not [p for p in (tmp_path / "exports").iterdir() if p.name.startswith(".")]


def test_verify_names_changed_missing_and_extra_files(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    out = _export(tmp_path, key, "e1", ["csv", "json"])
    data = bytearray((out / "csv/units.csv").read_bytes())
    data[-3] ^= 1  # one bit of one byte
    (out / "csv/units.csv").write_bytes(bytes(data))
    (out / "json/summary.json").unlink()
    (out / "notes.txt").write_text("thêm")
    v = verify(out, key.public_key())
    assert v.problems == (
        "changed: csv/units.csv",
        "missing: json/summary.json",
        "extra: notes.txt",
    )


def test_a_forged_manifest_or_another_key_fails_the_signature(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    out = _export(tmp_path, key, "e1", ["csv"])
    assert any(
        "signature" in p for p in verify(out, Ed25519PrivateKey.generate().public_key()).problems
    )
    m = json.loads((out / "manifest.json").read_text())
    m["parameters"]["period"] = "2026-10"
    (out / "manifest.json").write_text(json.dumps(m))
    assert any("signature" in p for p in verify(out, key.public_key()).problems)


def test_exports_chain_and_a_broken_link_is_named(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    first = _export(tmp_path, key, "2026-10", ["csv"])
    second = _export(tmp_path, key, "2026-11", ["csv"])
    third = _export(tmp_path, key, "2026-12", ["json"])
    link = json.loads((third / "manifest.json").read_text())["previous"]
    assert link["name"] == "2026-11"
    v = verify(third, key.public_key())
    assert v.ok and v.links == 2
    # an earlier export edited after it was chained: every later export says so
    body = (first / "manifest.json").read_bytes()
    (first / "manifest.json").write_bytes(body.replace(b"2026-10", b"2026-09", 1))
    assert verify(third, key.public_key()).problems == (
        "chain broken: 2026-10/manifest.json changed since it was chained",
    )
    assert verify(third, key.public_key()).links == 1
    # an earlier export removed
    for p in sorted(second.rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    second.rmdir()
    assert verify(third, key.public_key()).problems == (
        "chain broken: previous export 2026-11 is missing",
    )


def test_a_failed_export_leaves_nothing_behind(tmp_path: Path) -> None:
    def broken() -> list[tuple[Cell, ...]]:
        raise OSError(28, "No space left on device")

    bad = Table("units", "Theo đơn vị", "By unit", COLUMNS, broken)
    with pytest.raises(OSError, match="No space"):
        write_export(
            tmp_path,
            "e1",
            summary=table("summary"),
            tables=[bad],
            heading=HEADING,
            formats=["csv"],
            parameters={},
            key=Ed25519PrivateKey.generate(),
            lang="vi",
            zone=ZONE,
        )
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="choose from"):
        _export(tmp_path, Ed25519PrivateKey.generate(), "e2", ["docx"])


def test_an_export_is_never_overwritten(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    _export(tmp_path, key, "e1", ["csv"])
    with pytest.raises(FileExistsError, match="never overwritten"):
        _export(tmp_path, key, "e1", ["csv"])


def test_the_public_key_alone_verifies(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "export.key")
    out = _export(tmp_path / "x", key, "e1", ["csv"])
    pub = tmp_path / "export.pub"
    pub.write_text(json.loads((out / "manifest.json").read_text())["public_key"])
    assert verify(out, load_public_key(pub)).ok
    assert load_or_create_key(tmp_path / "export.key").public_key() == key.public_key()
