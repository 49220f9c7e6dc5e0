"""The fleet view rendered from the store at each scrape, and the collector's own metrics."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import platform
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from collector import __version__
from collector.errors import StoreError
from collector.metrics import (
    antivirus,
    disk_health,
    hardware,
    link,
    meeting_room,
    power,
    security,
    software,
)
from collector.metrics.alerts import ALERT_SPECS, AlertCollector
from collector.metrics.base import AGENT_LABELS, Spec, agent_spec
from collector.metrics.indicators import INDICATOR_SPECS, IndicatorCollector
from collector.metrics.text import Batch, Families, Kept
from collector.model import SETTINGS_KEY, SPOOL_KEY, UPDATE_KEY, probe_of_status_key
from collector.sites import Sites
from collector.store import FleetAgent, Store

__all__ = [
    "AGENT_SPECS",
    "FLEET",
    "METRICS_DIR_ENV",
    "OWN_SPECS",
    "SECTION_METRICS",
    "SERVER_SPECS",
    "SITE_SPECS",
    "SPECS",
    "Exposition",
    "ServerMetrics",
    "shard_of",
]

log = logging.getLogger(__name__)

# Set (by collector/processes.py) in the environment of each process of `serve --processes N`:
# prometheus_client then keeps the counters in files there, which any process can sum.
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

# One module per report section: SECTION (its name), SPECS (what it emits), render(add, data).
# Output depends on the stored data only (an agent's lines are kept until it changes); ages
# are declared with `age=True` and computed at each scrape. Adding a section's metrics: write
# the module, add it here.
SECTION_METRICS: tuple[ModuleType, ...] = (
    hardware,
    antivirus,
    security,
    link,
    meeting_room,
    disk_health,
    power,
    software,
)

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
    agent_spec(
        "canhgac_agent_spool_unspooled_reports_total",
        "counter",
        "Reports the agent collected but could not write to its spool (disk full) since it started",
    ),
    agent_spec(
        "canhgac_agent_spool_resets_total",
        "counter",
        "Spools the agent found corrupt, emptied or deleted and replaced by a fresh one",
    ),
    agent_spec(
        "canhgac_agent_spool_reset_lost_reports_total",
        "counter",
        "Reports counted in spools that were replaced (their backlog, lost)",
    ),
    agent_spec(
        "canhgac_agent_update_refused_total",
        "counter",
        "Release manifests and packages the agent refused (signature, sha256 or size wrong)",
    ),
    agent_spec(
        "canhgac_agent_update_state",
        "gauge",
        "1 for where the agent stands with the release offered to it (downloading, verified, "
        "installing, refused, failed, rolled-back); absent when it is at none",
        "target_version",
        "state",
    ),
    agent_spec("canhgac_probe_success", "gauge", "1 if the probe's last run succeeded", "probe"),
    agent_spec(
        "canhgac_agent_settings_info",
        "gauge",
        "Constant 1; the hash of the central settings the agent runs as a label (`none`: its "
        "config file alone). Agents per hash: count by (settings_hash)",
        "settings_hash",
    ),
    agent_spec(
        "canhgac_agent_settings_refused",
        "gauge",
        "1 when the agent refused the last central settings pushed to it (the reason is in "
        "`canhgac-collector settings effective AGENT`); absent otherwise",
        "settings_hash",
    ),
    agent_spec(
        "canhgac_agent_clone_suspected",
        "gauge",
        "1 for a possible clone: an agent that enrolled with the machine id of the active "
        "agent `clone_of` without proof (cloned image, reinstall without credential, or "
        "takeover attempt), or one whose own reports came from two machines (`clone_of` "
        "empty: a cloned image holding its credential); absent otherwise",
        "clone_of",
    ),
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
        "canhgac_collector_store_write_errors_total",
        "counter",
        "Store writes that failed, by part (reports, enrollment, alerts)",
        ("part",),
    ),
    Spec(
        "canhgac_collector_mail_send_failures_total",
        "counter",
        "Mail delivery attempts not accepted for every recipient (connection error, 4xx or "
        "5xx reply, a recipient refused)",
        (),
    ),
    Spec(
        "canhgac_collector_alert_timer_lag_seconds",
        "gauge",
        "How long the latest alert timer tick waited behind other evaluation work before it ran",
        (),
    ),
    Spec(
        "canhgac_collector_alert_tick_duration_seconds",
        "gauge",
        "How long the latest alert timer tick took",
        (),
    ),
    Spec(
        "canhgac_collector_rpc_duration_seconds",
        "histogram",
        "Time to handle one gRPC call, by method",
        ("method",),
    ),
)
# Read at each scrape: the collector's build, its process, its mail outbox.
OWN_SPECS = (
    Spec("canhgac_build_info", "gauge", "Constant 1; the collector's build", ("version", "python")),
    Spec(
        "canhgac_collector_mail_outbox_messages",
        "gauge",
        "Messages in the mail outbox by state (pending, partial, failed; sent ones too)",
        ("state",),
    ),
    Spec("process_cpu_seconds_total", "counter", "CPU time of the collector process", ()),
    Spec("process_resident_memory_bytes", "gauge", "Resident memory of the process", ()),
    Spec("process_virtual_memory_bytes", "gauge", "Virtual memory of the process", ()),
    Spec("process_start_time_seconds", "gauge", "Start time of the process (Unix time)", ()),
    Spec("process_open_fds", "gauge", "Open file descriptors of the process", ()),
    Spec("process_max_fds", "gauge", "Most file descriptors the process may open", ()),
)

SPECS: tuple[Spec, ...] = (
    FLEET_SPECS + SITE_SPECS + SERVER_SPECS + OWN_SPECS + ALERT_SPECS + INDICATOR_SPECS
)


class ServerMetrics:
    """The collector's own counters, registered in the given registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str) -> Counter:
            s = next(s for s in SERVER_SPECS if s.name == name)
            return Counter(name.removesuffix("_total"), s.help, s.labels, registry=registry)

        def gauge(name: str) -> Gauge:
            s = next(s for s in SERVER_SPECS if s.name == name)
            # Several processes (serve --processes N): the leader's value (others leave 0).
            return Gauge(name, s.help, s.labels, registry=registry, multiprocess_mode="livemax")

        self.received = counter("canhgac_collector_reports_received_total")
        self.stored = counter("canhgac_collector_reports_stored_total")
        self.duplicate = counter("canhgac_collector_reports_duplicate_total")
        self.rejections = counter("canhgac_collector_rejections_total")
        self.enrollments = counter("canhgac_collector_enrollments_total")
        self.store_write_errors = counter("canhgac_collector_store_write_errors_total")
        self.mail_send_failures = counter("canhgac_collector_mail_send_failures_total")
        self.alert_timer_lag = gauge("canhgac_collector_alert_timer_lag_seconds")
        self.alert_tick_duration = gauge("canhgac_collector_alert_tick_duration_seconds")
        spec = SERVER_SPECS[-1]
        self.rpc_duration = Histogram(
            spec.name,
            spec.help,
            spec.labels,
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )


