"""Agent configuration: one YAML file, validated at load (agent.settings), unknown keys rejected."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.probes import PROBES, ProbeOptions
from agent.settings import (
    ConfigError,
    Duration,
    Section,
    Size,
    json_schema,
    option,
    parse_section,
)
from agent.update import UpdateConfig
from canhgac_common.yamlfile import read_yaml

__all__ = [
    "AgentConfig",
    "CollectorConfig",
    "ConfigError",
    "DeliveryConfig",
    "LocalFile",
    "ProbesConfig",
    "SpoolConfig",
    "TlsConfig",
    "default_state_dir",
    "load_config",
    "settings_schema",
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


def _probes_config() -> type[Section]:
    """The `probes:` section: one key per probe of agent.probes.PROBES, typed by its options."""
    namespace: dict[str, Any] = {
        "__doc__": "One key per probe of agent.probes.PROBES, typed by the probe's options.",
        "__module__": __name__,
        "__annotations__": {name: probe.options_type for name, probe in PROBES.items()},
    }
    for name, probe in PROBES.items():
        namespace[name] = option(default_factory=probe.default_options)
    return types.new_class("ProbesConfig", (Section,), exec_body=lambda ns: ns.update(namespace))


if TYPE_CHECKING:

    class ProbesConfig(Section):
        """What the checker sees of the class built from the registry at import."""

        def __init__(self, **options: ProbeOptions) -> None: ...
        def __getattr__(self, name: str) -> Any: ...

else:
    ProbesConfig = _probes_config()


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
    update: UpdateConfig = option(default_factory=UpdateConfig)


# Keys only the agent's own file sets: central settings (docs/fleet.md) can never point an
# agent at another collector, change its TLS, move its state, or change the release key it
# trusts (the whole `update:` section).
LOCAL_ONLY = ("state_dir", "collector", "update")
LOCAL_ONLY_KEYWORD = "x-canhgac-local-only"


def settings_schema() -> dict[str, Any]:
    """The agent config as a JSON Schema (canhgac_common/agent.schema.json is this, committed):
    for editors checking an agent.yaml, and for the collector checking central settings."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Canh Gác agent configuration (agent.yaml)",
        **json_schema(AgentConfig),
        LOCAL_ONLY_KEYWORD: list(LOCAL_ONLY),
    }


@dataclass(frozen=True)
class LocalFile:
    """The agent's own config file as read (what central settings are merged over)."""

    data: dict[str, Any]
    source: str

    @classmethod
    def read(cls, path: Path | None) -> LocalFile:
        if path is None:
            return cls({}, "defaults")
        data = read_yaml(path)
        if data is None:
            data = {}
        if not isinstance(data, dict):  # refused with the parser's own words
            parse_section(AgentConfig, data, str(path))
        return cls(data, str(path))

    def parse(self, data: dict[str, Any], source: str) -> AgentConfig:
        return parse_section(AgentConfig, data, source)


def load_config(path: Path | None) -> AgentConfig:
    """The config at `path`, or all defaults when no file is given."""
    local = LocalFile.read(path)
    return local.parse(local.data, local.source)
