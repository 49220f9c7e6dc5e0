"""Agent releases at the collector: which release each agent is offered (pure rollout rules),
the cache the Submit ack reads, package files, and each agent's state for a release."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from canhgac_common.release import compare_versions, parse_manifest
from collector.model import UPDATE_KEY, AgentRecord, Placement, Release, ReleasePlace, Report

log = logging.getLogger(__name__)

__all__ = [
    "DOWNLOAD_CHUNK_BYTES",
    "AgentUpdate",
    "ReleaseBook",
    "ReleaseService",
    "agent_bucket",
    "agent_state",
    "offered_version",
    "package_path",
    "places_from_json",
    "places_json",
    "targets",
]

DEFAULT_CHANNEL = "stable"
# Bytes per message of a Download stream (a call sends at most releases.download_max_bytes).
DOWNLOAD_CHUNK_BYTES = 64 * 1024


def places_json(places: Sequence[ReleasePlace]) -> str:
    return json.dumps([p.as_dict() for p in places], ensure_ascii=False, sort_keys=True)


def places_from_json(text: str) -> tuple[ReleasePlace, ...]:
    return tuple(ReleasePlace(**p) for p in json.loads(text or "[]"))


def agent_bucket(agent_id: str) -> int:
    """The agent's place in 0..9999, fixed by its id: a share of 10 % is buckets 0..999, so
    raising a share keeps every agent it already had. CRC-32, not a cryptographic hash: it only
    has to spread ids evenly, and the ack path stays clear of OpenSSL's start-up."""
    return zlib.crc32(agent_id.encode()) % 10000


def targets(release: Release, agent_id: str, placement: Placement) -> bool:
    """Whether a live release's rollout reaches this agent: inside its places (when it names
    any) and inside its share."""
    if not release.live:
        return False
    if release.places and not any(p.holds(placement) for p in release.places):
        return False
    return agent_bucket(agent_id) < release.share * 100


def offered_version(
    releases: Sequence[Release], agent_id: str, placement: Placement, channel: str, running: str
) -> str:
    """The version this agent should go to: the newest (in version order) live release of its
    channel that reaches it, when newer than the `running` one; "" otherwise. An agent outside
    a new release's first share keeps being offered the release before it; an agent never is
    offered an older version than it runs (it would refuse it: docs/fleet.md), so withdrawing
    a release stops it reaching more agents and leaves those that run it where they are."""
    reaching = [
        r.version for r in releases if r.channel == channel and targets(r, agent_id, placement)
    ]
    newest = max(reaching, key=functools.cmp_to_key(compare_versions), default="")
    return newest if newest and compare_versions(newest, running) > 0 else ""


@dataclass(frozen=True)
class AgentUpdate:
    """One agent's state for a release, as `release show` lists it."""

    agent_id: str
    hostname: str
    placement: Placement
    running: str  # the version the agent last reported
    state: str  # done | pending | downloading | verified | installing | refused | failed | …
    detail: str
    downloaded_bytes: int


def agent_state(
    release: Release, agent: AgentRecord, snapshot: Mapping[str, Any] | None, now: float
) -> AgentUpdate:
    """Where one targeted agent stands: done once it reports the version; failed when it has
    not within `report_within` of the rollout, or said it failed or rolled back."""
    update = dict((snapshot or {}).get(UPDATE_KEY) or {})
    running = str(update.get("agent_version") or agent.agent_version)
    said = str(update.get("state", "")) if update.get("target_version") == release.version else ""
    detail = str(update.get("detail", "")) if said else ""
    downloaded = int(update.get("downloaded_bytes", 0)) if said else 0
    if compare_versions(running, release.version) >= 0:  # this release, or past it
        state = "done"
    elif said in ("refused", "failed", "rolled-back"):
        state = said
    elif release.rolled_out_at is not None and now > release.rolled_out_at + release.report_within:
        state = "failed"
        detail = detail or f"not reported within {release.report_within:g} s of the rollout"
    else:
        state = said or "pending"
    return AgentUpdate(
        agent.agent_id,
        agent.hostname,
        agent.placement,
        running,
        state,
        detail,
        downloaded,
    )