class OwnCollector(Collector):
    """The collector's build and its mail outbox, read at each scrape."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        build, outbox = OWN_SPECS[:2]
        info = GaugeMetricFamily(build.name, build.help, labels=build.labels)
        info.add_metric([__version__, platform.python_version()], 1.0)
        yield info
        try:
            counts = self._store.mail.outbox_counts()
        except StoreError as e:
            # The process's health must still be scraped when its store is not readable
            # (disk full, database down): the outbox is left out, the write errors show.
            log.warning("mail outbox depth not read: %s", e)
            return
        depth = GaugeMetricFamily(outbox.name, outbox.help, labels=outbox.labels)
        for state in sorted({"pending", "failed", *counts}):
            depth.add_metric([state], float(counts.get(state, 0)))
        yield depth


# The per-agent families, as rendered and joined (renderer processes return their bodies).
FLEET = Families(FLEET_SPECS, AGENT_LABELS)
_RENDER = {m.SECTION: m.render for m in SECTION_METRICS}
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
        *,
        fleet: Callable[[float], list[bytes]] | None = None,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        """`fleet` renders the per-agent families as of a time (the collector passes a
        FleetRenderer: other processes); by default this object renders them itself. `shard`
        (i, n): this object renders only the agents for which `shard_of(agent_id, n) == i`."""
        self._store = store
        self._stale_after = stale_after
        self._sites = sites
        self._clock = clock
        self._shard = shard
        self._kept = Kept(FLEET)
        self._keys: dict[str, tuple[Any, ...]] = {}  # agent_id -> what its kept lines show
        self._lock = threading.Lock()  # concurrent scrapes would race on what is kept
        self._fleet = fleet or self.fleet_bodies
        # One series per (rule, place), never per agent: cheap enough for prometheus_client.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(AlertCollector(store))
        # Per commune: the indicators the digest and the report print (docs/indicators.md).
        self.registry.register(IndicatorCollector(store, stale_after, sites, clock))
        # This process's own health, also alone at /metrics/collector: with several
        # collectors on one store, Prometheus scrapes the fleet from one of them and this
        # from each (configs/prometheus/prometheus.yml, docs/scaling.md).
        self.own = CollectorRegistry(auto_describe=False)
        self.server = ServerMetrics(self.own)
        self.own.register(OwnCollector(store))
        ProcessCollector(registry=self.own)
        self._own_view = self.own
        shared = os.environ.get(METRICS_DIR_ENV)
        if shared:
            # One of several processes of `serve --processes N` (collector/processes.py): the
            # counters and the latency histogram are summed over all of them, so one scrape
            # is the whole collector; process_* stay this process's (the one serving HTTP).
            view = CollectorRegistry(auto_describe=False)
            MultiProcessCollector(view, shared)  # type: ignore[no-untyped-call]
            view.register(OwnCollector(store))
            ProcessCollector(registry=view)
            self._own_view = view

    def render(self) -> bytes:
        parts = FLEET.text(self._fleet(self._clock()))
        if self._sites is not None:
            parts += _site_text(self._sites)
        parts.append(generate_latest(self.registry))
        parts.append(generate_latest(self._own_view))
        return b"".join(parts)

    def render_own(self) -> bytes:
        """/metrics/collector: this process's own series only (no store-wide ones)."""
        return generate_latest(self._own_view)

    def fleet_bodies(self, now: float) -> list[bytes]:
        """The per-agent families' sample lines as of `now`, one bytes per declared family
        (`Families.text` adds the headers): only agents whose stored data changed since the
        previous call are read and rendered again."""
        with self._lock, _gc_paused():
            self._refresh(now)
            return self._kept.bodies(now)

    def _refresh(self, now: float) -> None:
        """Render again the agents whose key changed; drop those no longer active."""
        fleet = self._store.scrape.fleet_versions()
        index, shards = self._shard
        if shards > 1:
            fleet = [a for a in fleet if shard_of(a.agent_id, shards) == index]
        keys = self._keys
        changed: list[tuple[FleetAgent, bool, tuple[Any, ...]]] = []
        for a in fleet:
            up = a.last_seen_at is not None and now - a.last_seen_at <= self._stale_after
            # Everything the agent's lines depend on: its row but for last_seen_at (FleetAgent's
            # last field), which counts only through `up`.
            key = (*a[:-1], up)
            if keys.get(a.agent_id) != key:
                changed.append((a, up, key))
        if changed:
            # The snapshots are read after the versions, so they are at least as new: if a
            # report landed in between, the next scrape sees a newer version and renders the
            # agent once more.
            snaps = self._store.scrape.fleet_sections(
                [a.agent_id for a, _, _ in changed], scan=len(changed) * 2 > len(fleet)
            )
            batch = Batch(FLEET)
            for a, up, key in changed:
                _agent_lines(batch, a, up, snaps.get(a.agent_id, {}))
                keys[a.agent_id] = key
            self._kept.put(batch)
        if len(keys) > len(fleet):  # revoked (or deleted) since the last scrape
            gone = keys.keys() - {a.agent_id for a in fleet}
            for agent_id in gone:
                del keys[agent_id]
            self._kept.drop(gone)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection during a scrape: it allocates hundreds of thousands of
    objects (decoded snapshots, lines), freed by reference counting anyway, and the collections
    they trigger over the grown heap were a sixth of a cold 10,000-agent scrape."""
    if not gc.isenabled():  # paused by someone else: theirs to resume
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _agent_lines(batch: Batch, agent: FleetAgent, up: bool, snap: dict[str, Any]) -> None:
    hw = snap.get("hardware", {})
    host_facts = hw.get("host", {})
    host = host_facts.get("hostname") or agent.hostname
    batch.owner(
        agent.agent_id,
        (agent.agent_id, agent.district, agent.commune, agent.unit, host, agent.role),
    )
    add = batch.add
    add("canhgac_agent_up", 1.0 if up else 0.0)
    add("canhgac_agent_last_report_timestamp_seconds", agent.last_report_at)
    os_name = host_facts.get("os_name") or agent.os_name
    os_version = host_facts.get("os_version") or agent.os_version
    update = snap.get(UPDATE_KEY) or {}
    # The version the agent reports now (it may have updated itself since it enrolled).
    version = update.get("agent_version") or agent.agent_version
    add("canhgac_agent_info", 1.0, os_name, os_version, version)
    if agent.clone_of is not None or agent.clone_suspected_at is not None:  # stale or not
        add("canhgac_agent_clone_suspected", 1.0, agent.clone_of or "")
    if not up:
        return  # stale values must not pass for current ones
    spool = snap.get(SPOOL_KEY, {})
    add("canhgac_agent_spool_dropped_reports_total", spool.get("dropped_total"))
    # Absent in snapshots of agents older than these counters: no sample rather than a 0.
    add("canhgac_agent_spool_unspooled_reports_total", spool.get("unspooled_total"))
    add("canhgac_agent_spool_resets_total", spool.get("resets_total"))
    add("canhgac_agent_spool_reset_lost_reports_total", spool.get("reset_lost_total"))
    settings = snap.get(SETTINGS_KEY)
    if settings is not None:
        add("canhgac_agent_settings_info", 1.0, settings.get("hash") or "none")
        if settings.get("refused_hash"):
            add("canhgac_agent_settings_refused", 1.0, settings["refused_hash"])
    if update:
        add("canhgac_agent_update_refused_total", update.get("refused_total"))
        if update.get("state"):
            add(
                "canhgac_agent_update_state",
                1.0,
                update.get("target_version", ""),
                update["state"],
            )
    statuses = sorted((p, key) for key in snap if (p := probe_of_status_key(key)) is not None)
    for probe, key in statuses:
        add("canhgac_probe_success", 1.0 if snap[key].get("ok") else 0.0, probe)
    for section, data in snap.items():
        render = _RENDER.get(section)
        if render is not None and data:
            render(add, data)


def _site_text(sites: Sites) -> list[bytes]:
    # Per place, its targets; a place listed twice (the sites file does not forbid a district
    # or a commune's unit twice) keeps its last, so no series is written twice.
    places: dict[tuple[str, str, str], tuple[int, int]] = {}
    for d in sites.districts:
        places.update({(d.name, "", u.name): (u.machines, u.meeting_rooms) for u in d.units})
        for c in d.communes:
            places[d.name, c.name, ""] = (c.machines, c.meeting_rooms)
            places.update(
                {(d.name, c.name, u.name): (u.machines, u.meeting_rooms) for u in c.units}
            )
    batch = Batch(_SITES)
    for place, (n_machines, n_rooms) in places.items():
        batch.owner("\x1f".join(place), place)
        batch.add("canhgac_site_expected_machines", n_machines)
        batch.add("canhgac_site_expected_meeting_rooms", n_rooms)
    kept = Kept(_SITES)
    kept.put(batch)
    return _SITES.text(kept.bodies(0.0))


def shard_of(agent_id: str, shards: int) -> int:
    """Which of `shards` renderers draws an agent: stable across processes (unlike hash())."""
    return zlib.crc32(agent_id.encode()) % shards
