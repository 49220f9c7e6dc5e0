"""The fleet view rendered from the store at each scrape, and the collector's own metrics."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from collector.metrics import antivirus, hardware, link, meeting_room, security
from collector.metrics.alerts import ALERT_SPECS, AlertCollector
from collector.metrics.base import AGENT_LABELS, Spec, agent_spec, num
from collector.model import AgentRecord
from collector.sites import Sites
from collector.store import Store

__all__ = [
    "AGENT_SPECS",
    "SECTION_METRICS",
    "SERVER_SPECS",
    "SITE_SPECS",
    "SPECS",
    "Exposition",
    "ServerMetrics",
]

# One module per report section: SECTION (its name), SPECS (what it emits),
# render(add, data, now) where `now` is the scrape time (ages are computed then, never stored).
# Adding a section's metrics: write the module, add it here.
SECTION_METRICS: tuple[ModuleType, ...] = (hardware, antivirus, security, link, meeting_room)

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
# What the org tree (sites file) says each place should have: the denominators of coverage.
SITE_LABELS = ("district", "commune", "unit")
SITE_SPECS = (
    Spec(
        "canhgac_site_expected_machines",
        "gauge",
        "Machines a place should have, from the sites file",
        SITE_LABELS,
    ),
    Spec(
        "canhgac_site_expected_meeting_rooms",
        "gauge",
        "Online meeting rooms a place should have, from the sites file",
        SITE_LABELS,
    ),
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

SPECS: tuple[Spec, ...] = FLEET_SPECS + SITE_SPECS + SERVER_SPECS + ALERT_SPECS


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


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _value(v: float) -> str:
    if math.isfinite(v):
        return repr(float(v))
    return "NaN" if math.isnan(v) else ("+Inf" if v > 0 else "-Inf")


class _Samples:
    """Sample lines per declared family, written straight in the text exposition format.

    prometheus_client's MetricFamily objects cost ~8 µs per series to build and format; at
    10,000 agents that alone would exceed a second, so the fleet is rendered here directly.
    """

    def __init__(self, specs: tuple[Spec, ...], fixed: tuple[str, ...]) -> None:
        self.specs = specs
        self.lines: dict[str, list[str]] = {s.name: [] for s in specs}
        self._extra = {s.name: s.labels[len(fixed) :] for s in specs}
        self._fixed = fixed
        self._prefix = ""

    def start(self, values: list[str]) -> None:
        """Label values of the fixed labels for the samples added next."""
        self._prefix = ",".join(
            f'{k}="{_escape(v)}"' for k, v in zip(self._fixed, values, strict=True)
        )

    def add(self, name: str, value: float | None, *extra: str) -> None:
        if value is None:
            return
        labels = self._prefix
        if extra:
            pairs = zip(self._extra[name], extra, strict=True)
            labels += "," + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
        self.lines[name].append(f"{name}{{{labels}}} {_value(value)}\n")

    def text(self) -> str:
        out = []
        for s in self.specs:
            lines = self.lines[s.name]
            if lines:
                help_text = s.help.replace("\\", "\\\\").replace("\n", "\\n")
                out.append(f"# HELP {s.name} {help_text}\n# TYPE {s.name} {s.kind}\n")
                out.extend(lines)
        return "".join(out)


class Exposition:
    """What /metrics serves: the fleet read from the store at each scrape, the org tree's
    targets, and in a prometheus_client registry the collector's own counters (`server`) and
    the compliance view (firing alerts, pass ratios)."""

    def __init__(
        self,
        store: Store,
        stale_after: float,
        sites: Sites | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._stale_after = stale_after
        self._sites = sites
        self._clock = clock
        self.registry = CollectorRegistry(auto_describe=False)
        self.server = ServerMetrics(self.registry)
        # One series per (rule, place), never per agent: cheap enough for prometheus_client.
        self.registry.register(AlertCollector(store))

    def render(self) -> bytes:
        fleet = _Samples(FLEET_SPECS, AGENT_LABELS)
        now = self._clock()
        for agent, snap in self._store.fleet():
            self._agent_series(fleet, agent, snap, now)
        parts = [fleet.text()]
        if self._sites is not None:
            parts.append(_site_text(self._sites))
        return "".join(parts).encode() + generate_latest(self.registry)

    def _agent_series(
        self, out: _Samples, agent: AgentRecord, snap: dict[str, Any], now: float
    ) -> None:
        hw = snap.get("hardware", {})
        host = hw.get("host", {}).get("hostname") or agent.hostname
        p = agent.placement
        out.start([agent.agent_id, p.district, p.commune, p.unit, host, p.role])
        add = out.add
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
                module.render(add, data, now)


def _site_text(sites: Sites) -> str:
    out = _Samples(SITE_SPECS, SITE_LABELS)
    for d in sites.districts:
        places = [(d.name, "", u.name, u.machines, u.meeting_rooms) for u in d.units]
        for c in d.communes:
            places.append((d.name, c.name, "", c.machines, c.meeting_rooms))
            places += [(d.name, c.name, u.name, u.machines, u.meeting_rooms) for u in c.units]
        for district, commune, unit, n_machines, n_rooms in places:
            out.start([district, commune, unit])
            out.add("canhgac_site_expected_machines", n_machines)
            out.add("canhgac_site_expected_meeting_rooms", n_rooms)
    return out.text()
