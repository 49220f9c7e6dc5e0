"""Signed self-update: fetch the release the collector offers, download its package in paced,
resumable chunks, verify signature and sha256, hand it to the installer (docs/fleet.md).

The agent trusts only `update.public_key`: without one, every offer is refused (said once in
the log, and in each report's UpdateState). Files live in `<state_dir>/update/`:
`<sha256>.part` (the download so far: a restart resumes from its size), then the verified
package under its own name with `manifest.json` and `manifest.sig` beside it, and `state.json`
(counters that outlive a restart). `previous/` holds the same three for the version the agent
runs, so a failed new version can be undone even on the first self-update: the leftovers of
the update that installed it, else fetched and verified like a new release. The install step
rolls back to it: on Linux the root helper (agent.update_apply), on Windows a watcher the
agent starts (agent.update_windows). Nothing here imports OpenSSL (canhgac_common.release).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from agent import __version__
from agent.errors import AgentError
from agent.model import UpdateState
from agent.settings import Duration, Section, Size, option
from agent.transport.wire import StatusCode
from canhgac_common.files import atomic_write
from canhgac_common.release import (
    Manifest,
    ManifestError,
    Package,
    compare_versions,
    public_key_bytes,
    sha256_file,
    verify_manifest,
)

__all__ = [
    "MANIFEST_FILE",
    "PREVIOUS_DIR",
    "REPORTED_FILE",
    "REQUEST_FILE",
    "RESULT_FILE",
    "SIGNATURE_FILE",
    "UpdateConfig",
    "Updater",
    "msiexec_command",
    "pause_before_next",
    "this_platform",
    "verified_package",
]

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
# Written last, once the package is verified: what the root helper (Linux) or the watcher
# (Windows) acts on.
REQUEST_FILE = "request.json"
# Written after the first acked Submit on a new version: the helper's "it came back".
REPORTED_FILE = "reported"
# Written by the root helper or the watcher: how its last install or roll back went.
RESULT_FILE = "result.json"
# The running version's verified package with its manifest.json and manifest.sig: what the
# install step keeps to roll back to.
PREVIOUS_DIR = "previous"
_STATE_FILE = "state.json"


class UpdateConfig(Section):
    """`update:` in the agent config (docs/fleet.md, Releases)."""

    enabled: bool = True
    # The release public key: a path to its PEM file, or the key in base64. None: refuse all.
    public_key: str | None = None
    channel: str = option(default="stable", pattern=r"^[a-z][a-z0-9-]{0,29}$")
    # Average download rate over the collector connection; commune links are slow.
    rate: Size = option(default=64 * 1024, ge=1024)
    # Bytes asked for in one Download call.
    chunk: Size = option(default=64 * 1024, ge=4096, le=1024 * 1024)
    # Told to the installer: a new version that has not reported this long after its install
    # is rolled back (docs/fleet.md).
    report_within: Duration = option(default=1800.0, gt=0)
    # After a refused or failed attempt, the same version is tried again this much later.
    retry_after: Duration = option(default=3600.0, gt=0)
    # After a call that failed on the link (cut, collector away), the download goes on this
    # much later, from where it stopped.
    link_retry: Duration = option(default=30.0, gt=0)


def this_platform() -> str:
    """The manifest's platform key of this machine."""
    return "windows-x64" if sys.platform == "win32" else "debian-amd64"


def pause_before_next(sent: int, elapsed: float, rate: float) -> float:
    """Seconds to wait before asking for more, so that `sent` bytes over `elapsed` seconds
    stay within `rate` bytes per second on average (0: go on at once)."""
    return max(0.0, sent / rate - elapsed)


