"""The root side of a Linux self-update (`canhgac-agent update apply`, run by
canhgac-agent-update.service): the agent, a system user under a hardened unit, cannot run dpkg,
so it leaves a verified package and `request.json` in `<state_dir>/update/`, and in `previous/`
the package of the version it runs; this checks both again as root, keeps the running one,
installs the new one with dpkg, and rolls back to the kept one when the new version has not
reported within `update.report_within` (docs/fleet.md).

What it decides is pure (`decide`); what it does to files and dpkg is `apply`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import AgentError
from agent.update import (
    MANIFEST_FILE,
    PREVIOUS_DIR,
    REPORTED_FILE,
    REQUEST_FILE,
    RESULT_FILE,
    SIGNATURE_FILE,
    UpdateConfig,
    load_public_key,
)
from canhgac_common.files import atomic_write
from canhgac_common.release import (
    ManifestError,
    compare_versions,
    sha256_file,
    verify_manifest,
)

__all__ = ["INSTALLED_FILE", "Action", "apply", "decide", "dpkg_install_command"]

log = logging.getLogger(__name__)

# In the root-owned keep dir: what the helper installed last, and the package to roll back to.
INSTALLED_FILE = "installed.json"
PLATFORM = "debian-amd64"


@dataclass(frozen=True)
class Action:
    kind: str  # install | roll-back | confirm | nothing
    why: str = ""


def decide(
    request: dict[str, Any] | None,
    installed: dict[str, Any] | None,
    reported: Callable[[str], bool],
    now: float,
) -> Action:
    """What to do now: install a new request; else confirm the version installed last once
    it reported, or roll it back when its time is up; else nothing."""
    if request is not None:
        return Action("install", f"request for {request.get('version')}")
    if installed is None or installed.get("state") != "pending":
        return Action("nothing")
    version = str(installed.get("version"))
    if reported(version):
        return Action("confirm", f"{version} reported")
    if now >= float(installed.get("deadline", 0)):
        return Action("roll-back", f"{version} did not report by its deadline")
    return Action("nothing", f"waiting for {version} to report")


def dpkg_install_command(package: Path, root: Path | None = None) -> list[str]:
    """`dpkg -i` of one package; `root`: another dpkg root (tests), never the live system."""
    argv = ["dpkg"]
    if root is not None:
        argv += [f"--root={root}", "--force-not-root", "--force-script-chrootless"]
    return [*argv, "--force-confold", "-i", str(package)]


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.warning("%s: unreadable, ignored: %s", path, e)
        return None
    return data if isinstance(data, dict) else None


def _result(update_dir: Path, **result: Any) -> None:
    """What the agent reports next (readable by the agent's user: this runs as root)."""
    atomic_write(update_dir / RESULT_FILE, json.dumps(result).encode(), 0o644)


def apply(
    cfg: UpdateConfig,
    state_dir: Path,
    keep_dir: Path,
    now: float,
    *,
    run: Callable[[Sequence[str]], subprocess.CompletedProcess[str]] | None = None,
    dpkg_root: Path | None = None,
) -> Action:
    """One pass of the helper; returns what it did. Every outcome reaches the agent through
    `result.json` in its update dir."""
    runner = run or _run
    update_dir = state_dir / "update"
    keep_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    installed = _read_json(keep_dir / INSTALLED_FILE)
    action = decide(
        _read_json(update_dir / REQUEST_FILE),
        installed,
        lambda v: (update_dir / f"{REPORTED_FILE}-{v}").exists(),
        now,
    )
    if action.kind == "install":
        _install(cfg, update_dir, keep_dir, now=now, run=runner, dpkg_root=dpkg_root)
    elif action.kind == "confirm":
        assert installed is not None
        atomic_write(
            keep_dir / INSTALLED_FILE, json.dumps({**installed, "state": "confirmed"}).encode()
        )
    elif action.kind == "roll-back":
        assert installed is not None
        version = str(installed.get("version"))
        why = f"{version} did not report within update.report_within"
        previous = installed.get("previous")
        if not _roll_back(
            update_dir,
            keep_dir,
            version=version,
            previous=previous,
            why=why,
            run=runner,
            dpkg_root=dpkg_root,
        ):
            # Said once: the next passes have nothing more to do for this version.
            failed = {**installed, "state": "failed"}
            atomic_write(keep_dir / INSTALLED_FILE, json.dumps(failed).encode())
    return action


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=900)


