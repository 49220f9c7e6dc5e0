"""The running collector: store + gRPC server + HTTP server, started and stopped together."""

from __future__ import annotations

import logging

from collector.config import CollectorConfig
from collector.http import HttpServer
from collector.metrics import Exposition
from collector.server import build_server
from collector.sites import load_sites
from collector.store import Store

__all__ = ["CollectorApp"]

log = logging.getLogger(__name__)


class CollectorApp:
    """Addresses default to the config; tests pass "127.0.0.1:0" and read the bound ports."""

    def __init__(
        self,
        cfg: CollectorConfig,
        grpc_address: str | None = None,
        http_address: str | None = None,
    ) -> None:
        self.cfg = cfg
        # A broken sites file stops the start here, before anything listens.
        self.sites = load_sites(cfg.sites_file) if cfg.sites_file is not None else None
        self.store = Store(cfg.store.url, cfg.store.sqlite_synchronous)
        self.exposition = Exposition(
            self.store, cfg.report_interval * cfg.stale_after_intervals, self.sites
        )
        self.metrics = self.exposition.server
        self.grpc, self.grpc_port = build_server(cfg, self.store, self.metrics, grpc_address)
        self.http = HttpServer(
            http_address or cfg.http_listen, self.exposition.render, self.store.ping
        )

    @property
    def http_port(self) -> int:
        return self.http.port

    def start(self) -> None:
        self.grpc.start()
        self.http.start()
        host = (self.cfg.http_listen.rpartition(":")[0] or "0.0.0.0").strip("[]")  # noqa: S104
        log.info("metrics on http://%s:%d/metrics", host, self.http_port)

    def stop(self, grace: float = 5.0) -> None:
        """Let in-flight calls finish (their acks follow their commits), then close the store."""
        self.grpc.stop(grace).wait()
        self.http.stop()
        self.store.close()
