"""Compliance metrics: firing alerts and pass ratios per rule and place, read from the store."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from collector.metrics.base import Spec
from collector.store import Store

__all__ = ["ALERT_SPECS", "AlertCollector"]

ALERT_SPECS = (
    Spec(
        "canhgac_alert_firing",
        "gauge",
        "Firing alerts by rule, severity and place",
        ("rule", "severity", "district", "commune"),
    ),
    Spec(
        "canhgac_compliance_pass_ratio",
        "gauge",
        "Share of judged subjects whose latest verdict on the rule passes (0-1)",
        ("rule", "district", "commune"),
    ),
)


class AlertCollector(Collector):
    """One series per (rule, place), never per agent: cheap at 10,000 agents."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        firing_spec, ratio_spec = ALERT_SPECS
        firing = GaugeMetricFamily(firing_spec.name, firing_spec.help, labels=firing_spec.labels)
        for rule, severity, district, commune, n in self._store.alerts.firing_counts():
            firing.add_metric([rule, severity, district, commune], float(n))
        ratio = GaugeMetricFamily(ratio_spec.name, ratio_spec.help, labels=ratio_spec.labels)
        for rule, district, commune, passing, judged in self._store.alerts.pass_counts():
            ratio.add_metric([rule, district, commune], passing / judged)
        yield firing
        yield ratio
