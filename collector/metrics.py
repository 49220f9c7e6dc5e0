"""Every metric the collector exposes is declared here; /metrics reads the store per scrape."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from collector.model import AgentRecord
from collector.store import Store

__all__ = ["AGENT_LABELS", "SPECS", "FleetCollector", "ServerMetrics", "Spec", "build_registry"]

AGENT_LABELS = ("agent_id", "district", "commune", "unit", "host", "role")


@dataclass(frozen=True)
class Spec:
    name: str  # as exposed (counters end in _total)
    kind: Literal["gauge", "counter", "histogram"]
    help: str
    labels: tuple[str, ...]


def _agent(name: str, kind: Literal["gauge", "counter"], help: str, *extra: str) -> Spec:
    return Spec(name, kind, help, AGENT_LABELS + extra)


# Per-agent series are kept lean (a handful per machine): /metrics must render 10,000 agents.
FLEET_SPECS = (
    _agent("canhgac_agent_up", "gauge", "1 if the agent reported within the stale window, else 0"),
    _agent(
        "canhgac_agent_last_report_timestamp_seconds",
        "gauge",
        "Collection time (agent clock) of the newest stored report",
    ),
    _agent(
        "canhgac_agent_info",
        "gauge",
        "Constant 1; OS and agent version as labels",
        "os",
        "os_version",
        "agent_version",
    ),
    _agent(
        "canhgac_agent_spool_dropped_reports_total",
        "counter",
        "Reports the agent dropped because its spool was full or too old",
    ),
    _agent("canhgac_probe_success", "gauge", "1 if the probe's last run succeeded", "probe"),
    _agent("canhgac_cpu_usage_ratio", "gauge", "CPU busy fraction over the last cycle (0-1)"),
    _agent("canhgac_cpu_logical_cores", "gauge", "Logical CPU cores"),
    _agent("canhgac_load1", "gauge", "1-minute load average"),
    _agent("canhgac_memory_total_bytes", "gauge", "Physical memory"),
    _agent("canhgac_memory_available_bytes", "gauge", "Memory available without swapping"),
    _agent("canhgac_swap_total_bytes", "gauge", "Swap / page file size"),
    _agent("canhgac_swap_used_bytes", "gauge", "Swap / page file in use"),
    _agent(
        "canhgac_disk_size_bytes", "gauge", "Size of a mounted filesystem", "mountpoint", "fstype"
    ),
    _agent(
        "canhgac_disk_free_bytes",
        "gauge",
        "Free space of a mounted filesystem",
        "mountpoint",
        "fstype",
    ),
    _agent("canhgac_boot_time_seconds", "gauge", "Unix time the machine booted"),
    _agent("canhgac_temperature_celsius", "gauge", "Hottest reading of a sensor", "sensor"),
    _agent("canhgac_battery_ratio", "gauge", "Battery charge (0-1), only on machines with one"),
    _agent("canhgac_interface_up", "gauge", "1 if the network interface is up", "interface"),
    _agent(
        "canhgac_interface_errors_total",
        "counter",
        "Receive/transmit errors of a network interface",
        "interface",
        "direction",
    ),
)

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

SPECS = FLEET_SPECS + SERVER_SPECS


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


def _num(d: dict[str, Any], *path: str) -> float | None:
    v: Any = d
    for p in path:
        if not isinstance(v, dict) or p not in v:
            return None
        v = v[p]
    return float(v) if isinstance(v, int | float) else None


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
        add("canhgac_agent_spool_dropped_reports_total", _num(snap, "spool", "dropped_total"))
        for section, status in sorted(snap.items()):
            if section.startswith("status:"):
                add("canhgac_probe_success", 1.0 if status.get("ok") else 0.0, section[7:])
        if not hw:
            return
        add("canhgac_cpu_usage_ratio", _num(hw, "cpu", "usage_ratio"))
        add("canhgac_cpu_logical_cores", _num(hw, "cpu", "logical_cores"))
        add("canhgac_load1", _num(hw, "cpu", "load1"))
        add("canhgac_memory_total_bytes", _num(hw, "memory", "total_bytes"))
        add("canhgac_memory_available_bytes", _num(hw, "memory", "available_bytes"))
        add("canhgac_swap_total_bytes", _num(hw, "memory", "swap_total_bytes"))
        add("canhgac_swap_used_bytes", _num(hw, "memory", "swap_used_bytes"))
        add("canhgac_boot_time_seconds", _num(hw, "host", "boot_time"))
        for d in hw.get("disks", []):
            add("canhgac_disk_size_bytes", _num(d, "total_bytes"), d["mountpoint"], d["fstype"])
            add("canhgac_disk_free_bytes", _num(d, "free_bytes"), d["mountpoint"], d["fstype"])
        hottest: dict[str, float] = {}
        for t in hw.get("temperatures", []):
            hottest[t["sensor"]] = max(hottest.get(t["sensor"], float("-inf")), t["celsius"])
        for sensor, celsius in sorted(hottest.items()):
            add("canhgac_temperature_celsius", celsius, sensor)
        battery = _num(hw, "battery", "percent")
        add("canhgac_battery_ratio", None if battery is None else battery / 100.0)
        for i in hw.get("interfaces", []):
            add("canhgac_interface_up", 1.0 if i.get("up") else 0.0, i["name"])
            add("canhgac_interface_errors_total", _num(i, "errors_in"), i["name"], "in")
            add("canhgac_interface_errors_total", _num(i, "errors_out"), i["name"], "out")


def build_registry(store: Store, stale_after: float) -> tuple[CollectorRegistry, ServerMetrics]:
    """A fresh registry holding the fleet view and the server's own metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(store, stale_after))
    return registry, ServerMetrics(registry)
