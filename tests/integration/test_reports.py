"""`report` and `export` as a person runs them: real processes on a real SQLite store, the
export's files read back by real readers, and `export verify` catching tampering. Vietnamese
(`--lang vi`, the default outside the test session) unless a test says otherwise."""

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
    programs = [
        {"name": "VNPT-CA Plugin", "version": "1.0.5.2", "publisher": "VNPT", "origin": "hklm64"},
        {"name": "=cmd|' /C calc'!A0", "version": "1", "origin": "hklm32"},  # a hostile name
    ]
    software = {"hash": "h1", "source": "windows_registry", "complete": True, "programs": programs}
    store.ingest(ids[0], [Report(2, "b", now, "0.1.0", sections={"software": software})], now)
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
    out = collector_cli(
        seeded, "report", "--lang", "vi", "--period", _month_now(), "--district", DISTRICT
    )
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
        (["--period", "2026-13"], "--period 2026-13: tháng 13 không nằm trong 01-12"),
        (["--period", "tháng 11"], "viết một tháng 2026-11, một quý 2026-Q4 hoặc một năm 2026"),
        (["--from", "2026-11-20", "--to", "2026-11-01"], "--to 2026-11-01 ở trước --from"),
        (["--from", "2026-11-01"], "hoặc cả --from và --to (YYYY-MM-DD)"),
        (["--period", "2026-11", "--district", "Hà Lang"], "không có huyện 'Hà Lang'"),
    ):
        out = collector_cli(seeded, "report", "--lang", "vi", *args)
        assert out.returncode != 0 and said in out.stderr, (args, out.stderr)
    english = collector_cli(seeded, "report", "--lang", "en", "--period", "2026-13")
    assert "--period 2026-13: month 13 is not 01-12" in english.stderr


