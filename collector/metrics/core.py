"""The fleet view rendered from the store at each scrape, and the collector's own metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from collector.metrics import hardware
from collector.metrics.alerts import ALERT_SPECS, AlertCollector
from collector.metrics.base import Spec, agent_spec, num
from collector.model import AgentRecord
from collector.store import Store

__all__ = [
    "AGENT_SPECS",
    "SECTION_METRICS",
    "SERVER_SPECS",
    "SPECS",
    "FleetCollector",
    "ServerMetrics",
    "build_registry",
]

# One module per report section: SECTION (its name), SPECS (what it emits), render(add, data).
# Adding a section's metrics: write the module, add it here.
SECTION_METRICS: tuple[ModuleType, ...] = (hardware,)

# Series every agent has whatever probes it runs.
AGENT_SPECS = (
    agent_spec(
        "canhgac_agent_up", "gauge", "1 if the agent reported within the stale window, else 0"
    ),
    agent_spec(
        "canhgac_agent_last_report_timestamp_seconds",
        "gauge",
        "Collection time (agent clock) of the newest stored report",
    ),
    agent_spec(
        "canhgac_agent_info",
        "gauge",
        "Constant 1; OS and agent version as labels",
        "os",
        "os_version",
        "agent_version",
    ),
    agent_spec(
        "canhgac_agent_spool_dropped_reports_total",
        "counter",
        "Reports the agent dropped because its spool was full or too old",
    ),
    agent_spec("canhgac_probe_success", "gauge", "1 if the probe's last run succeeded", "probe"),
)
# Per-agent series are kept lean (a handful per machine): /metrics must render 10,000 agents.
FLEET_SPECS = AGENT_SPECS + tuple(spec for m in SECTION_METRICS for spec in m.SPECS)

SERVER_SPECS = (
    Spec("canhgac_collector_reports_received_total", "counter", "Reports received in Submit", ()),
    Spec("canhgac_collector_reports_stored_total", "counter", "Reports newly stored", ()),
    Spec(
        "canhgac_collector_reports_duplicate_total",
        "counter",
        "Reports received again after they were stored (acked again, stored once)",
        (),
    ),
    Spec(
        "canhgac_collector_rejections_total",
        "counter",
        "Calls or reports refused, by reason",
        ("reason",),
    ),
    Spec("canhgac_collector_enrollments_total", "counter", "Successful enrollments", ()),
    Spec(
        "canhgac_collector_rpc_duration_seconds",
        "histogram",
        "Time to handle one gRPC call, by method",
        ("method",),
    ),
)

SPECS: tuple[Spec, ...] = FLEET_SPECS + SERVER_SPECS + ALERT_SPECS


class ServerMetrics:
    """The collector's own counters, registered in the given registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str) -> Counter:
            s = next(s for s in SERVER_SPECS if s.name == name)
            return Counter(name.removesuffix("_total"), s.help, s.labels, registry=registry)

        self.received = counter("canhgac_collector_reports_received_total")
        self.stored = counter("canhgac_collector_reports_stored_total")
        self.duplicate = counter("canhgac_collector_reports_duplicate_total")
        self.rejections = counter("canhgac_collector_rejections_total")
        self.enrollments = counter("canhgac_collector_enrollments_total")
        spec = SERVER_SPECS[-1]
        self.rpc_duration = Histogram(
            spec.name,
            spec.help,
            spec.labels,
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )


class FleetCollector(Collector):
    """Yields per-agent series from the store at scrape time; stale agents only say up=0."""

    def __init__(
        self, store: Store, stale_after: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._stale_after = stale_after
        self._clock = clock

    def describe(self) -> Iterable[Metric]:
        return []  # content depends on the store; do not collect at registration

    def collect(self) -> Iterator[Metric]:
        fam: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        for s in FLEET_SPECS:
            name = s.name.removesuffix("_total") if s.kind == "counter" else s.name
            cls = CounterMetricFamily if s.kind == "counter" else GaugeMetricFamily
            fam[s.name] = cls(name, s.help, labels=s.labels)
        now = self._clock()
        for agent, snap in self._store.fleet():
            self._agent_series(fam, agent, snap, now)
        yield from fam.values()

    def _agent_series(
        self,
        fam: dict[str, GaugeMetricFamily | CounterMetricFamily],
        agent: AgentRecord,
        snap: dict[str, Any],
        now: float,
    ) -> None:
        hw = snap.get("hardware", {})
        host = hw.get("host", {}).get("hostname") or agent.hostname
        p = agent.placement
        base = [agent.agent_id, p.district, p.commune, p.unit, host, p.role]

        def add(name: str, value: float | None, *extra: str) -> None:
            if value is not None:
                fam[name].add_metric(base + list(extra), value)

        up = agent.last_seen_at is not None and now - agent.last_seen_at <= self._stale_after
        add("canhgac_agent_up", 1.0 if up else 0.0)
        add("canhgac_agent_last_report_timestamp_seconds", agent.last_report_at)
        os_name = hw.get("host", {}).get("os_name") or agent.os_name
        os_version = hw.get("host", {}).get("os_version") or agent.os_version
        add("canhgac_agent_info", 1.0, os_name, os_version, agent.agent_version)
        if not up:
            return  # stale values must not pass for current ones
        add("canhgac_agent_spool_dropped_reports_total", num(snap, "spool", "dropped_total"))
        for section, status in sorted(snap.items()):
            if section.startswith("status:"):
                add("canhgac_probe_success", 1.0 if status.get("ok") else 0.0, section[7:])
        for module in SECTION_METRICS:
            data = snap.get(module.SECTION)
            if data:
                module.render(add, data)


def build_registry(store: Store, stale_after: float) -> tuple[CollectorRegistry, ServerMetrics]:
    """A fresh registry holding the fleet view and the server's own metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(store, stale_after))
    registry.register(AlertCollector(store))
    return registry, ServerMetrics(registry)
