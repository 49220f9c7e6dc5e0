"""Generates the Grafana dashboards in configs/grafana/dashboards/ (run `make dashboards`).

Dashboards are written as data here rather than by hand in JSON so every panel follows the same
conventions (Vietnamese title, English description, the district/commune/host variables) and a
test can run every panel query against a real Prometheus.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DASHBOARDS", "Dashboard", "Panel", "main", "render"]

OUT = Path(__file__).resolve().parents[1] / "configs" / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
AGENT = 'district=~"$district", commune=~"$commune"'
HOST = f'{AGENT}, host=~"$host"'


@dataclass(frozen=True)
class Panel:
    title: str  # Vietnamese, what leadership and IT staff read
    description: str  # English, after the Vietnamese `vi`
    exprs: tuple[tuple[str, str], ...]  # (PromQL, legend in Vietnamese)
    kind: str = "timeseries"  # timeseries | stat | table | bargauge
    unit: str = "short"
    width: int = 12
    height: int = 8
    instant: bool = False
    vi: str = ""  # the description in Vietnamese, shown first
    # Value -> (text, colour): 0/1/2 of a meeting room as Đỏ/Vàng/Xanh, 0/1 as Im lặng/...
    mappings: tuple[tuple[int, str, str], ...] = ()
    # (from value, colour), ascending; the first from None (base): red below 0.8, ...
    thresholds: tuple[tuple[float | None, str], ...] = ()
    # Drill-down: a click on a series opens "commune" (its district and commune) or
    # "machine" (its district, commune and host) with the time range kept.
    link: str = ""


# Where a drill-down goes, and the variables it carries from the clicked series.
DRILL = {
    "commune": (
        "Xem chi tiết xã / Commune detail",
        "/d/canhgac-commune/?${__url_time_range}&var-datasource=${datasource}"
        "&var-district=${__field.labels.district}&var-commune=${__field.labels.commune}",
    ),
    "machine": (
        "Xem chi tiết máy / Machine detail",
        "/d/canhgac-machine/?${__url_time_range}&var-datasource=${datasource}"
        "&var-district=${__field.labels.district}&var-commune=${__field.labels.commune}"
        "&var-host=${__field.labels.host}",
    ),
}
# Common thresholds: a share that should be near 1 (coverage, antivirus, compliance).
SHARE = ((None, "red"), (0.8, "yellow"), (0.95, "green"))
UP_DOWN = ((0, "Im lặng / silent", "red"), (1, "Đang báo cáo / reporting", "green"))
PASS_FAIL = ((0, "Lỗi / failing", "red"), (1, "Đạt / passing", "green"))


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    variables: tuple[str, ...] = ("district", "commune")
    tags: tuple[str, ...] = field(default=("canhgac",))


def _variable(name: str) -> dict[str, Any]:
    parents = {"district": "", "commune": '{district=~"$district"}', "host": f"{{{AGENT}}}"}
    label = {"district": "Huyện", "commune": "Xã / thị trấn", "host": "Máy"}[name]
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": f"label_values(canhgac_agent_up{parents[name]}, {name})"},
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
        "sort": 1,
    }


def _defaults(p: Panel) -> dict[str, Any]:
    out: dict[str, Any] = {"unit": p.unit}
    if p.mappings:
        out["mappings"] = [
            {
                "type": "value",
                "options": {
                    str(value): {"text": text, "color": color, "index": i}
                    for i, (value, text, color) in enumerate(p.mappings)
                },
            }
        ]
    if p.thresholds:
        out["thresholds"] = {
            "mode": "absolute",
            "steps": [{"value": v, "color": c} for v, c in p.thresholds],
        }
        out["color"] = {"mode": "thresholds"}
    if p.link:
        title, url = DRILL[p.link]
        out["links"] = [{"title": title, "url": url}]
    if p.kind == "table" and (p.mappings or p.thresholds):
        out["custom"] = {"cellOptions": {"type": "color-background"}}
    return out


def _panel(p: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {
            "refId": chr(ord("A") + i),
            "datasource": DATASOURCE,
            "expr": expr,
            "legendFormat": legend,
            "instant": p.instant or p.kind in ("stat", "table", "bargauge"),
            "range": not (p.instant or p.kind in ("stat", "table", "bargauge")),
            **({"format": "table"} if p.kind == "table" else {}),
        }
        for i, (expr, legend) in enumerate(p.exprs)
    ]
    panel: dict[str, Any] = {
        "id": pid,
        "type": p.kind,
        "title": p.title,
        "description": f"{p.vi}\n\n{p.description}" if p.vi else p.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": p.height, "w": p.width, "x": x, "y": y},
        "fieldConfig": {"defaults": _defaults(p), "overrides": []},
        "options": {},
        "targets": targets,
    }
    if p.kind == "table":
        panel["transformations"] = [{"id": "merge", "options": {}}]
    return panel


def render(d: Dashboard) -> dict[str, Any]:
    panels, x, y, row_h = [], 0, 0, 0
    for i, p in enumerate(d.panels, start=1):
        if x + p.width > 24:
            x, y, row_h = 0, y + row_h, 0
        panels.append(_panel(p, i, x, y))
        x, row_h = x + p.width, max(row_h, p.height)
    variables = [
        {
            "name": "datasource",
            "label": "Nguồn dữ liệu",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
        },
        *(_variable(v) for v in d.variables),
    ]
    return {
        "uid": d.uid,
        "title": d.title,
        "description": d.description,
        "tags": list(d.tags),
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "1m",
        "time": {"from": "now-24h", "to": "now"},
        "links": [
            {
                "title": "Canh Gác",
                "type": "dashboards",
                "tags": ["canhgac"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "templating": {"list": variables},
        "panels": panels,
    }


DASHBOARDS = (
    Dashboard(
        uid="canhgac-district",
        title="Canh Gác — Tổng quan huyện",
        description="District overview: machines reporting, coverage per commune, disk and CPU.",
        panels=(
            Panel(
                "Máy đang báo cáo",
                "Machines whose agent reported within the stale window.",
                ((f"sum(canhgac_agent_up{{{AGENT}}})", "đang báo cáo"),),
                kind="stat",
                width=6,
                height=5,
                vi="Số máy có agent gửi báo cáo trong khoảng thời gian cho phép.",
            ),
            Panel(
                "Máy đã đăng ký",
                "Enrolled machines (reporting or not).",
                ((f"count(canhgac_agent_up{{{AGENT}}})", "đã đăng ký"),),
                kind="stat",
                width=6,
                height=5,
                vi="Số máy đã đăng ký (đang báo cáo hoặc không).",
            ),
            Panel(
                "Tỷ lệ máy báo cáo / kế hoạch",
                "Coverage: machines reporting over machines the sites file says should exist.",
                (
                    (
                        f"sum(canhgac:agents_reporting:sum{{{AGENT}}})"
                        f" / sum(canhgac:machines_expected:sum{{{AGENT}}})",
                        "bao phủ",
                    ),
                ),
                kind="stat",
                unit="percentunit",
                width=6,
                height=5,
                vi="Độ bao phủ: máy đang báo cáo trên số máy theo kế hoạch trong tệp sites.",
                thresholds=SHARE,
            ),
            Panel(
                "Máy sắp đầy ổ đĩa (< 10 %)",
                "Machines with less than 10 % free on some filesystem.",
                ((f"sum(canhgac:machines_low_disk:count{{{AGENT}}}) or vector(0)", "số máy"),),
                kind="stat",
                width=6,
                height=5,
                vi="Số máy có ổ đĩa còn dưới 10 % dung lượng trống.",
                thresholds=((None, "green"), (1, "red")),
            ),
            Panel(
                "Xã có phòng họp trực tuyến sẵn sàng",
                "Communes with a reporting room GREEN or AMBER (go) now, of the district's "
                "communes: the digest's figure (docs/indicators.md).",
                (
                    (
                        'sum(canhgac_indicator_communes{indicator="room-ready", '
                        'district=~"$district"})',
                        "sẵn sàng",
                    ),
                    ('sum(canhgac_district_communes{district=~"$district"})', "số xã"),
                ),
                kind="stat",
                width=6,
                height=5,
                vi=(
                    "Số xã có phòng họp đang báo cáo ở mức XANH hoặc VÀNG (họp được), trên tổng số "
                    "xã của huyện: đúng chỉ số trong báo cáo tổng hợp."
                ),
            ),
            Panel(
                "Máy có diệt virus hoạt động, cập nhật, tự kiểm tra đạt",
                "Machines meeting the antivirus indicator, of the machines enrolled: the "
                "digest's figure (docs/indicators.md).",
                (
                    (
                        f'sum(canhgac_indicator_machines{{indicator="antivirus", {AGENT}}})'
                        f" / sum(canhgac_indicator_machines_enrolled{{{AGENT}}})",
                        "đạt",
                    ),
                ),
                kind="stat",
                unit="percentunit",
                width=6,
                height=5,
                vi=(
                    "Tỷ lệ máy đạt chỉ số diệt virus (hoạt động, cập nhật, tự kiểm tra đạt) trên số"
                    " máy đã đăng ký: đúng chỉ số trong báo cáo tổng hợp."
                ),
                thresholds=SHARE,
            ),
            Panel(
                "Cảnh báo đang kích hoạt",
                "Firing compliance alerts (0 when none).",
                ((f"sum(canhgac_alert_firing{{{AGENT}}}) or vector(0)", "đang kích hoạt"),),
                kind="stat",
                width=6,
                height=5,
                vi="Số cảnh báo tuân thủ đang kích hoạt (0 khi không có).",
                thresholds=((None, "green"), (1, "red")),
            ),
            Panel(
                "Máy tắt tường lửa",
                "Machines with at least one firewall profile off (0 when none).",
                ((f"sum(canhgac:firewall_off:count{{{AGENT}}}) or vector(0)", "số máy"),),
                kind="stat",
                width=6,
                height=5,
                vi="Số máy có ít nhất một hồ sơ tường lửa đang tắt (0 khi không có).",
                thresholds=((None, "green"), (1, "red")),
            ),
            Panel(
                "Máy chưa cập nhật hệ điều hành > 30 ngày",
                "Machines whose last successful OS update is older than 30 days (0 when none).",
                ((f"sum(canhgac:os_update_stale:count{{{AGENT}}}) or vector(0)", "số máy"),),
                kind="stat",
                width=6,
                height=5,
                vi=(
                    "Số máy có lần cập nhật hệ điều hành thành công gần nhất quá 30 ngày (0 khi "
                    "không có)."
                ),
                thresholds=((None, "green"), (1, "yellow")),
            ),
            Panel(
                "Bao phủ theo xã / thị trấn",
                "Coverage per commune: reporting / expected machines.",
                ((f"canhgac:coverage:ratio{{{AGENT}}}", "{{commune}}"),),
                kind="bargauge",
                unit="percentunit",
                width=12,
                height=10,
                vi=(
                    "Độ bao phủ từng xã: máy đang báo cáo / máy theo kế hoạch. Bấm vào một xã để "
                    "xem chi tiết."
                ),
                thresholds=SHARE,
                link="commune",
            ),
            Panel(
                "Xã / thị trấn × tình trạng",
                "Per commune: machines reporting, enrolled and expected.",
                (
                    (f"canhgac:agents_reporting:sum{{{AGENT}}}", "đang báo cáo"),
                    (f"canhgac:agents_enrolled:count{{{AGENT}}}", "đã đăng ký"),
                    (f"canhgac:machines_expected:sum{{{AGENT}}}", "theo kế hoạch"),
                ),
                kind="table",
                width=12,
                height=10,
                vi=(
                    "Từng xã: số máy đang báo cáo, đã đăng ký và theo kế hoạch. Bấm vào một xã để "
                    "xem chi tiết."
                ),
                link="commune",
            ),
            Panel(
                "CPU trung bình theo xã",
                "Average CPU busy ratio of the machines of each commune.",
                ((f"canhgac:cpu_usage:avg{{{AGENT}}}", "{{commune}}"),),
                unit="percentunit",
                width=24,
                vi="Tỷ lệ CPU bận trung bình của các máy trong từng xã.",
            ),
        ),
    ),
    Dashboard(
        uid="canhgac-commune",
        title="Canh Gác — Chi tiết xã / thị trấn",
        description="Commune detail: every machine of the selected communes.",
        panels=(
            Panel(
                "Máy và trạng thái báo cáo",
                "1 = reporting, 0 = silent, per machine.",
                ((f"canhgac_agent_up{{{AGENT}}}", "{{host}}"),),
                kind="table",
                width=24,
                vi="Từng máy: Đang báo cáo hoặc Im lặng. Bấm vào một máy để xem chi tiết.",
                mappings=UP_DOWN,
                link="machine",
            ),
            Panel(
                "Dung lượng trống thấp nhất",
                "Lowest free-space ratio over the filesystems of each machine.",
                ((f"canhgac:disk_free:ratio{{{AGENT}}}", "{{host}}"),),
                kind="bargauge",
                unit="percentunit",
                vi=(
                    "Tỷ lệ dung lượng trống thấp nhất trong các ổ đĩa của từng máy. Bấm vào một máy"
                    " để xem chi tiết."
                ),
                thresholds=((None, "red"), (0.1, "yellow"), (0.2, "green")),
                link="machine",
            ),
            Panel(
                "Bộ nhớ còn trống",
                "Available memory ratio per machine.",
                ((f"canhgac:memory_available:ratio{{{AGENT}}}", "{{host}}"),),
                unit="percentunit",
                vi="Tỷ lệ bộ nhớ còn trống của từng máy.",
                link="machine",
            ),
            Panel(
                "CPU",
                "CPU busy ratio per machine.",
                ((f"canhgac_cpu_usage_ratio{{{AGENT}}}", "{{host}}"),),
                unit="percentunit",
                width=24,
                vi="Tỷ lệ CPU bận của từng máy.",
                link="machine",
            ),
            Panel(
                "Ổ đĩa sắp hỏng",
                "1 = a drive is failing (SMART, or Windows Unhealthy / Predictive Failure).",
                (
                    (
                        f'canhgac_drive_health{{{AGENT}, state="failing"}}',
                        "{{host}} {{device}}",
                    ),
                ),
                kind="bargauge",
                unit="short",
                vi="1 = ổ đĩa sắp hỏng (SMART không đạt, hoặc Windows báo Unhealthy / "
                "Predictive Failure).",
            ),
            Panel(
                "Đang chạy pin / UPS",
                "1 = on battery or a UPS on battery (mains lost), 0 = mains; machines that "
                "can tell (a battery or a configured UPS) only.",
                ((f"canhgac_power_on_battery{{{AGENT}}}", "{{host}}"),),
                kind="bargauge",
                unit="short",
                vi="1 = đang chạy bằng pin hoặc UPS (mất điện lưới), 0 = điện lưới; chỉ các máy "
                "biết được (có pin hoặc có UPS cấu hình).",
            ),
        ),
    ),
    Dashboard(
        uid="canhgac-machine",
        title="Canh Gác — Chi tiết máy",
        description="Machine detail: hardware health of the selected machines.",
        variables=("district", "commune", "host"),
        panels=(
            Panel(
                "Thông tin máy",
                "OS and agent version.",
                ((f"canhgac_agent_info{{{HOST}}}", "{{host}} {{os}}"),),
                kind="table",
                width=24,
                height=6,
                vi="Hệ điều hành và phiên bản agent.",
            ),
            Panel(
                "CPU",
                "CPU busy ratio.",
                ((f"canhgac_cpu_usage_ratio{{{HOST}}}", "{{host}}"),),
                unit="percentunit",
                vi="Tỷ lệ CPU bận.",
            ),
            Panel(
                "Bộ nhớ",
                "Physical memory available and total.",
                (
                    (f"canhgac_memory_available_bytes{{{HOST}}}", "{{host}} còn trống"),
                    (f"canhgac_memory_total_bytes{{{HOST}}}", "{{host}} tổng"),
                ),
                unit="bytes",
                vi="Bộ nhớ vật lý còn trống và tổng dung lượng.",
            ),
            Panel(
                "Ổ đĩa còn trống",
                "Free bytes per filesystem.",
                ((f"canhgac_disk_free_bytes{{{HOST}}}", "{{host}} {{mountpoint}}"),),
                unit="bytes",
                vi="Dung lượng trống của từng ổ đĩa.",
            ),
            Panel(
                "Nhiệt độ",
                "Hottest reading of any sensor (only machines with readable sensors).",
                ((f"canhgac_temperature_celsius{{{HOST}}}", "{{host}}"),),
                unit="celsius",
                vi="Nhiệt độ cao nhất của các cảm biến (chỉ máy đọc được cảm biến).",
            ),
            Panel(
                "Sức khỏe ổ đĩa",
                "Each drive's health state (ok, warning, failing, unknown): the state at 1.",
                (
                    (
                        f"canhgac_drive_health{{{HOST}}} == 1",
                        "{{host}} {{device}} {{media}} {{state}}",
                    ),
                ),
                kind="table",
                vi="Trạng thái của từng ổ đĩa (ok, warning, failing, unknown).",
            ),
            Panel(
                "Độ mòn SSD",
                "Share of each SSD's rated endurance used (1 = worn out).",
                ((f"canhgac_drive_wear_ratio{{{HOST}}}", "{{host}} {{device}}"),),
                unit="percentunit",
                vi="Phần tuổi thọ ghi đã dùng của mỗi ổ SSD (1 = hết tuổi thọ).",
            ),
            Panel(
                "Pin UPS",
                "Charge of each UPS read through NUT.",
                ((f"canhgac_ups_charge_ratio{{{HOST}}}", "{{host}} {{ups}}"),),
                unit="percentunit",
                vi="Mức pin của từng UPS đọc qua NUT.",
            ),
            Panel(
                "Phần mềm đã cài",
                "Installed programs per machine (the list itself is kept by the collector).",
                ((f"canhgac_software_programs{{{HOST}}}", "{{host}}"),),
                unit="short",
                vi="Số phần mềm đã cài trên mỗi máy (danh sách đầy đủ do máy chủ thu thập lưu).",
            ),
            Panel(
                "Thời gian hoạt động",
                "Time since the machine booted.",
                ((f"time() - canhgac_boot_time_seconds{{{HOST}}}", "{{host}}"),),
                unit="s",
                vi="Thời gian từ lần khởi động gần nhất.",
            ),
            Panel(
                "Lỗi giao diện mạng",
                "Receive and transmit errors per second, all network interfaces together.",
                (
                    (
                        f"rate(canhgac_interface_errors_total{{{HOST}}}[$__rate_interval])",
                        "{{host}}",
                    ),
                ),
                unit="short",
                vi="Lỗi nhận và gửi mỗi giây, cộng mọi giao diện mạng.",
            ),
        ),
    ),
    Dashboard(
        uid="canhgac-security",
        title="Canh Gác — Diệt virus và an ninh",
        description="Antivirus and security posture: products, signatures, firewall, updates.",
        panels=(
            Panel(
                "Tỷ lệ máy có diệt virus hoạt động theo xã",
                "Per commune: machines with working, current, self-tested antivirus, of those "
                "enrolled (docs/indicators.md).",
                ((f"canhgac:antivirus_current:ratio{{{AGENT}}}", "{{commune}}"),),
                kind="bargauge",
                unit="percentunit",
                height=10,
                vi=(
                    "Từng xã: tỷ lệ máy có diệt virus hoạt động, cập nhật và tự kiểm tra đạt, trên "
                    "số máy đã đăng ký."
                ),
                thresholds=SHARE,
                link="commune",
            ),
            Panel(
                "Sản phẩm diệt virus đang bật",
                "Machines per antivirus product whose state is on.",
                (
                    (
                        f"count by (product) (canhgac_antivirus_enabled{{{AGENT}}} == 1)",
                        "{{product}}",
                    ),
                ),
                kind="bargauge",
                height=10,
                vi="Số máy theo từng sản phẩm diệt virus đang bật.",
            ),
            Panel(
                "Máy có diệt virus tắt",
                "Machines where an installed product reports off/expired/not running.",
                ((f"canhgac_antivirus_enabled{{{AGENT}}} == 0", "{{host}} {{product}}"),),
                kind="table",
                vi="Máy có sản phẩm diệt virus đã cài nhưng tắt, hết hạn hoặc không chạy.",
                link="machine",
            ),
            Panel(
                "Tuổi mẫu nhận diện (cũ nhất theo xã)",
                "Oldest antivirus signatures among the machines of each commune.",
                (
                    (
                        f"max by (commune) (canhgac_antivirus_signature_age_seconds{{{AGENT}}})",
                        "{{commune}}",
                    ),
                ),
                unit="s",
                vi="Mẫu nhận diện virus cũ nhất trong các máy của từng xã.",
                thresholds=((None, "green"), (172800, "yellow"), (259200, "red")),
                link="commune",
            ),
            Panel(
                "Máy tắt tường lửa theo hồ sơ",
                "Machines with each firewall profile off; 0 for a profile no machine has off "
                "(the same count for every profile).",
                (
                    (
                        f"count by (profile) (canhgac_firewall_enabled{{{AGENT}}} == 0) or "
                        f"0 * count by (profile) (canhgac_firewall_enabled{{{AGENT}}})",
                        "{{profile}}: tắt",
                    ),
                ),
                kind="bargauge",
                vi=(
                    "Số máy đang tắt tường lửa ở từng hồ sơ (Domain, Private, Public; "
                    "nftables/iptables trên Linux), 0 khi không máy nào tắt."
                ),
                thresholds=((None, "green"), (1, "red")),
            ),
            Panel(
                "Cập nhật hệ điều hành (lâu nhất theo xã)",
                "Days since the last successful OS update, worst machine per commune.",
                (
                    (
                        f"max by (commune) (canhgac_os_update_age_seconds{{{AGENT}}}) / 86400",
                        "{{commune}}",
                    ),
                ),
                unit="d",
                vi=(
                    "Số ngày từ lần cập nhật hệ điều hành thành công gần nhất, máy lâu nhất của "
                    "từng xã."
                ),
            ),
            Panel(
                "Dịch vụ rủi ro đang mở (RDP, SMB, Telnet, VNC)",
                "Risky listeners on non-loopback addresses, per commune.",
                ((f"sum by (commune) (canhgac_risky_listeners{{{AGENT}}})", "{{commune}}"),),
                kind="bargauge",
                width=24,
                vi="Số dịch vụ rủi ro (RDP, SMB, Telnet, VNC) mở ra mạng, theo xã.",
            ),
        ),
    ),
    Dashboard(
        uid="canhgac-link",
        title="Canh Gác — Đường truyền",
        description="LAN and fiber link health: latency, loss, jitter, throughput, services.",
        panels=(
            Panel(
                "Độ trễ trung bình theo đích",
                "Mean ICMP round-trip time per target, averaged over the commune's machines.",
                ((f"canhgac:link_rtt:avg{{{AGENT}}}", "{{commune}} → {{target}}"),),
                unit="s",
                vi="Độ trễ ping trung bình tới từng đích, trung bình trên các máy của xã.",
                thresholds=((None, "green"), (0.1, "yellow"), (0.15, "red")),
            ),
            Panel(
                "Tỷ lệ mất gói theo đích",
                "Share of echo requests without reply, averaged per commune and target.",
                ((f"canhgac:link_loss:avg{{{AGENT}}}", "{{commune}} → {{target}}"),),
                unit="percentunit",
                vi="Tỷ lệ gói ping không được trả lời, trung bình theo xã và đích.",
                thresholds=((None, "green"), (0.01, "yellow"), (0.02, "red")),
            ),
            Panel(
                "Độ dao động (jitter)",
                "Mean absolute difference of consecutive RTTs, per machine and target.",
                ((f"canhgac_link_jitter_seconds{{{AGENT}}}", "{{host}} → {{target}}"),),
                unit="s",
                vi="Chênh lệch trung bình giữa các lần đo độ trễ liên tiếp, theo máy và đích.",
            ),
            Panel(
                "Tốc độ tải từ máy chủ thu thập",
                "Download rate measured with the collector's Throughput call (bit/s).",
                (
                    (
                        f"canhgac_link_throughput_bytes_per_second{{{AGENT}}} * 8",
                        "{{host}}",
                    ),
                ),
                unit="bps",
                vi="Tốc độ tải xuống đo bằng lệnh Throughput của máy chủ thu thập (bit/s).",
            ),
            Panel(
                "Đích không phản hồi",
                "Targets that answered no echo request this cycle (1 = up, 0 = down).",
                (
                    (
                        f"min by (commune, target) (canhgac_link_up{{{AGENT}}})",
                        "{{commune}} → {{target}}",
                    ),
                ),
                kind="table",
                vi="Đích không trả lời ping nào trong chu kỳ này (Lên / Mất).",
                mappings=((0, "Mất / down", "red"), (1, "Lên / up", "green")),
            ),
            Panel(
                "Dịch vụ trực tuyến (HTTP)",
                "1 if the named service answered below HTTP 400, per commune (worst machine).",
                (
                    (
                        f"min by (commune, check) (canhgac_http_check_success{{{AGENT}}})",
                        "{{commune}} {{check}}",
                    ),
                ),
                kind="table",
                vi=(
                    "Dịch vụ trực tuyến trả lời dưới mã HTTP 400 (Đạt / Lỗi), theo xã (máy kém "
                    "nhất)."
                ),
                mappings=PASS_FAIL,
            ),
            Panel(
                "Dịch vụ công (một cửa, văn bản, cổng tỉnh)",
                "Share of each commune's machines reaching each public service declared in the "
                "collector's services: (docs/fleet.md).",
                (
                    (
                        "canhgac:public_service_reachable:ratio"
                        '{district=~"$district", commune=~"$commune"}',
                        "{{commune}} {{service}}",
                    ),
                ),
                kind="table",
                unit="percentunit",
                vi=(
                    "Tỷ lệ máy của xã truy cập được từng dịch vụ công khai báo ở collector "
                    "(services:)."
                ),
            ),
            Panel(
                "Chứng chỉ TLS còn hạn",
                "Seconds until the TLS certificate of each checked service expires.",
                (
                    (
                        f"min by (check) (canhgac_tls_cert_expiry_seconds{{{AGENT}}})",
                        "{{check}}",
                    ),
                ),
                kind="bargauge",
                unit="s",
                vi="Thời gian còn lại trước khi chứng chỉ TLS của từng dịch vụ hết hạn.",
            ),
            Panel(
                "DHCP lạ và xung đột IP",
                "Rogue DHCP servers and IP conflicts seen by the commune's machines.",
                (
                    (
                        f"sum by (commune) (canhgac_dhcp_rogue_servers{{{AGENT}}})",
                        "{{commune}} DHCP lạ",
                    ),
                    (
                        f"sum by (commune) (canhgac_ip_conflicts{{{AGENT}}})",
                        "{{commune}} xung đột IP",
                    ),
                ),
                kind="table",
                vi="Máy chủ DHCP lạ và xung đột địa chỉ IP mà các máy của xã phát hiện.",
            ),
        ),
    ),
    Dashboard(
        uid="canhgac-meeting-rooms",
        title="Canh Gác — Phòng họp trực tuyến",
        description="Online meeting rooms: readiness now (GREEN/AMBER/RED), devices, reasons.",
        panels=(
            Panel(
                "Sẵn sàng / kế hoạch theo huyện",
                "Rooms ready (GREEN or AMBER) and rooms planned, per district.",
                (
                    ('canhgac:meeting_rooms_ready:count{district=~"$district"}', "sẵn sàng"),
                    ('canhgac:meeting_rooms_expected:sum{district=~"$district"}', "theo kế hoạch"),
                ),
                kind="stat",
                width=24,
                height=5,
                vi="Số phòng họp sẵn sàng (XANH hoặc VÀNG) và số phòng theo kế hoạch, theo huyện.",
            ),
            Panel(
                "Trạng thái từng phòng",
                "Readiness per room: GREEN, AMBER or RED (2, 1, 0).",
                ((f"canhgac_meeting_room_ready{{{AGENT}}}", "{{commune}} {{unit}} {{host}}"),),
                kind="table",
                height=10,
                vi="Mức sẵn sàng của từng phòng họp: Xanh, Vàng hoặc Đỏ.",
                mappings=(
                    (0, "Đỏ / RED", "red"),
                    (1, "Vàng / AMBER", "yellow"),
                    (2, "Xanh / GREEN", "green"),
                ),
                link="machine",
            ),
            Panel(
                "Số lý do chưa sẵn sàng",
                "Reasons listed by each room's last readiness check.",
                ((f"canhgac_meeting_room_reasons{{{AGENT}}}", "{{commune}} {{host}}"),),
                kind="bargauge",
                height=10,
                vi="Số lý do chưa sẵn sàng trong lần kiểm tra gần nhất của từng phòng.",
            ),
            Panel(
                "Kiểm tra thiết bị và đường truyền",
                "Each check of each room: 1 passing, 0 failing.",
                (
                    (
                        f"min by (check) (canhgac_meeting_room_check_ok{{{AGENT}}})",
                        "{{check}}",
                    ),
                ),
                kind="bargauge",
                width=24,
                vi="Từng mục kiểm tra (thiết bị, đường truyền) của các phòng: Đạt hoặc Lỗi.",
                mappings=PASS_FAIL,
            ),
        ),
    ),
    Dashboard(
        uid="canhgac-compliance",
        title="Canh Gác — Tuân thủ",
        description="Compliance: pass ratio per rule and place, firing alerts.",
        panels=(
            Panel(
                "Tỷ lệ đạt theo quy tắc",
                "Share of judged machines or places passing each rule.",
                (
                    (
                        f"avg by (rule) (canhgac_compliance_pass_ratio{{{AGENT}}})",
                        "{{rule}}",
                    ),
                ),
                kind="bargauge",
                unit="percentunit",
                height=12,
                vi="Tỷ lệ máy hoặc địa bàn đạt từng quy tắc.",
                thresholds=SHARE,
            ),
            Panel(
                "Tỷ lệ đạt theo xã",
                "Per commune and rule: share passing.",
                ((f"canhgac_compliance_pass_ratio{{{AGENT}}}", "{{commune}} {{rule}}"),),
                kind="table",
                height=12,
                vi="Từng xã và quy tắc: tỷ lệ đạt.",
                thresholds=SHARE,
                link="commune",
            ),
            Panel(
                "Cảnh báo đang kích hoạt theo mức độ",
                "Firing alerts per severity (0 when none).",
                (
                    (
                        f"sum by (severity) (canhgac_alert_firing{{{AGENT}}}) or vector(0)",
                        "{{severity}}",
                    ),
                ),
                kind="bargauge",
                width=24,
                vi="Số cảnh báo đang kích hoạt theo mức độ (0 khi không có).",
            ),
        ),
    ),
    Dashboard(
        uid="canhgac-collector",
        title="Canh Gác — Sức khỏe máy chủ thu thập",
        description="Collector self-health: ingest, rejections, latency, enrollments, mail "
        "outbox, alert timer, store writes, process.",
        variables=(),
        panels=(
            Panel(
                "Báo cáo lưu mỗi giây",
                "Reports newly stored per second, and duplicates acked again.",
                (
                    (
                        "sum by (instance) (rate(canhgac_collector_reports_stored_total"
                        "[$__rate_interval]))",
                        "{{instance}} đã lưu",
                    ),
                    (
                        "sum by (instance) (rate(canhgac_collector_reports_duplicate_total"
                        "[$__rate_interval]))",
                        "{{instance}} trùng",
                    ),
                ),
                unit="reqps",
                vi="Số báo cáo mới được lưu mỗi giây, và báo cáo trùng được xác nhận lại.",
            ),
            Panel(
                "Độ trễ xử lý (p99)",
                "99th percentile time to handle a gRPC call, by method.",
                (
                    (
                        "histogram_quantile(0.99, sum by (le, method) (rate("
                        "canhgac_collector_rpc_duration_seconds_bucket[$__rate_interval])))",
                        "{{method}}",
                    ),
                ),
                unit="s",
                vi="Thời gian xử lý một lệnh gRPC ở phân vị 99, theo lệnh.",
            ),
            Panel(
                "Yêu cầu bị từ chối",
                "Calls or reports refused per second, by reason (0 when none).",
                (
                    (
                        "sum by (reason) (rate(canhgac_collector_rejections_total"
                        "[$__rate_interval])) or vector(0)",
                        "{{reason}}",
                    ),
                ),
                unit="reqps",
                vi="Số lệnh hoặc báo cáo bị từ chối mỗi giây, theo lý do (0 khi không có).",
            ),
            Panel(
                "Thư chờ gửi và thư lỗi",
                "Mail outbox by state (pending waits for its first attempt or a retry; failed "
                "gave up), and failed delivery attempts per second.",
                (
                    (
                        'max by (state) (canhgac_collector_mail_outbox_messages{state=~"pending|'
                        'failed|partial"})',
                        "{{state}}",
                    ),
                    (
                        "sum by (instance) (rate(canhgac_collector_mail_send_failures_total"
                        "[$__rate_interval]))",
                        "{{instance}} gửi lỗi / giây",
                    ),
                ),
                vi=(
                    "Thư trong hộp thư đi theo trạng thái (pending: chờ gửi hoặc chờ thử lại; "
                    "failed: đã bỏ) và số lần gửi lỗi mỗi giây."
                ),
            ),
            Panel(
                "Độ trễ của bộ đánh giá cảnh báo",
                "How long the latest alert timer tick waited before it ran, and how long it took.",
                (
                    ("canhgac_collector_alert_timer_lag_seconds", "{{instance}} chờ"),
                    ("canhgac_collector_alert_tick_duration_seconds", "{{instance}} chạy"),
                ),
                unit="s",
                vi="Lần đánh giá cảnh báo gần nhất phải chờ bao lâu mới chạy, và chạy mất bao lâu.",
                thresholds=((None, "green"), (15, "yellow"), (60, "red")),
            ),
            Panel(
                "Lỗi ghi cơ sở dữ liệu",
                "Failed store writes per second, by part (0 when none): disk full, database down.",
                (
                    (
                        "sum by (part) (rate(canhgac_collector_store_write_errors_total"
                        "[$__rate_interval])) or vector(0)",
                        "{{part}}",
                    ),
                ),
                unit="reqps",
                vi="Số lần ghi cơ sở dữ liệu lỗi mỗi giây, theo phần (0 khi không có): đầy đĩa "
                "hoặc máy chủ cơ sở dữ liệu ngừng.",
                thresholds=((None, "green"), (0.0001, "red")),
            ),
            Panel(
                "Bộ nhớ của tiến trình",
                "Resident memory of each collector process.",
                (("process_resident_memory_bytes", "{{instance}} bộ nhớ"),),
                unit="bytes",
                vi="Bộ nhớ thường trú của từng tiến trình máy chủ thu thập.",
            ),
            Panel(
                "Đăng ký mới",
                "Successful enrollments (cumulative).",
                (("sum(canhgac_collector_enrollments_total)", "lượt đăng ký"),),
                kind="stat",
                vi="Tổng số lượt đăng ký thành công.",
            ),
        ),
    ),
)


def main(argv: list[str] | None = None) -> int:
    """Write every dashboard; with --check, fail if a committed file differs."""
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    stale = []
    for d in DASHBOARDS:
        path = OUT / f"{d.uid}.json"
        text = json.dumps(render(d), ensure_ascii=False, indent=2) + "\n"
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"dashboards out of date (run `make dashboards`): {', '.join(stale)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