def test_export_every_format_read_back_and_verified(seeded: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "exports"
    made = collector_cli(
        seeded, "export", "--lang", "vi", "--period", _month_now(), "--out", str(out_dir)
    )
    assert made.returncode == 0, made.stderr
    assert "xlsx: canhgac.xlsx" in made.stderr and "pdf: summary.pdf" in made.stderr
    export = Path(made.stdout.strip())
    assert export.parent == out_dir
    key = seeded.parent / "export-signing.key"
    assert key.stat().st_mode & 0o777 == 0o600
    # XLSX, cell by cell: the summary's antivirus row, and each machine's row
    wb = openpyxl.load_workbook(export / "canhgac.xlsx")
    summary = {r[0]: r[1:] for r in wb["summary"].iter_rows(min_row=2, values_only=True)}
    av = summary["Máy có phần mềm diệt virus hoạt động, cập nhật, tự kiểm tra đạt (hiện trạng)"]
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
    software = list(wb["software"].iter_rows(min_row=2, values_only=True))
    assert [(r[1], r[4], r[5], r[8]) for r in software] == [
        ("pc-0", "VNPT-CA Plugin", "1.0.5.2", "hklm64"),
        ("pc-0", "=cmd|' /C calc'!A0", "1", "hklm32"),
    ]
    with (export / "csv" / "software.csv").open(encoding="utf-8-sig", newline="") as f:
        assert list(csv.reader(f))[2][4] == "'=cmd|' /C calc'!A0"  # not a formula in Excel
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
    second = collector_cli(
        seeded, "export", "--lang", "vi", "--period", _month_now(), "--out", str(out_dir)
    )
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
    nowhere = collector_cli(seeded, "export", "--lang", "vi", "--period", _month_now())
    assert nowhere.returncode == 1 and "--out FOLDER is required" in nowhere.stderr
    bad = collector_cli(
        seeded, "export", "--period", _month_now(), "--out", str(tmp_path), "--format", "docx"
    )
    assert bad.returncode == 1 and "choose from" in bad.stderr
    assert list(tmp_path.glob("canhgac-*")) == []


# ---- a simulated month through the real retention pass --------------------------------------

OCTOBER = datetime(2026, 10, 1, tzinfo=ZONE).timestamp()
HOURS = 31 * 24  # October 2026 in Hà Nội: 744 hours
OUTAGE = range(9 * 24, 11 * 24)  # Vinh Quý's fiber cut, 10-11 October: 48 hours
AV_OFF_FROM = 19 * 24  # pc-b's antivirus switched off from 20 October
BACK = OUTAGE.stop * 3600 + 120  # the backlog is delivered 2 minutes after the link is back
LIMIT = 3 * 3600  # the silence limit: a report that arrives later is a cut, however it came
# Hours of the outage whose report came later than the limit (the last 2 came within it).
CUT = sum(1 for h in OUTAGE if BACK - (h * 3600 + 60) > LIMIT)


def _antivirus(on: bool, at: float) -> dict[str, object]:
    state = "on" if on else "off"
    return {
        "products": [{"name": "Windows Defender", "state": state}],
        "realtime": state,
        "signature_updated_at": at - 3600,
    }


@pytest.fixture(params=["hourly", "daily"])
def month(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """October 2026: three machines reporting hourly; Vinh Quý's link cut for 48 hours, its
    reports collected then and delivered when it came back (a replayed backlog); pc-b's
    antivirus off for the last 12 days; pc-d in An Lạc enrolled and never reporting; one
    meeting with a RED room. Rolled up by the real
    retention pass 40 days later, into hourly buckets or (the default past
    `retention.hourly`) daily ones: the figures must be the same."""
    from collector.compliance.loader import load_pack  # noqa: PLC0415
    from collector.config import RetentionConfig  # noqa: PLC0415
    from collector.model import Meeting, MeetingSummary, RoomVerdict  # noqa: PLC0415
    from collector.retention import RetentionPass  # noqa: PLC0415

    db = tmp_path / "c.db"
    config = tmp_path / "collector.yaml"
    config.write_text(
        f"store:\n  url: sqlite:///{db}\nreport_interval: 1h\n"
        f"sites_file: {REPO / 'configs' / 'sites.example.yaml'}\n"
        f"rules:\n  path: {REPO / 'rules'}\n",
        encoding="utf-8",
    )
    store = Store(f"sqlite:///{db}")
    agents = {}
    for name, commune in (("pc-a", "Thanh Nhật"), ("pc-b", "Thanh Nhật"), ("pc-c", "Vinh Quý")):
        place = Placement("Cao Bằng", DISTRICT, commune, "", "workstation")
        _, token = store.create_token(place, 1e9, OCTOBER)
        facts = MachineFacts(f"m-{name}", name, "Windows", "10", "0.1.0")
        agents[name] = store.enroll(token, facts, OCTOBER).agent.agent_id
    for name, agent in agents.items():
        batch: list[tuple[Report, float]] = []
        for h in range(HOURS):
            at = OCTOBER + h * 3600 + 60
            on = not (name == "pc-b" and h >= AV_OFF_FROM)
            late = name == "pc-c" and h in OUTAGE
            received = OCTOBER + BACK if late else at + 5
            # The district's one-stop office system, checked from each machine: unreachable
            # from Vinh Quý while its fiber is cut.
            igate = {
                "name": "VNPT-iGate",
                "url": "https://dichvucong.caobang.gov.vn",
                "ok": not late,
            }
            sections = {"antivirus": _antivirus(on, at), "link": {"http_checks": [igate]}}
            batch.append((Report(h + 1, "b", at, "0.1.0", sections=sections), received))
        batch.sort(key=lambda x: x[1])
        for report, received in batch:
            store.ingest(agent, [report], received)
    # Enrolled in An Lạc on 1 October and never heard from (no report at all).
    place = Placement("Cao Bằng", DISTRICT, "An Lạc", "", "workstation")
    _, token = store.create_token(place, 1e9, OCTOBER)
    store.enroll(token, MachineFacts("m-pc-d", "pc-d", "Windows", "10", "0.1.0"), OCTOBER)
    rules = load_pack(REPO / "rules").agent_rules()
    done = RetentionPass(
        store,
        RetentionConfig(raw=400 * 86400.0)
        if request.param == "daily"
        else RetentionConfig(raw=400 * 86400.0, hourly=399 * 86400.0),
        report_interval=3600.0,
        reachable_within=LIMIT,
        rules=lambda: rules,
        pace=lambda: lambda: None,
    ).run(OCTOBER + 40 * 86400)
    assert done.done["rolled up"] == 3 * HOURS
    meeting = Meeting("r1-20261015", "Giao ban tháng 10", OCTOBER + 14 * 86400 + 8 * 3600, 3600,
                      ("Phòng họp Thanh Nhật", "Phòng họp Vinh Quý"), "recurring")  # fmt: skip
    rooms = (
        RoomVerdict(agents["pc-a"], "Phòng họp Thanh Nhật", "go", "green", (), meeting.starts_at),
        RoomVerdict(
            agents["pc-c"],
            "Phòng họp Vinh Quý",
            "no-go",
            "red",
            ("Không có camera",),
            meeting.starts_at,
        ),
    )
    store.meetings.record_meeting(MeetingSummary(meeting, "no-go", 1, 2, rooms), meeting.starts_at)
    store.close()
    return config


def test_a_month_counts_a_replayed_outage_as_an_outage(month: Path, tmp_path: Path) -> None:
    out = collector_cli(month, "report", "--lang", "vi", "--period", "2026-10", "--json")
    assert out.returncode == 0, out.stderr
    (d,) = json.loads(out.stdout)["districts"]
    period = d["period"]
    shares = period["commune_connected_share"]
    # Every report of Vinh Quý arrived, but those of 46 of its 744 hours days late: cut.
    assert CUT == 46
    assert shares["Vinh Quý"] == pytest.approx((HOURS - CUT) / HOURS)
    assert shares["Thanh Nhật"] == 1.0
    assert shares["An Lạc"] == 0.0  # its one machine never reported: cut all month
    assert shares["Cô Ngân"] is None  # no machine there: unknown, not 0 %
    assert period["communes_connected"] == {"met": 1, "of": 13, "share": 1 / 13}
    # Nothing was lost, only late; pc-d, silent all month, delivered none of its 744.
    assert period["reports_delivered_share"] == pytest.approx(3 / 4)
    igate = period["service_share"]["VNPT-iGate"]
    assert igate["Vinh Quý"] == pytest.approx((HOURS - len(OUTAGE)) / HOURS)
    assert igate["Thanh Nhật"] == 1.0 and igate["An Lạc"] is None  # pc-d never checked
    av = (HOURS + AV_OFF_FROM + HOURS) / (3 * HOURS)
    assert period["machine_share"]["antivirus"] == pytest.approx(av)
    text = collector_cli(month, "report", "--lang", "vi", "--period", "2026-10").stdout
    assert "Xã có kết nối mạng tới huyện từ 95% thời gian trở lên: 8% (1/13)" in text
    assert f"tự kiểm tra đạt (tỷ lệ thời gian): {100 * av:.1f}%" in text
    assert "Cuộc họp trực tuyến: 1 (có phòng không sẵn sàng: 1)" in text
    igate_all = (3 * HOURS - len(OUTAGE)) / (3 * HOURS)
    assert f"Dịch vụ VNPT-iGate trả lời được từ xã: {100 * igate_all:.1f}%" in text
    made = collector_cli(
        month, "export", "--lang", "vi", "--period", "2026-10", "--out", str(tmp_path / "x")
    )
    assert made.returncode == 0, made.stderr
    wb = openpyxl.load_workbook(Path(made.stdout.strip()) / "canhgac.xlsx")
    communes = {r[1]: r for r in wb["communes"].iter_rows(min_row=2, values_only=True)}
    assert communes["Vinh Quý"][2] == pytest.approx((HOURS - CUT) / HOURS)
    assert communes["Vinh Quý"][3] == "không" and communes["Thanh Nhật"][3] == "có"
    rules = {(r[1], r[4]): r for r in wb["rules"].iter_rows(min_row=2, values_only=True)}
    enabled = rules["pc-b", "antivirus.enabled"]
    assert enabled[5] == "Phần mềm diệt virus đang tắt" and enabled[6] == HOURS
    assert enabled[7] == pytest.approx(AV_OFF_FROM / HOURS)
    assert rules["pc-a", "antivirus.enabled"][7] == 1.0
    services = {r[1]: r[3] for r in wb["services"].iter_rows(min_row=2, values_only=True)}
    assert services["Vinh Quý"] == pytest.approx((HOURS - len(OUTAGE)) / HOURS)
    machines = list(wb["machines"].iter_rows(values_only=True))
    col = machines[0].index(
        "Máy có phần mềm diệt virus hoạt động, cập nhật, tự kiểm tra đạt (trong kỳ) (%)"
    )
    by_host = {r[1]: r for r in machines[1:]}
    assert by_host["pc-b"][col] == pytest.approx(AV_OFF_FROM / HOURS)
    meetings = list(wb["meetings"].iter_rows(min_row=2, values_only=True))
    assert [(m[3], m[4], m[5], m[6]) for m in meetings] == [
        ("Phòng họp Thanh Nhật", "go", "green", None),
        ("Phòng họp Vinh Quý", "no-go", "red", "Không có camera"),
    ]


def test_the_month_is_mailed_to_the_district_with_its_pdf(month: Path, tmp_path: Path) -> None:
    """On 1 November at 07:30 the district's leadership gets October's report, its PDF
    attached, and the sealed export is written (once, however often the notifier ticks)."""
    from collector.alerts.notify.config import NotifyConfig  # noqa: PLC0415
    from collector.alerts.notify.notifier import Notifier  # noqa: PLC0415
    from collector.config import load_config  # noqa: PLC0415
    from collector.monthly import MonthlyReport  # noqa: PLC0415
    from collector.sites import load_sites  # noqa: PLC0415
    from tests.integration.smtp_server import parts, smtp_server  # noqa: PLC0415

    exports = tmp_path / "exports"
    with month.open("a", encoding="utf-8") as f:
        f.write(f"reports:\n  exports_dir: {exports}\n")
    cfg = load_config(month)
    sites = load_sites(REPO / "configs" / "sites.example.yaml")
    store = Store(cfg.store.url)
    leader = "lanhdao@halang.gov.vn"
    with smtp_server() as (rec, port):
        notify = NotifyConfig.model_validate(
            {
                "enabled": True,
                "smtp": {
                    "host": "127.0.0.1",
                    "port": port,
                    "security": "plain",
                    "from_address": "canhgac@halang.gov.vn",
                },
                "recipients": [
                    {"name": "lanh-dao", "to": [leader], "role": "district", "district": DISTRICT}
                ],
                "digest": {"daily_at": None, "weekly_on": None},
            }
        )
        n = Notifier(store, notify, sites=sites, monthly=MonthlyReport(store, cfg, sites))
        first = datetime(2026, 11, 1, 7, 31, tzinfo=ZONE).timestamp()
        n.tick(first - 120)  # before its time: nothing
        assert rec.to(leader) == []
        n.tick(first)
        n.tick(first + 300)
    (msg,) = rec.to(leader)
    assert str(msg["Subject"]) == f"[Canh Gác] Báo cáo tháng 10/2026 {DISTRICT}"
    text, _ = parts(msg)
    assert "Xã có kết nối mạng tới huyện từ 95% thời gian trở lên: 8% (1/13)" in text
    (pdf,) = [p for p in msg.iter_attachments()]
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_filename() == f"canhgac-2026-10-{DISTRICT.replace(' ', '_')}.pdf"
    saved = tmp_path / "mailed.pdf"
    saved.write_bytes(pdf.get_content())
    words = subprocess.run(
        ["pdftotext", str(saved), "-"], capture_output=True, text=True, check=True
    )
    assert "Báo cáo an toàn thông tin — Hạ Lang" in unicodedata.normalize("NFC", words.stdout)
    (export,) = list(exports.iterdir())
    assert "Bản xuất kiểm toán: " + str(export) in text
    assert collector_cli(month, "export", "verify", str(export)).returncode == 0
    store.close()
