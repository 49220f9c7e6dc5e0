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
    description: str  # English
    exprs: tuple[tuple[str, str], ...]  # (PromQL, legend)
    kind: str = "timeseries"  # timeseries | stat | table | bargauge
    unit: str = "short"
    width: int = 12
    height: int = 8
    instant: bool = False


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
        "description": p.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": p.height, "w": p.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
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
                ((f"sum(canhgac_agent_up{{{AGENT}}})", "reporting"),),
                kind="stat",
                width=6,
                height=5,
            ),
            Panel(
                "Máy đã đăng ký",
                "Enrolled machines (reporting or not).",
                ((f"count(canhgac_agent_up{{{AGENT}}})", "enrolled"),),
                kind="stat",
                width=6,
                height=5,
            ),
            Panel(
                "Tỷ lệ máy báo cáo / kế hoạch",
                "Coverage: machines reporting over machines the sites file says should exist.",
                (
                    (
                        f"sum(canhgac:agents_reporting:sum{{{AGENT}}})"
                        f" / sum(canhgac:machines_expected:sum{{{AGENT}}})",
                        "coverage",
                    ),
                ),
                kind="stat",
                unit="percentunit",
                width=6,
                height=5,
            ),
            Panel(
                "Máy sắp đầy ổ đĩa (< 10 %)",
                "Machines with less than 10 % free on some filesystem.",
                ((f"sum(canhgac:machines_low_disk:count{{{AGENT}}}) or vector(0)", "machines"),),
                kind="stat",
                width=6,
                height=5,
            ),
            Panel(
                "Xã có phòng họp trực tuyến sẵn sàng",
                "Communes with a reporting room GREEN or AMBER (go) now, of the district's "
                "communes: the digest's figure (docs/indicators.md).",
                (
                    (
                        'sum(canhgac_indicator_communes{indicator="room-ready", '
                        'district=~"$district"})',
                        "ready",
                    ),
                    ('sum(canhgac_district_communes{district=~"$district"})', "communes"),
                ),
                kind="stat",
                width=6,
                height=5,
            ),
            Panel(
                "Máy có diệt virus hoạt động, cập nhật, tự kiểm tra đạt",
                "Machines meeting the antivirus indicator, of the machines enrolled: the "
                "digest's figure (docs/indicators.md).",
                (
                    (
                        f'sum(canhgac_indicator_machines{{indicator="antivirus", {AGENT}}})'
                        f" / sum(canhgac_indicator_machines_enrolled{{{AGENT}}})",
                        "current",
                    ),
                ),
                kind="stat",
                unit="percentunit",
                width=6,
                height=5,
            ),
            Panel(
                "Cảnh báo đang kích hoạt",
                "Firing compliance alerts (0 when none).",
                ((f"sum(canhgac_alert_firing{{{AGENT}}}) or vector(0)", "firing"),),
                kind="stat",
                width=6,
                height=5,
            ),
            Panel(
                "Máy tắt tường lửa",
                "Machines with at least one firewall profile off (0 when none).",
                ((f"sum(canhgac:firewall_off:count{{{AGENT}}}) or vector(0)", "machines"),),
                kind="stat",
                width=6,
                height=5,
            ),
            Panel(
                "Máy chưa cập nhật hệ điều hành > 30 ngày",
                "Machines whose last successful OS update is older than 30 days (0 when none).",
                ((f"sum(canhgac:os_update_stale:count{{{AGENT}}}) or vector(0)", "machines"),),
                kind="stat",
                width=6,
                height=5,
            ),
            Panel(
                "Bao phủ theo xã / thị trấn",
                "Coverage per commune: reporting / expected machines.",
                ((f"canhgac:coverage:ratio{{{AGENT}}}", "{{commune}}"),),
                kind="bargauge",
                unit="percentunit",
                width=12,
                height=10,
            ),
            Panel(
                "Xã / thị trấn × tình trạng",
                "Per commune: machines reporting, enrolled and expected.",
                (
                    (f"canhgac:agents_reporting:sum{{{AGENT}}}", "reporting"),
                    (f"canhgac:agents_enrolled:count{{{AGENT}}}", "enrolled"),
                    (f"canhgac:machines_expected:sum{{{AGENT}}}", "expected"),
                ),
                kind="table",
                width=12,
                height=10,
            ),
            Panel(
                "CPU trung bình theo xã",
                "Average CPU busy ratio of the machines of each commune.",
                ((f"canhgac:cpu_usage:avg{{{AGENT}}}", "{{commune}}"),),
                unit="percentunit",
                width=24,
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
            ),
            Panel(
                "Dung lượng trống thấp nhất",
                "Lowest free-space ratio over the filesystems of each machine.",
                ((f"canhgac:disk_free:ratio{{{AGENT}}}", "{{host}}"),),
                kind="bargauge",
                unit="percentunit",
            ),
            Panel(
                "Bộ nhớ còn trống",
                "Available memory ratio per machine.",
                ((f"canhgac:memory_available:ratio{{{AGENT}}}", "{{host}}"),),
                unit="percentunit",
            ),
            Panel(
                "CPU",
                "CPU busy ratio per machine.",
                ((f"canhgac_cpu_usage_ratio{{{AGENT}}}", "{{host}}"),),
                unit="percentunit",
                width=24,
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
            ),
            Panel(
                "CPU",
                "CPU busy ratio.",
                ((f"canhgac_cpu_usage_ratio{{{HOST}}}", "{{host}}"),),
                unit="percentunit",
            ),
            Panel(
                "Bộ nhớ",
                "Physical memory available and total.",
                (
                    (f"canhgac_memory_available_bytes{{{HOST}}}", "{{host}} available"),
                    (f"canhgac_memory_total_bytes{{{HOST}}}", "{{host}} total"),
                ),
                unit="bytes",
            ),
            Panel(
                "Ổ đĩa còn trống",
                "Free bytes per filesystem.",
                ((f"canhgac_disk_free_bytes{{{HOST}}}", "{{host}} {{mountpoint}}"),),
                unit="bytes",
            ),
            Panel(
                "Nhiệt độ",
                "Hottest reading of any sensor (only machines with readable sensors).",
                ((f"canhgac_temperature_celsius{{{HOST}}}", "{{host}}"),),
                unit="celsius",
            ),
            Panel(
                "Thời gian hoạt động",
                "Time since the machine booted.",
                ((f"time() - canhgac_boot_time_seconds{{{HOST}}}", "{{host}}"),),
                unit="s",
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
            ),
            Panel(
                "Máy có diệt virus tắt",
                "Machines where an installed product reports off/expired/not running.",
                ((f"canhgac_antivirus_enabled{{{AGENT}}} == 0", "{{host}} {{product}}"),),
                kind="table",
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
            ),
            Panel(
                "Tường lửa theo hồ sơ",
                "Machines with each firewall profile on (1) or off (0).",
                (
                    (
                        f"count by (profile) (canhgac_firewall_enabled{{{AGENT}}} == 0) or "
                        f"count by (profile) (canhgac_firewall_enabled{{{AGENT}}})",
                        "{{profile}}",
                    ),
                ),
                kind="bargauge",
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
            ),
            Panel(
                "Dịch vụ rủi ro đang mở (RDP, SMB, Telnet, VNC)",
                "Risky listeners on non-loopback addresses, per commune.",
                ((f"sum by (commune) (canhgac_risky_listeners{{{AGENT}}})", "{{commune}}"),),
                kind="bargauge",
                width=24,
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
            ),
            Panel(
                "Tỷ lệ mất gói theo đích",
                "Share of echo requests without reply, averaged per commune and target.",
                ((f"canhgac:link_loss:avg{{{AGENT}}}", "{{commune}} → {{target}}"),),
                unit="percentunit",
            ),
            Panel(
                "Độ dao động (jitter)",
                "Mean absolute difference of consecutive RTTs, per machine and target.",
                ((f"canhgac_link_jitter_seconds{{{AGENT}}}", "{{host}} → {{target}}"),),
                unit="s",
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
            ),
            Panel(
                "DHCP lạ và xung đột IP",
                "Rogue DHCP servers and IP conflicts seen by the commune's machines.",
                (
                    (
                        f"sum by (commune) (canhgac_dhcp_rogue_servers{{{AGENT}}})",
                        "{{commune}} DHCP",
                    ),
                    (f"sum by (commune) (canhgac_ip_conflicts{{{AGENT}}})", "{{commune}} IP"),
                ),
                kind="table",
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
                    ('canhgac:meeting_rooms_ready:count{district=~"$district"}', "ready"),
                    ('canhgac:meeting_rooms_expected:sum{district=~"$district"}', "planned"),
                ),
                kind="stat",
                width=24,
                height=5,
            ),
            Panel(
                "Trạng thái từng phòng (2 xanh, 1 vàng, 0 đỏ)",
                "Readiness per room: 2 = GREEN, 1 = AMBER, 0 = RED.",
                ((f"canhgac_meeting_room_ready{{{AGENT}}}", "{{commune}} {{unit}} {{host}}"),),
                kind="table",
                height=10,
            ),
            Panel(
                "Số lý do chưa sẵn sàng",
                "Reasons listed by each room's last readiness check.",
                ((f"canhgac_meeting_room_reasons{{{AGENT}}}", "{{commune}} {{host}}"),),
                kind="bargauge",
                height=10,
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
            ),
            Panel(
                "Tỷ lệ đạt theo xã",
                "Per commune and rule: share passing.",
                ((f"canhgac_compliance_pass_ratio{{{AGENT}}}", "{{commune}} {{rule}}"),),
                kind="table",
                height=12,
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
            ),
        ),
    ),
    Dashboard(
        uid="canhgac-collector",
        title="Canh Gác — Sức khỏe máy chủ thu thập",
        description="Collector self-health: ingest, rejections, latency, enrollments.",
        variables=(),
        panels=(
            Panel(
                "Báo cáo lưu mỗi giây",
                "Reports newly stored per second, and duplicates acked again.",
                (
                    (
                        "sum by (instance) (rate(canhgac_collector_reports_stored_total"
                        "[$__rate_interval]))",
                        "{{instance}} stored",
                    ),
                    (
                        "sum by (instance) (rate(canhgac_collector_reports_duplicate_total"
                        "[$__rate_interval]))",
                        "{{instance}} duplicate",
                    ),
                ),
                unit="reqps",
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
            ),
            Panel(
                "Đăng ký mới",
                "Successful enrollments (cumulative).",
                (("sum(canhgac_collector_enrollments_total)", "enrollments"),),
                kind="stat",
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
