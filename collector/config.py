"""Collector configuration: one YAML file, validated at load, unknown keys rejected."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from sqlalchemy.engine import make_url

from canhgac_common.config import (
    ConfigError,
    Duration,
    Size,
    StrictModel,
    TimeZone,
    load_model,
    time_zone,
)
from canhgac_common.i18n import gettext_ as _
from collector.alerts.notify.config import NotifyConfig
from collector.meetings import MeetingsConfig

__all__ = [
    "THROUGHPUT_CHUNK_BYTES",
    "CollectorConfig",
    "ConfigError",
    "HttpConfig",
    "HttpTlsConfig",
    "LimitsConfig",
    "NotifyConfig",
    "PublicService",
    "ReleasesConfig",
    "RetentionConfig",
    "RulesConfig",
    "StoreConfig",
    "TlsConfig",
    "load_config",
    "releases_dir",
]


class TlsConfig(StrictModel):
    """Server TLS: set `enabled: true` plus the certificate and key (PEM).

    `client_ca_file` adds mutual TLS: every agent must present a certificate signed by that CA
    (an extra gate; the agent's credential still says who it is).
    """

    enabled: bool = False
    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None

    @model_validator(mode="after")
    def _files(self) -> TlsConfig:
        if self.enabled and (self.cert_file is None or self.key_file is None):
            raise ValueError(_("tls.enabled needs both cert_file and key_file"))
        if self.client_ca_file is not None and not self.enabled:
            raise ValueError(_("tls.client_ca_file needs tls.enabled: true"))
        return self


class HttpTlsConfig(StrictModel):
    """`tls_server_config` of the Prometheus exporter web config (PEM files)."""

    cert_file: Path
    key_file: Path
    # Set: every client (Prometheus) must present a certificate signed by this CA.
    client_ca_file: Path | None = None


class HttpConfig(StrictModel):
    """/metrics, /healthz, /readyz: bounds, and optional TLS and basic auth on every path."""

    # A connection that sends nothing this long (before or between requests) is closed.
    idle_timeout: Duration = Field(default=10.0, gt=0)
    # Beyond this many open connections, a new one is closed at once (and counted).
    max_connections: int = Field(default=64, ge=1)
    tls_server_config: HttpTlsConfig | None = None
    # name: bcrypt hash (htpasswd -nBC 10 NAME), as in the exporter web config.
    basic_auth_users: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _hashes(self) -> HttpConfig:
        for name, hashed in self.basic_auth_users.items():
            if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
                raise ValueError(_("basic_auth_users.{name}: not a bcrypt hash").format(name=name))
        return self


class StoreConfig(StrictModel):
    # sqlite:///relative/path.db, sqlite:////absolute/path.db or postgresql+psycopg://...
    url: str = "sqlite:////var/lib/canhgac/canhgac.db"
    # FULL: an acked report survives a power cut. NORMAL is faster and survives a crash.
    sqlite_synchronous: str = Field(default="full", pattern="^(full|normal)$")

    @model_validator(mode="after")
    def _file(self) -> StoreConfig:
        # The /metrics renderer is another process: it must open the same database.
        if self.url.startswith("sqlite") and self.url.split("?")[0] in _IN_MEMORY:
            raise ValueError(
                _("an in-memory SQLite store loses every report at restart; give a file")
            )
        return self


_IN_MEMORY = ("sqlite://", "sqlite:///:memory:")
# The largest chunk a Throughput stream sends (and the ceiling of the chunk floor).
THROUGHPUT_CHUNK_BYTES = 64 * 1024


class LimitsConfig(StrictModel):
    """What one call, one agent and all of them together may take of the collector.

    Every refusal is counted in canhgac_collector_rejections_total{reason}.
    """

    max_message_bytes: Size = 4 * 1024 * 1024
    max_batch_reports: int = Field(default=500, ge=1)
    # Calls running or waiting for a worker; beyond it RESOURCE_EXHAUSTED (reason "busy").
    max_concurrent_rpcs: int = Field(default=64, ge=1)
    workers: int = Field(default=8, ge=1)
    # Workers that Upload/Throughput may never take, so Submit and Enroll are always served.
    reserved_workers: int = Field(default=2, ge=1)
    # Calls of one agent at once, and of those, Upload/Throughput streams.
    agent_calls: int = Field(default=4, ge=1)
    agent_streams: int = Field(default=1, ge=1)
    # Server-side deadlines, whatever deadline the client asked for: a whole Upload or
    # Throughput call, and the arrival of a Submit's or Enroll's request message.
    stream_max_duration: Duration = Field(default=60.0, gt=0)
    request_timeout: Duration = Field(default=30.0, gt=0)
    throughput_max_bytes: Size = 16 * 1024 * 1024
    # A Throughput asking for smaller chunks gets chunks of this size (not a refusal).
    throughput_min_chunk_bytes: Size = Field(default=4096, ge=1, le=THROUGHPUT_CHUNK_BYTES)

    @model_validator(mode="after")
    def _reserve(self) -> LimitsConfig:
        if self.reserved_workers >= self.workers:
            raise ValueError(
                _(
                    "reserved_workers ({reserved}) must be less than workers ({workers}):"
                    " Upload and Throughput need at least one worker"
                ).format(reserved=self.reserved_workers, workers=self.workers)
            )
        return self


class RulesConfig(StrictModel):
    """Compliance rules: a pack file or a directory of *.yaml packs; none = compliance off."""

    path: Path | None = None
    evaluate_every: Duration = Field(default=15.0, ge=1)  # fleet rules, silence, hold expiry
    hold: Duration = Field(default=300.0, ge=0)  # flap damping unless a rule sets `hold:`


class ReportsConfig(StrictModel):
    """Period reports and audit exports (`canhgac-collector report|export`, docs/reports.md)."""

    # A commune counts as connected for a period when its machines could reach the collector
    # for at least this share of the period's hours (docs/indicators.md).
    connected_share: float = Field(default=0.95, gt=0, le=1)
    # The Ed25519 key that signs each export's manifest, made on first use (mode 0600). Default:
    # export-signing.key beside the SQLite database; on PostgreSQL it must be set.
    signing_key: Path | None = None
    # A .ttf covering Vietnamese for the PDF; default: Noto Sans (fonts-noto-core) or DejaVu Sans.
    font: Path | None = None
    # Where the monthly mail's sealed export of each district is written (and chained); None:
    # the mail carries the report and its PDF summary only.
    exports_dir: Path | None = None


class ReleasesConfig(StrictModel):
    """Agent packages served for self-update (`canhgac-collector release`, docs/fleet.md)."""

    # Where `release add` keeps the packages; default: releases/ beside the SQLite database
    # (on PostgreSQL it must be set, and be the same on every collector).
    dir: Path | None = None
    # Most bytes one Download call sends, whatever the agent asked: a call stays short.
    download_max_bytes: Size = Field(default=1024 * 1024, ge=4096)
    # A targeted agent that has not reported the release's version this long after the
    # rollout counts as failed (`release rollout --report-within` sets it per release).
    report_within: Duration = Field(default=1800.0, gt=0)


class RetentionConfig(StrictModel):
    """How long each kind of history is kept (docs/scaling.md, Retention). Raw reports are
    rolled up as they arrive and deleted `raw` after the collector received them."""

    raw: Duration = Field(default=30 * 86400.0, gt=0)
    # Raw reports received longer ago than this (and rolled up) are packed into compressed
    # blocks, per agent and 6 hours of arrival (collector/store/blocks.py): 15 % of their size.
    pack: Duration = Field(default=3600.0, gt=0)
    # Hourly rollups older than this become daily ones (local days of `timezone`): a past
    # month is then read from 30 buckets per metric, not 720 (bench/storage.py).
    hourly: Duration = Field(default=7 * 86400.0, gt=0)
    rollups: Duration = Field(default=400 * 86400.0, gt=0)
    alert_history: Duration = Field(default=400 * 86400.0, gt=0)
    # Sent notifications, and mail that is no longer pending (sent, failed, partial).
    notifications: Duration = Field(default=90 * 86400.0, gt=0)
    mail: Duration = Field(default=90 * 86400.0, gt=0)
    every: Duration = Field(default=60.0, ge=1)  # how often the pass runs (leader only)
    timezone: TimeZone = "Asia/Ho_Chi_Minh"

    @model_validator(mode="after")
    def _order(self) -> RetentionConfig:
        if self.hourly > self.rollups:
            raise ValueError(_("hourly must not be longer than rollups"))
        if self.pack > self.raw:
            raise ValueError(_("pack must not be longer than raw"))
        return self


class PublicService(StrictModel):
    """A public service every agent (or every agent of `roles`) checks from where it is, with
    the link probe's HTTP check: the district's one-stop office (VNPT-iGate), its document
    system (VNPT-iOffice), the provincial public-service portal (docs/fleet.md)."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")
    url: str = Field(pattern=r"^https?://")
    # The status a healthy service answers; None: any status below 400.
    expect_status: int | None = Field(default=None, ge=100, le=599)
    timeout: Duration = Field(default=10.0, gt=0, le=60)
    # Roles whose agents check it; empty: every agent.
    roles: list[str] = Field(default_factory=list)

    def as_check(self) -> dict[str, Any]:
        """The entry an agent's `probes.link.services` takes (the roles stay here)."""
        out: dict[str, Any] = {"name": self.name, "url": self.url, "timeout": self.timeout}
        if self.expect_status is not None:
            out["expect_status"] = self.expect_status
        return out


