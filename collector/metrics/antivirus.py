"""Metrics of the antivirus section: per product on/off, and a few per-machine protection facts."""

from __future__ import annotations

from typing import Any

from collector.metrics.base import Add, agent_spec

__all__ = ["SECTION", "SPECS", "render"]

SECTION = "antivirus"

# States that are a certain "not protecting"; "unknown" and "unavailable" emit nothing.
_OFF_STATES = frozenset({"off", "snoozed", "expired", "not_running"})
# clamd without clamonacc scans nothing on access: 0, as "off" (the rules tell them apart).
_REALTIME = {"on": 1.0, "off": 0.0, "not_configured": 0.0}
_SELF_TEST = {"detected": 1.0, "missed": 0.0, "error": 0.0}

SPECS = (
    agent_spec(
        "canhgac_antivirus_enabled",
        "gauge",
        "1 if the antivirus product is on; 0 if off, snoozed, expired or not running",
        "product",
    ),
    agent_spec(
        "canhgac_antivirus_realtime_enabled",
        "gauge",
        "1 if some product scans files in real time (on access), else 0",
    ),
    agent_spec(
        "canhgac_antivirus_signature_age_seconds",
        "gauge",
        "Seconds since the active product's signatures were built or updated, at scrape time",
        age=True,
    ),
    agent_spec(
        "canhgac_antivirus_self_test_ok",
        "gauge",
        "1 if the last EICAR self-test was detected, 0 if missed or failed",
    ),
)


def render(add: Add, av: dict[str, Any]) -> None:
    for product in av.get("products", []):
        state = product.get("state", "")
        value = 1.0 if state == "on" else 0.0 if state in _OFF_STATES else None
        add("canhgac_antivirus_enabled", value, product.get("name", ""))
    add("canhgac_antivirus_realtime_enabled", _REALTIME.get(av.get("realtime", "")))
    add("canhgac_antivirus_signature_age_seconds", av.get("signature_updated_at") or None)
    add("canhgac_antivirus_self_test_ok", _SELF_TEST.get(av.get("clamd", {}).get("self_test", "")))