def msiexec_command(
    msi: Path, log_file: Path, properties: dict[str, str] | None = None, *, remove: bool = False
) -> list[str]:
    """A silent MSI install (Windows), or with `remove` its uninstall: no UI, no reboot, a
    verbose log. The agent service is stopped and started again by the MSI's own ServiceControl
    table."""
    action = "/x" if remove else "/i"
    argv = ["msiexec.exe", action, str(msi), "/qn", "/norestart", "/l*v", str(log_file)]
    argv += [f"{k}={v}" for k, v in sorted((properties or {}).items())]
    return argv


class Transport(Protocol):
    def get_release(self, version: str) -> tuple[bytes, bytes]: ...
    def download(
        self, sha256: str, offset: int, length: int
    ) -> Iterable[tuple[int, int, bytes]]: ...


class Refused(AgentError):
    """A manifest or package that does not verify: counted, never installed."""


def load_public_key(value: str | None) -> bytes | None:
    """The key's 32 bytes; None when not configured. The key itself (PEM or base64), else the
    path of its PEM file."""
    if value is None:
        return None
    try:
        return public_key_bytes(value)
    except ManifestError:
        if value.strip().startswith("-----"):
            raise AgentError("update.public_key: not an Ed25519 public key in PEM") from None
    try:
        text = Path(value).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as e:
        raise AgentError(f"update.public_key: cannot read {value}: {e}") from None
    try:
        return public_key_bytes(text)
    except ManifestError as e:
        raise AgentError(f"update.public_key: {value}: {e}") from None


def verified_package(
    directory: Path, version: str, platform: str, key: bytes
) -> tuple[Manifest, Package] | None:
    """The signed manifest of `version` in `directory` and its `platform` package, when the
    package file beside it matches it (size and sha256); None otherwise."""
    try:
        data = (directory / MANIFEST_FILE).read_bytes()
        signature = (directory / SIGNATURE_FILE).read_bytes()
        manifest = verify_manifest(data, signature, key)
    except (OSError, ManifestError):
        return None
    package = manifest.packages.get(platform)
    if manifest.version != version or package is None:
        return None
    file = directory / package.file
    try:
        if file.stat().st_size != package.size or sha256_file(file) != package.sha256:
            return None
    except OSError:
        return None
    return manifest, package


@dataclass
class _Counters:
    refused_total: int = 0