@dataclass
class ReleaseBook:
    """What the Submit ack reads: releases reloaded from the store at most every `refresh`
    seconds (the CLI changes them from another process), each agent's answer cached until
    then, and each agent's channel as its reports last said."""

    load: Callable[[], list[Release]]
    refresh: float = 10.0
    clock: Callable[[], float] = time.monotonic
    _releases: list[Release] = field(default_factory=list)
    _loaded_at: float | None = None
    _answers: dict[tuple[str, str, str], str] = field(default_factory=dict)
    _seen: dict[str, tuple[str, str]] = field(default_factory=dict)  # agent -> channel, version
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def releases(self) -> list[Release]:
        now = self.clock()
        with self._lock:
            if self._loaded_at is None or now - self._loaded_at >= self.refresh:
                self._releases = self.load()
                self._loaded_at = now
                self._answers.clear()
            return self._releases

    def note(self, agent_id: str, channel: str, version: str) -> None:
        """The channel and version the agent's newest report named."""
        if channel and version:
            self._seen[agent_id] = (channel, version)

    def offered(self, agent: AgentRecord) -> str:
        releases = self.releases()
        if not releases:
            return ""
        channel, running = self._seen.get(agent.agent_id, (DEFAULT_CHANNEL, agent.agent_version))
        key = (agent.agent_id, channel, running)
        found = self._answers.get(key)
        if found is None:
            found = self._answers[key] = offered_version(
                releases, agent.agent_id, agent.placement, channel, running
            )
        return found

    def release(self, version: str) -> Release | None:
        return next((r for r in self.releases() if r.version == version), None)

    def package(self, sha256: str) -> tuple[Release, str] | None:
        """The live release listing a package of this sha256, and the package's file name."""
        for r in self.releases():
            if not r.live:
                continue
            for p in parse_manifest(r.manifest).packages.values():
                if p.sha256 == sha256:
                    return r, p.file
        return None


def package_path(directory: Path, sha256: str, file: str) -> Path:
    """Where `release add` keeps a package under `releases.dir`: named by its hash too, so two
    releases' packages of the same file name never replace each other."""
    return directory / f"{sha256}-{Path(file).name}"


class ReleaseService:
    """What the servicer asks about releases: the version to offer on an ack, a rolled-out
    release's signed manifest, and its package files (`releases.dir`; None: not set, so
    nothing can be downloaded)."""

    def __init__(self, book: ReleaseBook, directory: Path | None) -> None:
        self.book = book
        self._dir = directory

    def offer(self, agent: AgentRecord, reports: Sequence[Report]) -> str:
        """The version for this agent's ack; its channel as its newest report says."""
        for r in sorted(reports, key=lambda r: r.seq, reverse=True):
            if r.update is not None:
                update = r.update
                self.book.note(
                    agent.agent_id,
                    str(update.get("channel", "")),
                    str(update.get("agent_version", "")),
                )
                break
        return self.book.offered(agent)

    def release(self, version: str) -> Release | None:
        found = self.book.release(version)
        return found if found is not None and found.live else None

    def open(self, sha256: str) -> contextlib.AbstractContextManager[tuple[BinaryIO, int]] | None:
        """The package file of a rolled-out release and its size; None when no such package
        is offered or its file is missing (logged: the operator must put it back)."""
        found = self.book.package(sha256)
        if found is None or self._dir is None:
            return None
        path = package_path(self._dir, sha256, found[1])
        try:
            f = path.open("rb")
        except OSError as e:
            log.error("release %s: package %s cannot be read: %s", found[0].version, path, e)
            return None
        return _opened(f)


@contextlib.contextmanager
def _opened(f: BinaryIO) -> Iterator[tuple[BinaryIO, int]]:
    with f:
        f.seek(0, 2)
        size = f.tell()
        yield f, size