# Every local time of the collector: mail and its schedule, meetings, reports, daily rollups.
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
_ZONED = ("notify", "meetings", "retention")


class CollectorConfig(StrictModel):
    grpc_listen: str = "0.0.0.0:4317"
    http_listen: str = "0.0.0.0:9108"
    http: HttpConfig = HttpConfig()
    tls: TlsConfig = TlsConfig()
    store: StoreConfig = StoreConfig()
    sites_file: Path | None = None
    province: str = ""
    # Told to agents at enrollment; an agent is stale after `stale_after_intervals` of silence.
    report_interval: Duration = Field(default=15.0, ge=1)
    stale_after_intervals: int = Field(default=3, ge=1)
    limits: LimitsConfig = LimitsConfig()
    rules: RulesConfig = RulesConfig()
    retention: RetentionConfig = RetentionConfig()
    notify: NotifyConfig = NotifyConfig()
    meetings: MeetingsConfig = MeetingsConfig()
    reports: ReportsConfig = ReportsConfig()
    # Checked from every commune; pushed to the agents with their central settings.
    services: list[PublicService] = Field(default_factory=list)
    releases: ReleasesConfig = ReleasesConfig()
    log_level: str = Field(default="info", pattern="^(debug|info|warning|error)$")
    # The one time zone of every local time (mail, digests, meetings, reports, daily rollups);
    # the sections that use it get it from here.
    timezone: TimeZone = DEFAULT_TIMEZONE

    @model_validator(mode="before")
    @classmethod
    def _one_timezone(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        zone = data.get("timezone", DEFAULT_TIMEZONE)
        try:
            time_zone(str(zone))
        except ValueError as e:
            raise ValueError(_("timezone: {error}").format(error=e)) from None
        out = dict(data)
        for section in _ZONED:
            sub = out.get(section)
            # A dumped config carries the zone in each section: the same one is no conflict.
            if isinstance(sub, dict) and sub.get("timezone", zone) != zone:
                raise ValueError(
                    _(
                        "{section}.timezone: set the top-level `timezone` instead"
                        " (one zone for every local time)"
                    ).format(section=section)
                )
            out[section] = {**(sub if isinstance(sub, dict) else {}), "timezone": zone}
        return out

    log_format: Literal["text", "json"] = "text"  # json: one object a line (collector.logs)
    log_file: Path | None = None  # None: stderr (journald); a path: rotated by size
    log_file_max_bytes: Size = Field(default=10 * 1024 * 1024, ge=4096)
    log_file_backups: int = Field(default=5, ge=1)

    @model_validator(mode="after")
    def _services_named_once(self) -> CollectorConfig:
        names = [s.name for s in self.services]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"services: {', '.join(twice)} declared more than once")
        return self

    @model_validator(mode="after")
    def _summary_after_last_check(self) -> CollectorConfig:
        # A summary sent at (or before) the last check point would call every room silent.
        before = self.notify.meeting_summary_before
        if before is not None and before >= min(self.meetings.checks_before):
            raise ValueError(
                _(
                    "notify.meeting_summary_before must be shorter than the shortest"
                    " meetings.checks_before lead"
                )
            )
        return self


def export_key_path(cfg: CollectorConfig) -> Path:
    """The export signing key: `reports.signing_key`, else beside the SQLite database."""
    if cfg.reports.signing_key is not None:
        return cfg.reports.signing_key
    url = make_url(cfg.store.url)
    if url.get_backend_name() != "sqlite" or not url.database:
        raise ConfigError(_("reports.signing_key must be set when the store is not a SQLite file"))
    return Path(url.database).parent / "export-signing.key"


def releases_dir(cfg: CollectorConfig) -> Path:
    """The package directory: `releases.dir`, else releases/ beside the SQLite database."""
    if cfg.releases.dir is not None:
        return cfg.releases.dir
    url = make_url(cfg.store.url)
    if url.get_backend_name() != "sqlite" or not url.database:
        raise ConfigError("releases.dir must be set when the store is not a SQLite file")
    return Path(url.database).parent / "releases"


def load_config(path: Path | None) -> CollectorConfig:
    """The config at `path`, or all defaults when no file is given.

    Relative paths in the file (store url, sites_file, TLS files) are taken from the
    working directory, as for every other command-line tool.
    """
    return CollectorConfig() if path is None else load_model(CollectorConfig, path)