class Updater:
    """Works toward the version the collector offers, on a thread of its own so a slow
    download never holds collection or delivery. `install(dir, manifest, package)` is the
    platform's step once a package is verified (Linux: a request for the root helper)."""

    def __init__(
        self,
        cfg: UpdateConfig,
        state_dir: Path,
        transport: Callable[[], Transport],
        *,
        install: Callable[[Path, Manifest, Package], str] | None = None,
        platform: str | None = None,
        version: str = __version__,
        sleep: Callable[[float], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cfg = cfg
        self.dir = state_dir / "update"
        self._transport = transport
        self._install = install or self._request_install
        self._platform = platform or this_platform()
        self._version = version
        self._clock = clock
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._offered = ""
        self._tried: dict[str, float] = {}  # version -> when its last attempt ended badly
        self._key_error: str | None = None
        try:
            self._key = load_public_key(cfg.public_key)
        except AgentError as e:
            self._key, self._key_error = None, str(e)
        self._counters = self._load_counters()
        self._state = UpdateState(channel=cfg.channel, refused_total=self._counters.refused_total)
        self._said_no_key = False
        self._result_seen: float | None = None  # mtime of the result.json last read
        self._helper_result()
        if self._platform == "windows-x64" and self._key is not None:
            from agent.update_windows import resume  # noqa: PLC0415 (Windows only)

            resume(self.dir, self._key, self._version)

    def _request_install(self, directory: Path, manifest: Manifest, package: Package) -> str:
        assert self._key is not None
        return request_install(
            directory,
            manifest,
            package,
            report_within=self._cfg.report_within,
            public_key=self._key,
            running=self._version,
        )

    def _helper_result(self) -> None:
        """What the root helper (Linux) or the watcher (Windows) did last: a version it rolled
        back or could not install is reported and not tried again until the collector offers
        another one."""
        path = self.dir / RESULT_FILE
        try:
            seen = path.stat().st_mtime
            if seen == self._result_seen:
                return
            self._result_seen = seen
            result = json.loads(path.read_text(encoding="utf-8"))
            version, state = str(result["version"]), str(result["state"])
        except (OSError, ValueError, KeyError, TypeError):
            return
        if version == self._version or state == "installed":
            return
        self._tried[version] = float("inf")
        self._set(target_version=version, state=state, detail=str(result.get("detail", "")))

    # ---- what the runner calls -------------------------------------------------------------

    def state(self) -> UpdateState:
        # The helper may finish after this agent started: the installer starts the service of
        # the version it puts back before the helper can write what it did.
        self._helper_result()
        with self._lock:
            return self._state

    def offer(self, version: str) -> None:
        """The version named on the last ack; wakes the worker when it is new."""
        if version == self._offered:
            return
        self._offered = version
        if not version or version == self._version:
            self._set(target_version=version, state="", detail="", downloaded_bytes=0)
            return
        self._wake.set()

    def acked(self) -> None:
        """A Submit of this version was acked: the marker the root helper waits for."""
        marker = self.dir / f"{REPORTED_FILE}-{self._version}"
        if self.dir.is_dir() and not marker.exists():
            try:
                marker.write_text(f"{time.time():.0f}\n", encoding="ascii")
            except OSError as e:
                log.warning("update: cannot write %s: %s", marker, e)

    def run(self, stop: threading.Event) -> None:
        """The worker: until `stop`, work toward each new offer."""
        threading.Thread(target=self._relay, args=(stop,), daemon=True).start()
        while not self._stop.is_set():
            self._wake.wait(min(3600.0, self._cfg.retry_after))
            self._wake.clear()
            version = self._offered
            if self._stop.is_set() or not version or version == self._version:
                continue
            last = self._tried.get(version)
            if last is not None and not self._clock() - last >= self._cfg.retry_after:
                continue
            outcome = self.work(version)
            if outcome is False:
                self._tried[version] = self._clock()
            elif outcome is None and not self._stop.wait(self._cfg.link_retry):
                self._wake.set()  # the link failed: go on from where the download stopped

    def _relay(self, stop: threading.Event) -> None:
        stop.wait()
        self._stop.set()
        self._wake.set()

    # ---- the steps ---------------------------------------------------------------------------

    def work(self, version: str) -> bool | None:
        """One attempt at `version`: True once handed to the installer, None when stopped or
        the link failed (tried again at the next offer), False when refused or failed."""
        if self._key is None:
            self._no_key(version)
            return False
        try:
            manifest, data, signature = self._manifest(version)
            package = manifest.packages.get(self._platform)
            if package is None:
                raise _Failed(f"release {version} has no package for {self._platform}")
            # The running version's package first: its leftovers may share the new one's name.
            roll_back = self._running_package(version)
            if roll_back is None or self._download(version, package, self.dir) is None:
                return None
            # Beside the package for the root helper, which checks them again before dpkg.
            atomic_write(self.dir / MANIFEST_FILE, data, 0o600)
            atomic_write(self.dir / SIGNATURE_FILE, signature, 0o600)
            self._set(target_version=version, state="verified", detail="")
            detail = self._install(self.dir, manifest, package)
        except Refused as e:
            self._refuse(version, str(e))
            return False
        except (_Failed, OSError) as e:  # no package for this platform, a full disk
            log.error("update to %s failed: %s", version, e)
            self._set(target_version=version, state="failed", detail=str(e))
            return False
        except AgentError as e:  # the link (DeliveryError): tried again later
            log.warning("update to %s: %s", version, e)
            self._set(target_version=version, detail=str(e))
            return None
        detail = f"{detail}; {roll_back}" if roll_back else detail
        log.info("update to %s: %s", version, detail)
        self._set(target_version=version, state="installing", detail=detail)
        return True

    def _running_package(self, version: str) -> str | None:
        """Makes sure `previous/` holds the verified package of the version this agent runs;
        what to say about the roll back, or None when stopped. The leftovers of the update that
        installed this version are enough; else the collector's signed release of it,
        downloaded and checked as a new one is. A release that does not verify is refused like
        one; no release of it at the collector leaves `previous/` empty and the update goes on
        without a roll back, said in the log and in the state the collector shows."""
        kept = self.dir / PREVIOUS_DIR
        running = self._version
        leftover = self._verified_at(self.dir, running)
        if leftover is not None:  # from the update that installed the running version
            shutil.rmtree(kept, ignore_errors=True)
            kept.mkdir(mode=0o700)
            for name in (MANIFEST_FILE, SIGNATURE_FILE, leftover.file):
                os.replace(self.dir / name, kept / name)
        if self._verified_at(kept, running) is None:
            package = None
            try:
                data, signature = self._transport().get_release(running)
            except AgentError as e:
                # DeliveryError's code (agent.transport.client imports agent.config, which
                # imports this module); anything but NOT_FOUND is the link, tried again later.
                if getattr(e, "code", None) is not StatusCode.NOT_FOUND:
                    raise
            else:
                package = self._verify(running, data, signature).packages.get(self._platform)
            if package is None:
                shutil.rmtree(kept, ignore_errors=True)
                why = (
                    "no roll back possible: the collector has no rolled-out release of the "
                    f"running {running} for {self._platform}"
                )
                log.warning("update to %s: %s", version, why)
                return why
            kept.mkdir(mode=0o700, exist_ok=True)
            for stale in kept.iterdir():  # another version's files; a .part may be resumed
                if stale.suffix != ".part":
                    stale.unlink()
            if self._download(running, package, kept, target=version) is None:
                return None
            atomic_write(kept / MANIFEST_FILE, data, 0o600)
            atomic_write(kept / SIGNATURE_FILE, signature, 0o600)
        within = f"{self._cfg.report_within:g} s"
        return f"rolled back to {running} unless {version} reports within {within}"

    def _verified_at(self, directory: Path, version: str) -> Package | None:
        """This platform's package of `version` when `directory` holds its signed manifest and
        a package file that matches it; None otherwise."""
        assert self._key is not None
        found = verified_package(directory, version, self._platform, self._key)
        return found[1] if found else None

    def _no_key(self, version: str) -> None:
        why = self._key_error or "no update.public_key configured: updates are refused"
        if not self._said_no_key:
            log.warning("update to %s refused: %s", version, why)
            self._said_no_key = True
        self._set(target_version=version, state="refused", detail=why, downloaded_bytes=0)

    def _manifest(self, version: str) -> tuple[Manifest, bytes, bytes]:
        data, signature = self._transport().get_release(version)
        manifest = self._verify(version, data, signature)
        if compare_versions(manifest.version, self._version) <= 0:
            # A replayed older release (its signature still good) would bring back the faults
            # it had: refused, as TUF does. Going back means releasing the old code anew.
            raise Refused(
                f"release {version}: not newer than the running {self._version} "
                "(an older release is never installed: release the code to go back to under a "
                "newer version)"
            )
        if manifest.channel != self._cfg.channel:
            raise Refused(
                f"release {version}: signed for channel {manifest.channel}, "
                f"not {self._cfg.channel} (update.channel)"
            )
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return manifest, data, signature

    def _verify(self, version: str, data: bytes, signature: bytes) -> Manifest:
        """The signed manifest of `version`, or Refused."""
        assert self._key is not None
        try:
            manifest = verify_manifest(data, signature, self._key)
        except ManifestError as e:
            raise Refused(f"release {version}: {e}") from None
        if manifest.version != version:
            raise Refused(f"release {version}: the signed manifest is for {manifest.version}")
        return manifest

    def _download(
        self, version: str, package: Package, directory: Path, target: str = ""
    ) -> Path | None:
        """The verified package of `version` in `directory`, or None when stopped. Resumes
        from the partial file. `target`: the version worked toward, when this is the running
        one's package (to roll back to)."""
        part = directory / f"{package.sha256}.part"
        done = directory / package.file
        if done.exists() and sha256_file(done) == package.sha256:
            return done
        for other in directory.glob("*.part"):  # an abandoned release's download
            if other != part:
                other.unlink(missing_ok=True)
        offset = part.stat().st_size if part.exists() else 0
        if offset > package.size:
            part.unlink()
            offset = 0
        if offset:
            log.info("update to %s: resuming the download at byte %d", version, offset)
        detail = f"the package of the running {version}, to roll back to" if target else ""
        self._set(
            target_version=target or version,
            state="downloading",
            detail=detail,
            downloaded_bytes=offset,
        )
        start, sent = self._clock(), 0
        with part.open("ab") as out:
            while offset < package.size:
                want = min(self._cfg.chunk, package.size - offset)
                for at, size, data in self._transport().download(package.sha256, offset, want):
                    if at != offset or size != package.size or len(data) > package.size - offset:
                        raise Refused(
                            f"release {version}: the collector sent bytes at {at} of {size}, "
                            f"expected {offset} of {package.size}"
                        )
                    out.write(data)
                    offset += len(data)
                    sent += len(data)
                out.flush()
                os.fsync(out.fileno())
                self._set(downloaded_bytes=offset)
                if offset < package.size:
                    pause = pause_before_next(sent, self._clock() - start, self._cfg.rate)
                    if self._sleep(pause) or self._stop.is_set():
                        return None
        if sha256_file(part) != package.sha256:
            part.unlink()
            raise Refused(f"release {version}: {package.file}: sha256 does not match the manifest")
        os.replace(part, done)
        return done

    def _refuse(self, version: str, why: str) -> None:
        with self._lock:
            self._counters.refused_total += 1
        self._save_counters()
        log.error(
            "update to %s refused (%d so far): %s", version, self._counters.refused_total, why
        )
        self._set(target_version=version, state="refused", detail=why)

    def _set(self, **changes: Any) -> None:
        with self._lock:
            self._state = replace(
                self._state, refused_total=self._counters.refused_total, **changes
            )

    def _load_counters(self) -> _Counters:
        try:
            data = json.loads((self.dir / _STATE_FILE).read_text(encoding="utf-8"))
            return _Counters(refused_total=int(data.get("refused_total", 0)))
        except (OSError, ValueError, AttributeError, TypeError):
            return _Counters()

    def _save_counters(self) -> None:
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            text = json.dumps({"refused_total": self._counters.refused_total})
            atomic_write(self.dir / _STATE_FILE, text.encode(), 0o600)
        except OSError as e:
            log.warning("update: cannot keep the refused count: %s", e)


class _Failed(AgentError):
    """An attempt that cannot succeed as things stand (no package for this platform)."""


def request_install(
    directory: Path,
    manifest: Manifest,
    package: Package,
    *,
    report_within: float,
    public_key: bytes,
    running: str = __version__,
) -> str:
    """The platform's install step for a verified package: a request beside it, for the root
    helper (Linux, agent.update_apply) or for the watcher started here (Windows,
    agent.update_windows); what it did, for the report."""
    request = {
        "version": manifest.version,
        "file": package.file,
        "sha256": package.sha256,
        "running": running,
        "report_within": report_within,
        "requested_at": time.time(),
    }
    atomic_write(directory / REQUEST_FILE, json.dumps(request).encode(), 0o600)
    if sys.platform != "win32":
        return "waiting for canhgac-agent-update (root) to install it"
    from agent.update_windows import start_watcher  # noqa: PLC0415 (Windows only)

    return start_watcher(directory, public_key)
