"""The district's indicators as metrics: the figures the digest and the report print.

Computed by `collector.indicators.current`, the one definition (docs/indicators.md); the
recording rules in configs/prometheus/canhgac.rules.yml only divide these by their
denominators, so Grafana shows what leadership is mailed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from collector.indicators import MACHINE_INDICATORS, current
from collector.metrics.base import Spec
from collector.sites import Sites
from collector.store import Store

__all__ = ["INDICATOR_SPECS", "IndicatorCollector"]

INDICATOR_SPECS = (
    Spec(
        "canhgac_indicator_machines",
        "gauge",
        "Reporting machines meeting an indicator now (antivirus, firewall, os-updates, "
        "no-risky-services; reporting = machines reporting), per commune",
        ("indicator", "district", "commune"),
    ),
    Spec(
        "canhgac_indicator_machines_enrolled",
        "gauge",
        "Active enrolled machines: the denominator of canhgac_indicator_machines",
        ("district", "commune"),
    ),
    Spec(
        "canhgac_indicator_communes",
        "gauge",
        "Communes meeting an indicator now (connected: some machine reporting; "
        "room-ready: a reporting room whose meeting-room.ready verdict passes), per district",
        ("indicator", "district"),
    ),
    Spec(
        "canhgac_district_communes",
        "gauge",
        "Communes of the district (the sites file's and any an agent is placed in)",
        ("district",),
    ),
)


class IndicatorCollector(Collector):
    """One series per (indicator, commune): a handful per commune whatever the fleet size."""

    def __init__(
        self,
        store: Store,
        stale_after: float,
        sites: Sites | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._stale_after = stale_after
        self._sites = sites
        self._clock = clock

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        machines_s, enrolled_s, communes_s, total_s = INDICATOR_SPECS
        machines = GaugeMetricFamily(machines_s.name, machines_s.help, labels=machines_s.labels)
        enrolled = GaugeMetricFamily(enrolled_s.name, enrolled_s.help, labels=enrolled_s.labels)
        communes = GaugeMetricFamily(communes_s.name, communes_s.help, labels=communes_s.labels)
        total = GaugeMetricFamily(total_s.name, total_s.help, labels=total_s.labels)
        now = self._clock()
        for fig in current(self._store, self._sites, now=now, stale_after=self._stale_after):
            d = fig.district
            for commune in sorted({p.commune for p in fig.places}):
                reporting = fig.reporting(commune)
                enrolled.add_metric([d, commune], float(reporting.of))
                machines.add_metric(["reporting", d, commune], float(reporting.met))
                for ind in MACHINE_INDICATORS:
                    machines.add_metric(
                        [ind.id, d, commune], float(fig.machines(ind.id, commune).met)
                    )
            connected, rooms = fig.communes_connected(), fig.communes_room_ready()
            communes.add_metric(["connected", d], float(connected.met))
            communes.add_metric(["room-ready", d], float(rooms.met))
            total.add_metric([d], float(connected.of))
        yield from (machines, enrolled, communes, total)
