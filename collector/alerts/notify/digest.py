"""The district leadership digest: the indicators it reports, open incidents, what got fixed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from collector.model import MEETING_ROLE, MEETING_SECTION
from collector.sites import Sites
from collector.store import Store

__all__ = ["build_digest"]

# Antivirus counts as current when its signatures are at most this old (the shipped rule's).
SIGNATURES_MAX_AGE = 3 * 86400.0


def _pct(n: int, d: int) -> str:
    return f"{100.0 * n / d:.0f}% ({n}/{d})" if d else "-"


def build_digest(
    store: Store,
    district: str,
    *,
    period: str,
    since: float,
    now: float,
    stale_after: float,
    sites: Sites | None,
    title: Callable[[str], str],
) -> dict[str, Any]:
    """Template context for one district. `title(rule_id)` names a rule in the language."""
    machines = [
        (a, snap)
        for a, snap in store.fleet()
        if a.placement.district == district and a.revoked_at is None
    ]
    reporting = [a for a, _ in machines if a.last_seen_at and a.last_seen_at >= now - stale_after]
    av_ok = 0
    for _, snap in machines:
        av = snap.get("antivirus") or {}
        if av.get("realtime") == "on" and av.get("signature_updated_at", 0) >= now - (
            SIGNATURES_MAX_AGE
        ):
            av_ok += 1
    communes = {a.placement.commune for a, _ in machines if a.placement.commune}
    if sites is not None:
        for d in sites.districts:
            if d.name == district:
                communes |= {c.name for c in d.communes}
    # A commune counts when a room of it reports and its last check says GREEN or AMBER (go).
    is_reporting = {a.agent_id for a in reporting}
    rooms = {
        a.placement.commune
        for a, snap in machines
        if a.agent_id in is_reporting
        and a.placement.role == MEETING_ROLE
        and a.placement.commune
        and (snap.get(MEETING_SECTION) or {}).get("readiness", {}).get("state")
        in ("green", "amber")
    }
    open_by: dict[str, list[str]] = {}
    for al in store.alerts.open_alerts():
        if al.state == "firing" and al.labels.district == district:
            open_by.setdefault(al.labels.commune, []).append(title(al.labels.rule_id))
    fixed = [
        {
            "title": title(h.labels.rule_id),
            "place": " / ".join(x for x in (h.labels.commune, h.labels.unit) if x),
            "at": h.at,
        }
        for h in store.mail.resolved_between(district, since, now)
    ]
    return {
        "period": period,
        "district": district,
        "generated_at": now,
        "rooms_ok": len(rooms & communes),
        "rooms_total": len(communes),
        "av_pct": _pct(av_ok, len(machines)),
        "reporting_pct": _pct(len(reporting), len(machines)),
        "open_by_commune": [
            {"commune": c, "count": len(t), "titles": sorted(set(t))}
            for c, t in sorted(open_by.items())
        ],
        "fixed": fixed,
    }
