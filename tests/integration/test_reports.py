"""`report` and `export` as a person runs them: real processes on a real SQLite store, the
export's files read back by real readers, and `export verify` catching tampering."""

from __future__ import annotations

import csv
import json
import subprocess
import time
import unicodedata
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from collector.model import Labels, Placement, Report
from collector.store import AlertWrite, HistoryEntry, MachineFacts, Store
from tests.integration.test_cli import collector_cli

REPO = Path(__file__).resolve().parents[2]
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
DISTRICT = "Hạ Lang"
AV_RULES = (
    "antivirus.present",
    "antivirus.enabled",
    "antivirus.realtime",
    "antivirus.signatures",
    "antivirus.self-test",
)


def _month_now() -> str:
    return datetime.now(ZONE).strftime("%Y-%m")


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    """Four machines of Thanh Nhật and one of Vinh Quý, three reporting; a fix in this month."""
    db = tmp_path / "c.db"
    config = tmp_path / "collector.yaml"
    config.write_text(
        f"store:\n  url: sqlite:///{db}\n"
        f"sites_file: {REPO / 'configs' / 'sites.example.yaml'}\n"
        f"rules:\n  path: {REPO / 'rules'}\n",
        encoding="utf-8",
    )
    now = time.time()
    store = Store(f"sqlite:///{db}")
    ids = []
    for n, (commune, role) in enumerate(
        [
            ("Thanh Nhật", "workstation"),
            ("Thanh Nhật", "workstation"),
            ("Thanh Nhật", "meeting-room"),
            ("Thanh Nhật", "workstation"),
            ("Vinh Quý", "workstation"),
        ]
    ):
        _, token = store.create_token(Placement("Cao Bằng", DISTRICT, commune, "", role), 3600, now)
        e = store.enroll(token, MachineFacts(f"m-{n}", f"pc-{n}", "Windows", "11", "0.1.0"), now)
        ids.append(e.agent.agent_id)
    for agent in ids[:3]:  # the other two never report
        store.ingest(agent, [Report(1, "b", now, "0.1.0", sections={})], now)
    results = []
    for agent, ok in ((ids[0], True), (ids[1], False), (ids[2], True)):
        results += [(Labels(r, agent, "high", DISTRICT, "Thanh Nhật"), ok, now) for r in AV_RULES]
    results.append(
        (Labels("meeting-room.ready", ids[2], "high", DISTRICT, "Thanh Nhật"), True, now)
    )
    fixed = Labels("antivirus.enabled", ids[1], "high", DISTRICT, "Thanh Nhật")
    store.alerts.apply_alerts(
        AlertWrite(
            results=results,
            history=[HistoryEntry(fixed, "resolved", now - 60, now - 60 - 7200, now - 60)],
            now=now,
        )
    )
    store.close()
    return config


def test_report_prints_the_indicators_vietnamese_first(seeded: Path) -> None:
    out = collector_cli(seeded, "report", "--period", _month_now(), "--district", DISTRICT)
    assert out.returncode == 0, out.stderr
    text = unicodedata.normalize("NFC", out.stdout)
    assert f"Báo cáo Canh Gác — {DISTRICT} — tháng" in text
    assert "Máy có phần mềm diệt virus hoạt động, cập nhật, tự kiểm tra đạt: 40% (2/5)" in text
    assert "Máy đang gửi báo cáo: 60% (3/5)" in text
    assert "Xã có phòng họp trực tuyến sẵn sàng: 8% (1/13)" in text  # 13 communes planned
    assert "Sự cố đã khắc phục: 1 (thời gian khắc phục trung vị 2.0 h)" in text
    en = collector_cli(seeded, "report", "--period", _month_now(), "--lang", "en", "--json")
    assert en.returncode == 0, en.stderr
    doc = json.loads(en.stdout)
    (d,) = doc["districts"]
    assert d["machines"]["antivirus"] == {"met": 2, "of": 5, "share": 0.4}
    assert d["machines"]["reporting_of_planned"]["of"] > 5  # the sites file's plan
    assert d["communes_room_ready"] == {"met": 1, "of": 13, "share": 1 / 13}
    assert doc["findings_fixed"] == 1
    assert doc["time_to_fix_seconds"]["antivirus.enabled"]["median"] == pytest.approx(7200)
    assert doc["period"]["from"].endswith("+07:00")