def _install(
    cfg: UpdateConfig,
    update_dir: Path,
    keep_dir: Path,
    *,
    now: float,
    run: Callable[[Sequence[str]], subprocess.CompletedProcess[str]],
    dpkg_root: Path | None,
) -> None:
    request = _read_json(update_dir / REQUEST_FILE) or {}
    (update_dir / REQUEST_FILE).unlink(missing_ok=True)
    version = str(request.get("version", ""))
    try:
        key = load_public_key(cfg.public_key)
        if key is None:
            raise AgentError("no update.public_key configured: updates are refused")
        package = _verified_copy(key, update_dir, keep_dir, version)
        name = _package_name(package, run)
        installed = _installed_version(name, run, dpkg_root)
        if installed and compare_versions(version, installed) <= 0:
            # The agent account (or whoever took it) can leave any validly signed request, old
            # ones too, and an old release brings back the faults it had. The helper's own roll
            # back is not a request and does not pass here.
            raise AgentError(
                f"{version} is not newer than the installed {name} {installed}: an older "
                "release is never installed"
            )
        previous = _previous(key, update_dir, keep_dir, name, installed, run=run)
    except AgentError as e:
        log.error("update %s refused: %s", version, e)
        _result(update_dir, version=version, state="refused", detail=str(e), at=now)
        return
    wanted = {INSTALLED_FILE, package.name} | ({previous["file"]} if previous else set())
    for old in keep_dir.iterdir():  # packages of installs before these
        if old.name not in wanted:
            old.unlink()
    done = run(dpkg_install_command(package, dpkg_root))
    if done.returncode != 0:
        why = f"dpkg -i failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-300:]}"
        log.error("update %s: %s", version, why)
        # dpkg may have left the agent half-installed: the version before goes back on.
        _roll_back(
            update_dir,
            keep_dir,
            version=version,
            previous=previous,
            why=why,
            run=run,
            dpkg_root=dpkg_root,
        )
        return
    record = {
        "version": version,
        "file": package.name,
        "installed_at": now,
        "deadline": now + cfg.report_within,
        "state": "pending",
        "previous": previous,
    }
    atomic_write(keep_dir / INSTALLED_FILE, json.dumps(record).encode())
    if previous:
        log.info("update %s installed; rolled back unless it reports by then", version)
        detail = f"dpkg -i done; rolled back to {previous['version']} unless {version} reports"
    else:
        detail = (
            "dpkg -i done; no roll back possible: the agent left no package of the version before"
        )
        log.warning("update %s installed; %s", version, detail)
    _result(update_dir, version=version, state="installed", detail=detail, at=now)


def _verified_copy(key: bytes, directory: Path, keep_dir: Path, version: str) -> Path:
    """The package of `version` that `directory` holds with its signed manifest, copied into
    the root-owned keep dir and checked there (the agent's dir is writable by the agent: a file
    checked there could change before dpkg)."""
    try:
        data = (directory / MANIFEST_FILE).read_bytes()
        signature = (directory / SIGNATURE_FILE).read_bytes()
        manifest = verify_manifest(data, signature, key)
    except OSError as e:
        raise AgentError(f"{e.filename}: cannot read: {e.strerror}") from None
    except ManifestError as e:
        raise AgentError(f"{directory / MANIFEST_FILE}: {e}") from None
    package = manifest.packages.get(PLATFORM)
    if package is None or manifest.version != version:
        raise AgentError(
            f"{directory / MANIFEST_FILE}: the signed manifest is for {manifest.version}, "
            f"not {version} on {PLATFORM}"
        )
    target = keep_dir / f"{package.sha256}-{package.file}"
    try:
        shutil.copyfile(directory / package.file, target)
    except OSError as e:
        raise AgentError(f"{e.filename}: cannot copy: {e.strerror}") from None
    if target.stat().st_size != package.size or sha256_file(target) != package.sha256:
        target.unlink()
        raise AgentError(f"{package.file}: sha256 or size does not match the signed manifest")
    os.chmod(target, 0o600)
    return target


