"""Agent configuration: one YAML file, validated at load, unknown keys rejected."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import Field, field_validator

from agent.probes.antivirus import AntivirusOptions
from agent.probes.base import ProbeOptions
from agent.probes.link import LinkOptions
from agent.probes.meeting_room import MeetingRoomOptions
from agent.probes.security import SecurityOptions
from canhgac_common.config import ConfigError, Duration, Size, StrictModel, load_model

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


class TlsConfig(StrictModel):
    """TLS to the collector. `ca_file` pins the collector's CA instead of the system store."""

    enabled: bool = False
    ca_file: Path | None = None
    # Name to verify in the collector's certificate when it differs from the address host.
    server_name: str | None = None


class CollectorConfig(StrictModel):
    # Written by `canhgac-agent enroll` into the credential; set here to override.
    address: str | None = None
    tls: TlsConfig = TlsConfig()
    # Deadline of one Submit call; generous because commune links are slow.
    timeout: Duration = 20.0
    gzip: bool = True


class ProbesConfig(StrictModel):
    """One key per probe in agent.probes.PROBES (a test keeps the two in step)."""

    hardware: ProbeOptions = ProbeOptions()
    link: LinkOptions = LinkOptions()
    antivirus: AntivirusOptions = AntivirusOptions()
    security: SecurityOptions = SecurityOptions()
    meeting_room: MeetingRoomOptions = MeetingRoomOptions(enabled=False)


class SpoolConfig(StrictModel):
    """Bounds of the local spool; past them the oldest reports go first and are counted."""

    max_bytes: Size = 64 * 1024 * 1024
    max_age: Duration = 14 * 86400.0


class DeliveryConfig(StrictModel):
    batch_size: int = Field(default=50, ge=1, le=500)
    # Pause between batches while replaying a backlog, so a commune link is not saturated.
    pace: Duration = 0.5
    backoff_initial: Duration = 2.0
    backoff_max: Duration = 300.0


class AgentConfig(StrictModel):
    state_dir: Path = Field(default_factory=default_state_dir)
    collector: CollectorConfig = CollectorConfig()
    probes: ProbesConfig = ProbesConfig()
    spool: SpoolConfig = SpoolConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    log_level: str = "info"

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError("must be one of debug, info, warning, error")
        return value.lower()


def load_config(path: Path | None) -> AgentConfig:
    """The config at `path`, or all defaults when no file is given."""
    if path is None:
        return AgentConfig()
    return load_model(AgentConfig, path)
