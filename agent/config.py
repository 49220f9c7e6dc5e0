"""Agent configuration: one YAML file, validated at load (agent.settings), unknown keys rejected."""

from __future__ import annotations

import sys
from pathlib import Path

from agent.probes.antivirus import AntivirusOptions
from agent.probes.base import ProbeOptions
from agent.probes.link import LinkOptions
from agent.probes.meeting_room import MeetingRoomOptions
from agent.probes.security import SecurityOptions
from agent.settings import ConfigError, Duration, Section, Size, option, parse_section
from canhgac_common.yamlfile import read_yaml

__all__ = [
    "AgentConfig",
    "CollectorConfig",
    "ConfigError",
    "DeliveryConfig",
    "ProbesConfig",
    "SpoolConfig",
    "TlsConfig",
    "default_state_dir",
    "load_config",
]


def default_state_dir() -> Path:
    if sys.platform == "win32":
        return Path(r"C:\ProgramData\CanhGac\agent")
    return Path("/var/lib/canhgac-agent")


class TlsConfig(Section):
    """TLS to the collector. `ca_file` pins the collector's CA instead of the system store;
    `cert_file` and `key_file` (PEM) are this agent's certificate, for a collector that requires
    one (mutual TLS)."""

    enabled: bool = False
    ca_file: Path | None = None
    # Name to verify in the collector's certificate when it differs from the address host.
    server_name: str | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


class CollectorConfig(Section):
    # Written by `canhgac-agent enroll` into the credential; set here to override.
    address: str | None = None
    tls: TlsConfig = option(default_factory=TlsConfig)
    # Deadline of one Submit call; generous because commune links are slow.
    timeout: Duration = 20.0
    gzip: bool = True


class ProbesConfig(Section):
    """One key per probe in agent.probes.PROBES (a test keeps the two in step)."""

    hardware: ProbeOptions = option(default_factory=ProbeOptions)
    link: LinkOptions = option(default_factory=LinkOptions)
    antivirus: AntivirusOptions = option(default_factory=AntivirusOptions)
    security: SecurityOptions = option(default_factory=SecurityOptions)
    meeting_room: MeetingRoomOptions = option(
        default_factory=lambda: MeetingRoomOptions(enabled=False)
    )


class SpoolConfig(Section):
    """Bounds of the local spool; past them the oldest reports go first and are counted."""

    max_bytes: Size = 64 * 1024 * 1024
    max_age: Duration = 14 * 86400.0


class DeliveryConfig(Section):
    batch_size: int = option(default=50, ge=1, le=500)
    # Pause between batches while replaying a backlog, so a commune link is not saturated.
    pace: Duration = 0.5
    backoff_initial: Duration = 2.0
    backoff_max: Duration = 300.0


def _log_level(value: str) -> str:
    if value.lower() not in {"debug", "info", "warning", "error"}:
        raise ValueError("must be one of debug, info, warning, error")
    return value.lower()


class AgentConfig(Section):
    state_dir: Path = option(default_factory=default_state_dir)
    collector: CollectorConfig = option(default_factory=CollectorConfig)
    probes: ProbesConfig = option(default_factory=ProbesConfig)
    spool: SpoolConfig = option(default_factory=SpoolConfig)
    delivery: DeliveryConfig = option(default_factory=DeliveryConfig)
    log_level: str = option(default="info", check=_log_level)


def load_config(path: Path | None) -> AgentConfig:
    """The config at `path`, or all defaults when no file is given."""
    if path is None:
        return AgentConfig()
    return parse_section(AgentConfig, read_yaml(path), str(path))
