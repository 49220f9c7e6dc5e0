"""Central settings on the agent: which it runs, the last it refused, and the check of a push.

The collector names, on every Submit ack, the hash of the settings this agent should run
(docs/fleet.md). When it differs from the hash the agent runs (and from the last one it
refused), the agent asks for them (GetSettings), merges them over its own file and checks the
result with the validator of that file: a push that fails the check, or that sets a key only
the file may set (collector address, TLS, state dir), is refused with the reason and never
replaces the settings that run. Applied settings are kept in `<state_dir>/settings.json`, so a
restart without a link to the collector starts with them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import LOCAL_ONLY, AgentConfig, ConfigError, LocalFile
from agent.model import SettingsState
from canhgac_common.files import atomic_write

__all__ = ["SETTINGS_FILE", "Central", "merged_config", "read_saved"]

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"
_REASON_CHARS = 1000


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`: mappings merged key by key, anything else replaced (the
    collector merges its layers the same way)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def merged_config(local: LocalFile, document: Any, source: str) -> AgentConfig:
    """The agent's config: its file with the central `document` over it; ConfigError names
    every key the agent refuses, each line prefixed by `source`. (What the file alone says of
    the local-only keys is for the caller to keep: see `Central`.)"""
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: must be a mapping of agent config keys")
    local_only = sorted(k for k in document if k in LOCAL_ONLY)
    if local_only:
        raise ConfigError(
            "\n".join(f"{source}: {k}: set only in the agent's own file" for k in local_only)
        )
    return local.parse(_merge(local.data, document), source)


@dataclass(frozen=True)
class _Saved:
    hash: str
    document: dict[str, Any]
    refused_hash: str = ""
    refused_reason: str = ""
    # Of the config file the refusal was judged against: an edited file judges the push again.
    file: int = 0


def read_saved(path: Path) -> _Saved:
    """`<state_dir>/settings.json` as the agent keeps it (raises what reading it raises)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return _Saved(
        str(data["hash"]),
        dict(data["document"]),
        str(data.get("refused_hash", "")),
        str(data.get("refused_reason", "")),
        int(data.get("file", 0)),
    )


class Central:
    """What the runner asks on each ack (`offer`) and puts in each report (`state`)."""

    def __init__(
        self,
        base: AgentConfig,
        local: LocalFile,
        fetch: Callable[[], tuple[str, Any]],
    ) -> None:
        """`base`: the config the agent started with (the file, and on Windows what the
        installer was given): its local-only keys hold whatever is pushed."""
        self._base = base
        self._path = base.state_dir / SETTINGS_FILE
        self._local = local
        self._fetch = fetch
        self.config = base
        self.state = SettingsState()
        saved = self._read()
        self._document: dict[str, Any] = {}
        self._file = zlib.crc32(json.dumps(local.data, sort_keys=True, default=str).encode())
        if saved is not None and saved.file != self._file:
            saved = dataclasses.replace(saved, refused_hash="", refused_reason="")
        if saved is not None:
            # A refusal is remembered across restarts: the same push is not judged again
            # against the same file.
            self.state = SettingsState("", saved.refused_hash, saved.refused_reason)
        if saved is not None and saved.hash:
            try:
                self.config = self._merged(saved.document, saved.hash)
                self._document = saved.document
                self.state = SettingsState(saved.hash, saved.refused_hash, saved.refused_reason)
            except ConfigError as e:
                # The file changed under settings that fitted it: the file wins until the
                # collector pushes settings that fit again.
                log.error("central settings kept in %s no longer apply: %s", self._path, e)
                self.state = SettingsState(
                    refused_hash=saved.hash, refused_reason=str(e)[:_REASON_CHARS]
                )

    def _merged(self, document: Any, digest: str) -> AgentConfig:
        merged = merged_config(self._local, document, f"central settings {digest or '(none)'}")
        local_only = {k: getattr(self._base, k) for k in LOCAL_ONLY}
        return dataclasses.replace(merged, **local_only)

    def _read(self) -> _Saved | None:
        try:
            return read_saved(self._path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.error("%s unreadable, running the config file alone: %s", self._path, e)
            return None

    def _save(self) -> None:
        """What runs and the last refusal, for a restart (and for `canhgac-agent status`)."""
        data = {
            "hash": self.state.hash,
            "document": self._document,
            "refused_hash": self.state.refused_hash,
            "refused_reason": self.state.refused_reason,
            "file": self._file,
        }
        text = json.dumps(data, ensure_ascii=False, indent=1)
        try:
            atomic_write(self._path, text.encode(), mode=0o600)
        except OSError as e:  # runs anyway; a restart starts from the file until the next ack
            log.error("central settings not kept in %s: %s", self._path, e)

    def offer(self, wanted: str) -> AgentConfig | None:
        """The new config when the collector names settings this agent does not run yet and
        they pass its check; None otherwise (the same settings, or refused: `state` says why).
        A failed fetch raises the transport's error: the next ack offers them again."""
        if wanted == self.state.hash or (wanted and wanted == self.state.refused_hash):
            return None
        if wanted:
            digest, document = self._fetch()
        else:
            digest, document = "", {}
        try:
            config = self._merged(document, digest)
        except ConfigError as e:
            log.error(
                "central settings %s refused, still running %s: %s",
                digest,
                self.state.hash or "the config file alone",
                e,
            )
            # Bounded: the reason travels in every report until the next push.
            self.state = SettingsState(self.state.hash, digest, str(e)[:_REASON_CHARS])
            self._save()
            return None
        log.info("central settings %s applied", digest or "removed: running the config file alone")
        self.config = config
        self._document = document
        self.state = SettingsState(hash=digest)
        self._save()
        return config
