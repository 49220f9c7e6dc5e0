"""The fleet view rendered from the store at each scrape, and the collector's own metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from collector.metrics import antivirus, hardware, link, meeting_room, security
from collector.metrics.alerts import ALERT_SPECS, AlertCollector
from collector.metrics.base import AGENT_LABELS, Spec, agent_spec
from collector.metrics.text import Families, Kept, Lines
from collector.sites import Sites
from collector.store import FleetAgent, Store

__all__ = [
    "AGENT_SPECS",
    "SECTION_METRICS",
    "SERVER_SPECS",
    "SITE_SPECS",
    "SPECS",
    "Exposition",
    "ServerMetrics",
]

# One module per report section: SECTION (its name), SPECS (what it emits), render(add, data).
# Output depends on the stored data only (an agent's lines are kept until it changes); ages
# are declared with `age=True` and computed at each scrape. Adding a section's metrics: write
# the module, add it here.
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


_FLEET = Families(FLEET_SPECS, AGENT_LABELS)
_SITES = Families(SITE_SPECS, SITE_LABELS)


class Exposition:
    """What /metrics serves: the fleet read from the store at each scrape, the org tree's
    targets, and in a prometheus_client registry the collector's own counters (`server`) and
    the compliance view (firing alerts, pass ratios).

    Each agent's lines are kept between scrapes, keyed on what the store holds (its row fields,
    whether it is up, and its snapshot's version), so only agents whose stored data
    changed — through this collector or another sharing the store — are read and rendered again.
    """

    def __init__(
        self,
        store: Store,
        stale_after: float,
        sites: Sites | None = None,
        clock: Callable[[], float] = time.time,
        fleet: Callable[[float], bytes] | None = None,
    ) -> None:
        """`fleet` renders the per-agent families as of a time (the collector passes a
        FleetRenderer: another process); by default this object renders them itself."""
        self._store = store
        self._stale_after = stale_after
        self._sites = sites
        self._clock = clock
        self._kept = Kept(_FLEET)
        self._keys: dict[str, tuple[Any, ...]] = {}  # agent_id -> what its kept lines show
        self._lock = threading.Lock()  # concurrent scrapes would race on what is kept
        self._fleet = fleet or (lambda now: self.fleet_text(now).encode())
        self.registry = CollectorRegistry(auto_describe=False)
        self.server = ServerMetrics(self.registry)
        # One series per (rule, place), never per agent: cheap enough for prometheus_client.
        self.registry.register(AlertCollector(store))

    def render(self) -> bytes:
        parts = [self._fleet(self._clock())]
        if self._sites is not None:
            parts.append(_site_text(self._sites).encode())
        return b"".join(parts) + generate_latest(self.registry)

    def fleet_text(self, now: float) -> str:
        """The per-agent families as of `now`: only agents whose stored data changed since
        the previous call are read and rendered again."""
        with self._lock:
            self._refresh(now)
            return self._kept.text(now)

    def _refresh(self, now: float) -> None:
        """Render again the agents whose key changed; drop those no longer active."""
        fleet = self._store.fleet_versions()
        up = {
            a.agent_id: a.last_seen_at is not None and now - a.last_seen_at <= self._stale_after
            for a in fleet
        }
        keys = self._keys
        changed = [a for a in fleet if keys.get(a.agent_id) != _key(a, up[a.agent_id])]
        fresh = self._store.fleet_sections(a.agent_id for a in changed) if changed else {}
        for a in changed:
            data, version = fresh.get(a.agent_id) or ({}, (0, 0))
            lines = self._agent_lines(a, up[a.agent_id], data)
            # Keyed on the version read with the data: if a report landed in between, it is
            # newer than fleet_versions' and the next scrape renders this agent once more.
            keys[a.agent_id] = _key(a._replace(version=version), up[a.agent_id])
            self._kept.put(a.agent_id, lines)
        for gone in keys.keys() - up.keys():  # revoked (or deleted) since the last scrape
            del keys[gone]
            self._kept.drop(gone)

    def _agent_lines(self, agent: FleetAgent, up: bool, snap: dict[str, Any]) -> Lines:
        hw = snap.get("hardware", {})
        host_facts = hw.get("host", {})
        host = host_facts.get("hostname") or agent.hostname
        out = Lines(
            _FLEET, (agent.agent_id, agent.district, agent.commune, agent.unit, host, agent.role)
        )
        add = out.add
        add("canhgac_agent_up", 1.0 if up else 0.0)
        add("canhgac_agent_last_report_timestamp_seconds", agent.last_report_at)
        os_name = host_facts.get("os_name") or agent.os_name
        os_version = host_facts.get("os_version") or agent.os_version
        add("canhgac_agent_info", 1.0, os_name, os_version, agent.agent_version)
        if not up:
            return out  # stale values must not pass for current ones
        add("canhgac_agent_spool_dropped_reports_total", snap.get("spool", {}).get("dropped_total"))
        for section in sorted(s for s in snap if s.startswith("status:")):
            add("canhgac_probe_success", 1.0 if snap[section].get("ok") else 0.0, section[7:])
        for module in SECTION_METRICS:
            data = snap.get(module.SECTION)
            if data:
                module.render(add, data)
        return out


def _key(a: FleetAgent, up: bool) -> tuple[Any, ...]:
    """Everything an agent's lines depend on; last_seen_at only through `up`."""
    labels = (a.hostname, a.district, a.commune, a.unit, a.role)
    return (*labels, a.os_name, a.os_version, a.agent_version, a.last_report_at, up, a.version)


def _site_text(sites: Sites) -> str:
    kept = Kept(_SITES)
    for d in sites.districts:
        places = [(d.name, "", u.name, u.machines, u.meeting_rooms) for u in d.units]
        for c in d.communes:
            places.append((d.name, c.name, "", c.machines, c.meeting_rooms))
            places += [(d.name, c.name, u.name, u.machines, u.meeting_rooms) for u in c.units]
        for district, commune, unit, n_machines, n_rooms in places:
            lines = Lines(_SITES, (district, commune, unit))
            lines.add("canhgac_site_expected_machines", n_machines)
            lines.add("canhgac_site_expected_meeting_rooms", n_rooms)
            kept.put("\x1f".join((district, commune, unit)), lines)
    return kept.text(0.0)