def _previous(
    key: bytes,
    update_dir: Path,
    keep_dir: Path,
    name: str,
    installed: str,
    *,
    run: Callable[[Sequence[str]], subprocess.CompletedProcess[str]],
) -> dict[str, Any] | None:
    """The package of the installed version that the agent left in `previous/`, checked as the
    new one is and kept to roll back to; None when it left none (no release of it at the
    collector: the install goes on, said in the result). One that does not verify, or is not
    the installed version, refuses the whole request: the agent checked it before asking, so
    something changed its files since, and the new version would go on without the roll back
    the agent announced."""
    directory = update_dir / PREVIOUS_DIR
    if not (directory / MANIFEST_FILE).exists():
        return None
    try:
        if not installed:
            raise AgentError(f"dpkg has no {name} installed")
        package = _verified_copy(key, directory, keep_dir, installed)
        if _package_name(package, run) != name:
            package.unlink()
            raise AgentError(f"{package.name} is not a package of {name}")
    except AgentError as e:
        raise AgentError(f"the package to roll back to: {e}") from None
    return {"version": installed, "file": package.name}


def _package_name(
    package: Path, run: Callable[[Sequence[str]], subprocess.CompletedProcess[str]]
) -> str:
    field = run(["dpkg-deb", "--field", str(package), "Package"])
    name = field.stdout.strip()
    if field.returncode != 0 or not name:
        raise AgentError(f"{package.name}: not a Debian package: {field.stderr.strip()[-300:]}")
    return name


def _installed_version(
    name: str,
    run: Callable[[Sequence[str]], subprocess.CompletedProcess[str]],
    dpkg_root: Path | None,
) -> str:
    """The version of `name` dpkg has installed; "" when none."""
    root = [f"--root={dpkg_root}"] if dpkg_root is not None else []
    query = run(["dpkg-query", *root, "-W", "-f=${Version}", name])
    return query.stdout.strip() if query.returncode == 0 else ""


def _roll_back(
    update_dir: Path,
    keep_dir: Path,
    *,
    version: str,
    previous: dict[str, Any] | None,
    why: str,
    run: Callable[[Sequence[str]], subprocess.CompletedProcess[str]],
    dpkg_root: Path | None,
) -> bool:
    """Install `previous` again (the package kept before `version`), and say so."""
    if not previous:
        detail = f"{why}; no package kept to roll back to"
        _result(update_dir, version=version, state="failed", detail=detail)
        return False
    done = run(dpkg_install_command(keep_dir / str(previous["file"]), dpkg_root))
    if done.returncode != 0:
        detail = f"{why}; roll back to {previous['version']} failed: {done.stderr.strip()[-300:]}"
        log.error("update %s: %s", version, detail)
        _result(update_dir, version=version, state="failed", detail=detail)
        return False
    log.warning("update %s rolled back to %s: %s", version, previous["version"], why)
    record = {"version": previous["version"], "file": previous["file"], "state": "confirmed"}
    atomic_write(keep_dir / INSTALLED_FILE, json.dumps(record).encode())
    _result(
        update_dir,
        version=version,
        state="rolled-back",
        detail=f"{why}; {previous['version']} installed again",
    )
    return True
