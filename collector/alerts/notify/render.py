"""Jinja2 templates (Vietnamese by default, English) to subject, plain text and HTML."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context

from collector.alerts.notify.reasons import reason_sentence

__all__ = ["Rendered", "render_alerts", "render_digest", "render_meeting", "render_test"]

Rendered = tuple[str, str, str]  # subject, text, html

_env = Environment(
    loader=PackageLoader("collector.alerts.notify", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,  # a typo in a template fails the test that renders it
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


@pass_context
def _when(ctx: Context, ts: float | None) -> str:
    """A time in the message's zone, with its offset: "14:05 03/12/2026 (UTC+07:00)"."""
    return _local_time(ts, ctx["zone"])


def _local_time(ts: float | None, zone: datetime.tzinfo) -> str:
    if not ts:
        return "-"
    t = datetime.datetime.fromtimestamp(ts, zone)
    offset = t.strftime("%z")
    return f"{t:%H:%M %d/%m/%Y} (UTC{offset[:3]}:{offset[3:]})"


_env.filters["when"] = _when

_SEVERITY = {
    "vi": {"critical": "nghiêm trọng", "high": "cao", "medium": "trung bình", "low": "thấp"},
    "en": {"critical": "critical", "high": "high", "medium": "medium", "low": "low"},
}
_KIND = {
    "vi": {"firing": "Cảnh báo", "resolved": "Đã khắc phục", "escalation": "Chưa xử lý"},
    "en": {"firing": "Alert", "resolved": "Resolved", "escalation": "Not acknowledged"},
}
# A resolved alert that ended because its machine left (collector.alerts.engine.AGENT_GONE):
# closed, not fixed, and the notice must not read as a fix.
_ENDED = {
    "vi": {"revoked": "Đã đóng: máy bị thu hồi", "retired": "Đã đóng: máy ngừng sử dụng"},
    "en": {"revoked": "Closed: machine revoked", "retired": "Closed: machine retired"},
}


def _both(name: str, lang: str, ctx: Mapping[str, Any]) -> tuple[str, str]:
    text = _env.get_template(f"{name}.{lang}.txt").render(ctx)
    html = _env.get_template(f"{name}.{lang}.html").render(ctx)
    return text, html


def _place(labels: Mapping[str, str]) -> str:
    return " / ".join(
        v for v in (labels.get("district"), labels.get("commune"), labels.get("unit")) if v
    )


def render_alerts(
    items: list[tuple[str, dict[str, Any]]],
    lang: str,
    grafana_url: str,
    rationale: Mapping[str, Mapping[str, str]],
    zone: datetime.tzinfo,
) -> Rendered:
    """One message for every item queued for a recipient: (kind, engine payload)."""
    rows = []
    for kind, p in items:
        labels = p.get("labels", {})
        ended = p.get("ended", "") if kind == "resolved" else ""
        rows.append(
            {
                "kind": kind,
                "kind_text": _ENDED[lang][ended] if ended in _ENDED[lang] else _KIND[lang][kind],
                "ended": ended,
                "title": p["title"][lang],
                "remediation": p["remediation"][lang],
                "rationale": rationale.get(p["rule"], {}).get(lang, ""),
                "severity": _SEVERITY[lang].get(p["severity"], p["severity"]),
                "rule": p["rule"],
                "place": _place(labels),
                "host": labels.get("host", ""),
                "subject": labels.get("subject", ""),
                "since": p.get("started_at"),
                "resolved_at": p.get("resolved_at"),
            }
        )
    first = rows[0]
    if len(rows) == 1:
        subject = f"[Canh Gác] {first['kind_text']} ({first['severity']}): {first['title']}"
        if first["place"]:
            subject += f" — {first['place']}"
    elif lang == "vi":
        subject = f"[Canh Gác] {len(rows)} thông báo cảnh báo"
    else:
        subject = f"[Canh Gác] {len(rows)} alert notifications"
    ctx = {"rows": rows, "grafana_url": grafana_url, "zone": zone}
    text, html = _both("alerts", lang, ctx)
    return subject, text, html


def render_digest(
    digest: Mapping[str, Any], lang: str, grafana_url: str, zone: datetime.tzinfo
) -> Rendered:
    period = digest["period"]
    names = {"vi": {"daily": "hằng ngày", "weekly": "hằng tuần"}, "en": {}}
    if lang == "vi":
        subject = f"[Canh Gác] Báo cáo {names['vi'][period]} {digest['district']}"
    else:
        subject = f"[Canh Gác] {period.capitalize()} digest {digest['district']}"
    text, html = _both("digest", lang, {**digest, "grafana_url": grafana_url, "zone": zone})
    return subject, text, html


_VERDICT = {
    "vi": {"go": "sẵn sàng", "no-go": "không sẵn sàng"},
    "en": {"go": "go", "no-go": "no-go"},
}
_ROOM_STATE = {
    "vi": {"green": "xanh", "amber": "vàng", "red": "đỏ", "silent": "không phản hồi"},
    "en": {"green": "green", "amber": "amber", "red": "red", "silent": "silent"},
}


def render_meeting(summary: Mapping[str, Any], lang: str, grafana_url: str) -> Rendered:
    """A meeting's go/no-go (collector.alerts.notify.meeting.build_meeting_summary)."""
    ready = f"{summary['ready']}/{summary['expected']}"
    if lang == "vi":
        subject = (
            f"[Canh Gác] Họp {summary['starts_at']}: {ready} phòng họp sẵn sàng — "
            f"{summary['title']}"
        )
    else:
        subject = (
            f"[Canh Gác] Meeting {summary['starts_at']}: {ready} rooms ready — {summary['title']}"
        )
    rooms = [
        {
            **room,
            "verdict_text": _VERDICT[lang][room["verdict"]],
            "state_text": _ROOM_STATE[lang].get(room["state"], room["state"]),
            "reasons": [reason_sentence(r, lang) for r in room["reasons"]],
        }
        for room in summary["rooms"]
    ]
    ctx = {
        **summary,
        "rooms": rooms,
        "verdict_text": _VERDICT[lang][summary["verdict"]],
        "grafana_url": grafana_url,
    }
    text, html = _both("meeting", lang, ctx)
    return subject, text, html


def render_test(lang: str) -> Rendered:
    subject = (
        "[Canh Gác] Thư thử nghiệm — cấu hình gửi thư hoạt động"
        if lang == "vi"
        else "[Canh Gác] Test message — mail settings work"
    )
    text, html = _both("test", lang, {})
    return subject, text, html
