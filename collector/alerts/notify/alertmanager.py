"""Optional: firing and resolved alerts POSTed to Alertmanager's v2 API."""

from __future__ import annotations

import datetime
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from canhgac_common.text import printable
from collector.alerts.notify.config import AlertmanagerConfig
from collector.model import Alert, Labels

__all__ = ["AlertmanagerForwarder"]

log = logging.getLogger(__name__)

# Alertmanager resolves an alert by itself when endsAt passes without a re-send; four
# re-send periods ride over a missed post or two (what Prometheus does).
_ENDS_AFTER_RESENDS = 4


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat().replace("+00:00", "Z")


class AlertmanagerForwarder:
    """Re-sends every notified firing alert of `severities` each `resend_every`; an alert
    that left the firing set is sent once more with endsAt = now (resolved)."""

    def __init__(
        self,
        cfg: AlertmanagerConfig,
        describe: Callable[[str], dict[str, str]],
        generator_url: str = "",
    ) -> None:
        self.cfg = cfg
        self._describe = describe  # rule id -> annotations
        self._generator_url = generator_url
        self._sent: dict[tuple[str, str], tuple[Labels, float]] = {}
        self._last_post = float("-inf")

    def _alert(self, labels: Labels, starts: float, ends: float) -> dict[str, Any]:
        lab = {k: v for k, v in labels.as_dict().items() if v}
        lab["alertname"] = lab.pop("rule")
        lab["source"] = "canhgac"
        out: dict[str, Any] = {
            "labels": lab,
            "annotations": self._describe(labels.rule_id),
            "startsAt": _iso(starts),
            "endsAt": _iso(ends),
        }
        if self._generator_url:
            out["generatorURL"] = self._generator_url
        return out

    def tick(self, alerts: Sequence[Alert], now: float) -> None:
        firing = {
            a.key: (a.labels, a.fired_at or a.started_at)
            for a in alerts
            if a.state == "firing" and a.notified and a.labels.severity in self.cfg.severities
        }
        resolved = {k: v for k, v in self._sent.items() if k not in firing}
        unchanged = not resolved and firing.keys() == self._sent.keys()
        if unchanged and now - self._last_post < self.cfg.resend_every:
            return
        body = [
            self._alert(lab, starts, now + _ENDS_AFTER_RESENDS * self.cfg.resend_every)
            for lab, starts in firing.values()
        ] + [self._alert(lab, starts, now) for lab, starts in resolved.values()]
        if not body:
            self._sent = firing
            return
        if self._post(body):
            self._sent = firing
            self._last_post = now

    def _post(self, body: list[dict[str, Any]]) -> bool:
        req = urllib.request.Request(  # noqa: S310 (the configured http(s) URL)
            self.cfg.url.rstrip("/") + "/api/v2/alerts",
            data=json.dumps(body, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=self.cfg.timeout) as resp:  # noqa: S310
                resp.read()
        except (urllib.error.URLError, OSError) as e:
            log.warning("alertmanager %s: %s (will retry)", self.cfg.url, printable(e))
            return False
        return True
