"""The running collector: store, gRPC, HTTP, alert engine and meeting timer, started together."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from collector.alerts.engine import AlertEngine
from collector.alerts.notify.notifier import Notifier
from collector.compliance.loader import load_pack
from collector.config import CollectorConfig, ConfigError, releases_dir
from collector.errors import CollectorError
from collector.heap import FREEZE_EVERY, HeapKeeper
from collector.http import HttpServer
from collector.leader import Leadership
from collector.meetings import MeetingBook
from collector.metrics import Exposition
from collector.metrics.worker import FleetRenderer
from collector.monthly import MonthlyReport
from collector.releases import ReleaseBook, ReleaseService
from collector.retention import RetentionPass
from collector.server import build_server
from collector.sites import load_sites
from collector.store import Store

__all__ = ["CollectorApp"]

log = logging.getLogger(__name__)

MEETING_RECORD_EVERY = 30.0


def _releases_dir(cfg: CollectorConfig) -> Path | None:
    """The package directory, None when there is none to serve from (PostgreSQL without
    releases.dir: Download answers NOT_FOUND; `release add` says what to set)."""
    try:
        return releases_dir(cfg)
    except ConfigError:
        return None


class CollectorApp:
    """Addresses default to the config; tests pass "127.0.0.1:0" and read the bound ports.

    One of the processes of `serve --processes N` (collector/processes.py) shares the gRPC
    port (`reuse_port`), and all but the first serve no HTTP (`serve_http=False`);
    `reload_all` is what POST /-/reload does besides reloading this process's rules.
    """

    def __init__(
        self,
        cfg: CollectorConfig,
        grpc_address: str | None = None,
        http_address: str | None = None,
        clock: Callable[[], float] = time.time,
        *,
        reuse_port: bool = False,
        serve_http: bool = True,
        reload_all: Callable[[], None] | None = None,
    ) -> None:
        self.cfg = cfg
        # A broken sites file stops the start here, before anything listens.
        self.sites = load_sites(cfg.sites_file) if cfg.sites_file is not None else None
        self.store = Store(cfg.store.url, cfg.store.sqlite_synchronous)
        stale_after = cfg.report_interval * cfg.stale_after_intervals
        self.fleet_renderer = FleetRenderer(cfg.store.url, stale_after)
        self.exposition = Exposition(
            self.store, stale_after, self.sites, clock, fleet=self.fleet_renderer
        )
        self.metrics = self.exposition.server
        self.meetings = MeetingBook(self.store, cfg.meetings)
        self.alerts: AlertEngine | None = None
        if cfg.rules.path is not None:
            # A bad pack refuses the start (RuleError); a bad reload keeps the running pack.
            pack = load_pack(cfg.rules.path, cfg.rules.hold)
            self.alerts = AlertEngine(
                self.store,
                pack,
                cfg.rules.path,
                report_interval=cfg.report_interval,
                silent_after_intervals=cfg.stale_after_intervals,
                default_hold=cfg.rules.hold,
                sites=self.sites,
                clock=clock,
                on_tick=self._observe_tick,
                on_write_error=self.metrics.store_write_errors.labels("alerts").inc,
                on_notify=self._wake_notifier,
            )
        self.releases = ReleaseService(ReleaseBook(self.store.releases.all), _releases_dir(cfg))
        self.grpc, self.grpc_port = build_server(
            cfg,
            self.store,
            self.metrics,
            grpc_address,
            on_stored=self.alerts.submit if self.alerts else None,
            fresh_checks=self.meetings.fresh_checks,
            clock=clock,
            reuse_port=reuse_port,
            releases=self.releases,
        )
        self._reload_all = reload_all
        self.http: HttpServer | None = None
        if serve_http:
            self.http = HttpServer(
                http_address or cfg.http_listen,
                self.exposition.render,
                self.store.ready,
                self._reload_everywhere if self.alerts else None,
                own_metrics=self.exposition.render_own,
                config=cfg.http,
                on_refused=lambda: self.metrics.rejections.labels("http_connections").inc(),
            )
        self.leadership = Leadership(self.store)
        self.notifier: Notifier | None = None
        if cfg.notify.enabled:
            engine = self.alerts
            self.notifier = Notifier(
                self.store,
                cfg.notify,
                pack=lambda: engine.pack if engine is not None else None,
                stale_after=cfg.report_interval * cfg.stale_after_intervals,
                sites=self.sites,
                clock=clock,
                leading=self.leadership.is_leader,
                meetings=self.meetings,
                on_send_failure=self.metrics.mail_send_failures.inc,
                monthly=MonthlyReport(self.store, cfg, self.sites),
            )
        self._stop_timer = threading.Event()
        self._timer = threading.Thread(target=self._tick_loop, name="alert-timer", daemon=True)
        self._clock = clock
        self._meeting_timer = threading.Thread(
            target=self._meeting_loop, name="meeting-timer", daemon=True
        )
        self._heap_timer = threading.Thread(target=self._heap_loop, name="heap-timer", daemon=True)
        alerts = self.alerts
        self.retention = RetentionPass(
            self.store,
            cfg.retention,
            report_interval=cfg.report_interval,
            reachable_within=stale_after,
            rules=lambda: alerts.pack.agent_rules() if alerts is not None else (),
        )
        self._retention_timer = threading.Thread(
            target=self._retention_loop, name="retention-timer", daemon=True
        )

    def _wake_notifier(self) -> None:
        if self.notifier is not None:  # set after the engine; None while notify is off
            self.notifier.wake()

    def _observe_tick(self, lag: float, took: float) -> None:
        self.metrics.alert_timer_lag.set(lag)
        self.metrics.alert_tick_duration.set(took)

    def _tick_loop(self) -> None:
        assert self.alerts is not None
        while not self._stop_timer.wait(self.cfg.rules.evaluate_every):
            # With several collectors on one PostgreSQL, only the leader judges the fleet.
            if self.leadership.is_leader():
                self.alerts.tick()

    def _meeting_loop(self) -> None:
        # Each room's verdict is kept within this long after its meeting starts.
        while not self._stop_timer.wait(MEETING_RECORD_EVERY):
            if not self.leadership.is_leader():
                continue  # one collector records the results (several on PostgreSQL)
            try:
                self.meetings.record_started(self._clock())
            except CollectorError as e:
                log.warning("recording meeting results failed: %s", e)

    def _retention_loop(self) -> None:
        while not self._stop_timer.wait(self.cfg.retention.every):
            if not self.leadership.is_leader():
                continue  # one collector rolls up and expires (several on PostgreSQL)
            try:
                done = self.retention.run(self._clock(), self._stop_timer)
            except CollectorError as e:
                log.warning("retention pass failed: %s", e)
                continue
            if done.done:
                log.info("retention pass: %s", done.done)

    def _heap_loop(self) -> None:
        heap = HeapKeeper(time.monotonic())
        heap.keep(time.monotonic())  # what start-up built (modules, config, rules) at once
        while not self._stop_timer.wait(FREEZE_EVERY):
            heap.keep(time.monotonic())

    def reload_rules(self) -> tuple[bool, str]:
        """SIGHUP and `rules reload`: the new pack, or the running one kept and the reason."""
        if self.alerts is None:
            return False, "compliance rules are not configured (rules.path)"
        return self.alerts.reload()

    def _reload_everywhere(self) -> tuple[bool, str]:
        if self._reload_all is not None:
            self._reload_all()  # the other processes of this collector; the answer is ours
        return self.reload_rules()

    @property
    def http_port(self) -> int:
        """0 for a process that serves no HTTP."""
        return self.http.port if self.http is not None else 0

    def start(self) -> None:
        if self.alerts is not None:
            self.alerts.start()
            self._timer.start()
        if self.notifier is not None:
            self.notifier.start()
        self._meeting_timer.start()
        self._heap_timer.start()
        self._retention_timer.start()
        self.grpc.start()
        if self.http is None:
            return
        self.http.start()
        host = self.cfg.http_listen.rpartition(":")[0] or "0.0.0.0"  # noqa: S104
        scheme = "https" if self.cfg.http.tls_server_config is not None else "http"
        log.info("metrics on %s://%s:%d/metrics", scheme, host, self.http_port)

    def stop(self, grace: float = 5.0) -> None:
        """Let in-flight calls finish (their acks follow their commits), then close the store."""
        self.grpc.stop(grace).wait()
        if self.http is not None:
            self.http.stop()
        self.fleet_renderer.close()
        self._stop_timer.set()
        for timer in (self._meeting_timer, self._heap_timer, self._retention_timer):
            if timer.is_alive():
                timer.join()
        if self.alerts is not None:
            self._timer.join()
            self.alerts.stop()
        if self.notifier is not None:
            self.notifier.stop()
        self.leadership.close()
        self.store.close()
