"""The district leadership digest: the indicators it reports, open incidents, what got fixed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from collector.alerts.engine import AGENT_GONE
from collector.indicators import MACHINE_INDICATORS, current
from collector.sites import Sites
from collector.store import Store

__all__ = ["build_digest"]


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
    """Template context for one district. `title(rule_id)` names a rule in the language.

    The indicators are `collector.indicators.current`'s: the same figures as the report, the
    export and the dashboards (docs/indicators.md)."""
    figures = {f.district: f for f in current(store, sites, now=now, stale_after=stale_after)}
    rows: list[dict[str, str]] = []
    fig = figures.get(district)
    if fig is not None:
        rows.append(
            {
                "vi": "Xã có kết nối mạng tới huyện",
                "en": "Communes whose network reaches the district",
                "value": str(fig.communes_connected()),
            }
        )
        rows.append(
            {
                "vi": "Xã có phòng họp trực tuyến sẵn sàng",
                "en": "Communes with a ready online meeting room",
                "value": str(fig.communes_room_ready()),
            }
        )
        for ind in MACHINE_INDICATORS:
            rows.append({"vi": ind.vi, "en": ind.en, "value": str(fig.machines(ind.id))})
        rows.append(
            {
                "vi": "Máy đang gửi báo cáo",
                "en": "Machines reporting",
                "value": str(fig.reporting()),
            }
        )
        planned = fig.reporting_of_planned()
        if planned is not None:
            rows.append(
                {
                    "vi": "Máy đang gửi báo cáo trên số máy theo kế hoạch",
                    "en": "Machines reporting of those planned",
                    "value": str(planned),
                }
            )
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
        # Closed because the machine was revoked or retired: not a fix.
        if h.detail not in AGENT_GONE.values()
    ]
    return {
        "period": period,
        "district": district,
        "generated_at": now,
        "indicators": rows,
        "open_by_commune": [
            {"commune": c, "count": len(t), "titles": sorted(set(t))}
            for c, t in sorted(open_by.items())
        ],
        "fixed": fixed,
    }