def test_report_refuses_unclear_periods_and_places(seeded: Path) -> None:
    for args, said in (
        (["--period", "2026-13"], "month 13 is not 01-12"),
        (["--period", "tháng 11"], "write a month 2026-11"),
        (["--from", "2026-11-20", "--to", "2026-11-01"], "is before --from"),
        (["--from", "2026-11-01"], "both --from and --to"),
        (["--period", "2026-11", "--district", "Hà Lang"], "unknown district 'Hà Lang'"),
    ):
        out = collector_cli(seeded, "report", *args)
        assert out.returncode != 0 and said in out.stderr, (args, out.stderr)


def test_export_every_format_read_back_and_verified(seeded: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "exports"
    made = collector_cli(seeded, "export", "--period", _month_now(), "--out", str(out_dir))
    assert made.returncode == 0, made.stderr
    assert "xlsx: canhgac.xlsx" in made.stderr and "pdf: summary.pdf" in made.stderr
    export = Path(made.stdout.strip())
    assert export.parent == out_dir
    key = seeded.parent / "export-signing.key"
    assert key.stat().st_mode & 0o777 == 0o600
    # XLSX, cell by cell: the summary's antivirus row, and each machine's row
    wb = openpyxl.load_workbook(export / "canhgac.xlsx")
    summary = {r[0]: r[1:] for r in wb["summary"].iter_rows(min_row=2, values_only=True)}
    av = summary["Máy có phần mềm diệt virus hoạt động, cập nhật, tự kiểm tra đạt"]
    assert av == (2, 5, 0.4)
    machines = list(wb["machines"].iter_rows(values_only=True))
    assert len(machines) == 1 + 5
    header = machines[0]
    reporting = [r[header.index("Đang báo cáo")] for r in machines[1:]]
    assert sorted(str(r) for r in reporting) == ["có", "có", "có", "không", "không"]
    assert isinstance(machines[1][header.index("Đăng ký lúc (Asia/Ho_Chi_Minh)")], datetime)
    findings = list(wb["findings"].iter_rows(min_row=2, values_only=True))
    assert [(f[0], f[-1]) for f in findings] == [("antivirus.enabled", 7200)]
    assert findings[0][1] == "Phần mềm diệt virus đang tắt"  # the rule's Vietnamese title
    # CSV: UTF-8 with BOM, the same rows
    with (export / "csv" / "machines.csv").open(encoding="utf-8-sig", newline="") as f:
        assert len(list(csv.reader(f))) == 6
    # JSON: the documented schema
    units = json.loads((export / "json" / "units.json").read_text(encoding="utf-8"))
    assert units["schema"] == "canhgac-export-table/1"
    thanh_nhat = [r for r in units["rows"] if r["commune"] == "Thanh Nhật" and r["enrolled"]]
    assert thanh_nhat and thanh_nhat[0]["antivirus"] == 0.5
    # PDF: Vietnamese labels with their marks, fonts embedded
    pdf = subprocess.run(
        ["pdftotext", str(export / "summary.pdf"), "-"], capture_output=True, text=True, check=True
    )
    words = unicodedata.normalize("NFC", pdf.stdout)
    assert "Báo cáo an toàn thông tin" in words and "Người duyệt" in words
    assert "Máy đang gửi báo cáo" in words
    # verify: OK, then each kind of tampering named
    ok = collector_cli(seeded, "export", "verify", str(export))
    assert ok.returncode == 0 and ok.stdout.startswith("OK"), ok.stdout + ok.stderr
    second = collector_cli(seeded, "export", "--period", _month_now(), "--out", str(out_dir))
    assert second.returncode == 0, second.stderr
    later = Path(second.stdout.strip())
    assert "1 earlier exports" in collector_cli(seeded, "export", "verify", str(later)).stdout
    (export / "csv" / "units.csv").write_bytes(b"\xef\xbb\xbfforged\n")
    tampered = collector_cli(seeded, "export", "verify", str(export))
    assert tampered.returncode == 1 and "changed: csv/units.csv" in tampered.stdout
    (export / "manifest.json").write_text("{}")
    broken = collector_cli(seeded, "export", "verify", str(later))
    assert broken.returncode == 1
    assert f"chain broken: {export.name}/manifest.json changed" in broken.stdout
    pub = collector_cli(seeded, "export", "key")
    assert pub.stdout.startswith("-----BEGIN PUBLIC KEY-----")


def test_export_needs_a_folder_and_known_formats(seeded: Path, tmp_path: Path) -> None:
    nowhere = collector_cli(seeded, "export", "--period", _month_now())
    assert nowhere.returncode == 1 and "--out FOLDER is required" in nowhere.stderr
    bad = collector_cli(
        seeded, "export", "--period", _month_now(), "--out", str(tmp_path), "--format", "docx"
    )
    assert bad.returncode == 1 and "choose from" in bad.stderr
    assert list(tmp_path.glob("canhgac-*")) == []
