"""The Windows side of a self-update: a watcher that installs the new MSI and rolls it back
when the new version does not report (docs/fleet.md, docs/windows.md).

The agent service runs as LocalSystem and may run msiexec itself, but msiexec stops that very
service and replaces its files, so what has to outlive it runs apart: the agent copies its
frozen program (PyInstaller's onedir) to `<state_dir>\\update\\watcher\\` and starts
`canhgac-agent update watch` from there, detached, with the release public key on its command
line. The watcher checks the new package and the one of the running version in `previous\\`
again (the state dir is not the watcher's alone), runs `msiexec /i` and waits for it, then waits
for the `reported-<version>` mark the new version writes after its first acked Submit. Past
`update.report_within` it removes the new product (`msiexec /x`: the MSI's MajorUpgrade refuses
to install an older version over a newer one) and installs the kept one, whose service starts
with the same state dir, identity and spool. Every outcome goes to `result.json`, which the
agent reports; the decision is agent.update_apply.decide, the same as on Linux.

A restart of Windows while the watcher waits (commune PCs are switched off in the evening)
ends its process, not the watch: at its next start the agent (the new version, if its service
starts at all) finds the watch unfinished in `watch.json` and starts the watcher again, which
gives the new version `report_within` again from then.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil

from agent.update import (
    PREVIOUS_DIR,
    REPORTED_FILE,
    REQUEST_FILE,
    RESULT_FILE,
    msiexec_command,
    verified_package,
)
from agent.update_apply import Action, decide
from canhgac_common.files import atomic_write

__all__ = ["PLATFORM", "WATCH_FILE", "resume", "start_watcher", "watch", "watcher_command"]

log = logging.getLogger(__name__)

PLATFORM = "windows-x64"
# The watcher's record of the install it watches (the root helper's installed.json on Linux).
WATCH_FILE = "watch.json"
WATCHER_DIR = "watcher"
WATCH_LOG = "watch.log"
# msiexec's exit codes that mean installed: done; done, a restart started; done, one needed.
MSI_DONE = frozenset({0, 1641, 3010})
POLL = 5.0

Runner = Callable[[Sequence[str]], subprocess.CompletedProcess[str]]


def watcher_command(update_dir: Path, state_dir: Path, public_key: bytes) -> list[str]:
    """The watcher's command line. Frozen (the MSI's program): a fresh copy of the program's
    directory under `update_dir`, since msiexec replaces and removes the installed one while
    the watcher runs; from source: this interpreter."""
    if getattr(sys, "frozen", False):
        program = Path(sys.executable)
        copy = update_dir / WATCHER_DIR
        shutil.rmtree(copy, ignore_errors=True)
        # Contents only: copy2's CopyFile2 (CPython 3.12 on Windows) crashed the agent under
        # wine, and the copy needs no timestamps.
        shutil.copytree(program.parent, copy, copy_function=shutil.copyfile)
        start = [str(copy / program.name)]
    else:
        start = [sys.executable, "-m", "agent"]
    key = base64.b64encode(public_key).decode("ascii")
    return [*start, "--state-dir", str(state_dir), "update", "watch", "--public-key", key]


def start_watcher(update_dir: Path, public_key: bytes) -> str:
    """Starts the watcher detached (not a child of the service msiexec stops), its output
    appended to `update_dir/watch.log`; what it did, for the report."""
    argv = watcher_command(update_dir, update_dir.parent, public_key)
    flags = getattr(subprocess, "DETACHED_PROCESS", 0) | getattr(
        subprocess, "CREATE_NEW_PROCESS_GROUP", 0
    )
    with (update_dir / WATCH_LOG).open("ab") as out:
        subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            creationflags=flags,
            close_fds=True,
        )
    return f"the watcher installs it with msiexec ({update_dir / WATCH_LOG})"


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=1800)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _result(update_dir: Path, **result: Any) -> None:
    atomic_write(update_dir / RESULT_FILE, json.dumps(result).encode(), 0o600)


def watch(
    update_dir: Path,
    public_key: bytes,
    *,
    run: Runner = _run,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.time,
    poll: float = POLL,
) -> Action:
    """Installs the request in `update_dir` and watches it to its end: confirmed once the new
    version reported, rolled back when it has not within the request's `report_within`.
    Without a request, goes on watching an install whose watch ended unfinished (Windows
    restarted), giving the new version `report_within` again from now. Returns the last thing
    it did."""
    if (update_dir / REQUEST_FILE).exists():
        record = _install(update_dir, public_key, run=run, clock=clock)
        if isinstance(record, Action):
            return record
    else:
        record = _read_json(update_dir / WATCH_FILE) or {}
        if record.get("state") != "pending":
            return Action("nothing", f"no {REQUEST_FILE} and no unfinished watch in {update_dir}")
        within = float(record.get("report_within", 1800.0))
        record["deadline"] = max(float(record["deadline"]), clock() + within)
        log.info("update %s: watching again, until it reports or %.0f s", record["version"], within)
    record["watcher_pid"] = os.getpid()
    atomic_write(update_dir / WATCH_FILE, json.dumps(record).encode(), 0o600)
    version, kept = str(record["version"]), record["previous"]
    msi = update_dir / str(record["file"])
    while True:
        action = decide(
            None,
            record,
            lambda v: (update_dir / f"{REPORTED_FILE}-{v}").exists(),
            clock(),
        )
        if action.kind == "confirm":
            record["state"] = "confirmed"
        elif action.kind == "roll-back":
            record["state"] = _roll_back(update_dir, version, msi, kept, public_key, run=run)
        else:  # until the next look, or the deadline if sooner
            sleep(max(0.05, min(poll, float(record["deadline"]) - clock())))
            continue
        atomic_write(update_dir / WATCH_FILE, json.dumps(record).encode(), 0o600)
        log.info("update %s: %s (%s)", version, action.kind, action.why)
        return action


def _install(
    update_dir: Path, public_key: bytes, *, run: Runner, clock: Callable[[], float]
) -> dict[str, Any] | Action:
    """The request's package checked again and installed: the record to watch it by, or what
    ended it (refused, msiexec failed)."""
    request = _read_json(update_dir / REQUEST_FILE) or {}
    (update_dir / REQUEST_FILE).unlink(missing_ok=True)
    version, running = str(request.get("version", "")), str(request.get("running", ""))
    new = verified_package(update_dir, version, PLATFORM, public_key)
    previous = None
    if (update_dir / PREVIOUS_DIR / "manifest.json").exists():
        previous = verified_package(update_dir / PREVIOUS_DIR, running, PLATFORM, public_key)
        if previous is None:
            why = f"the package to roll back to ({running}) no longer verifies"
            return _refused(update_dir, version, why)
    if new is None:
        return _refused(update_dir, version, f"the package of {version} no longer verifies")
    # Whatever an earlier watch left is over: this one is not to be resumed until installed.
    installing = {"version": version, "state": "installing", "watcher_pid": os.getpid()}
    atomic_write(update_dir / WATCH_FILE, json.dumps(installing).encode(), 0o600)
    done = run(msiexec_command(update_dir / new[1].file, update_dir / f"install-{version}.log"))
    if done.returncode not in MSI_DONE:
        why = (
            f"msiexec /i exited {done.returncode} (install-{version}.log); Windows Installer "
            f"keeps {running} when an install fails"
        )
        log.error("update %s: %s", version, why)
        _result(update_dir, version=version, state="failed", detail=why, at=clock())
        return Action("install", why)
    kept = {"version": running, "file": previous[1].file} if previous else None
    within = float(request.get("report_within", 1800.0))
    if kept:
        detail = f"msiexec /i done; rolled back to {running} unless {version} reports"
    else:
        detail = "msiexec /i done; no roll back possible: no package of the version before"
    log.info("update %s: %s", version, detail)
    _result(update_dir, version=version, state="installed", detail=detail, at=clock())
    return {
        "version": version,
        "file": new[1].file,
        "report_within": within,
        "deadline": clock() + within,
        "state": "pending",
        "previous": kept,
    }


def resume(update_dir: Path, public_key: bytes, running: str) -> bool:
    """At the agent's start: starts the watcher again when the watch of the install of
    `running` (the version this agent is) ended unfinished: its process is gone, Windows
    restarted while it waited. True if started."""
    record = _read_json(update_dir / WATCH_FILE)
    if record is None or record.get("state") != "pending" or record.get("version") != running:
        return False
    try:
        alive = "watch" in psutil.Process(int(record.get("watcher_pid", 0))).cmdline()
    except (psutil.Error, ValueError, TypeError):
        alive = False
    if alive:
        return False
    log.warning("update %s: the watch ended unfinished; watching it again", record.get("version"))
    start_watcher(update_dir, public_key)
    return True


def _refused(update_dir: Path, version: str, why: str) -> Action:
    log.error("update %s refused: %s", version, why)
    _result(update_dir, version=version, state="refused", detail=why)
    return Action("nothing", why)


def _roll_back(
    update_dir: Path,
    version: str,
    msi: Path,
    kept: dict[str, str] | None,
    public_key: bytes,
    *,
    run: Runner,
) -> str:
    """Removes `version` and installs the kept one, checked again first; the record's new
    state."""
    why = f"{version} did not report within update.report_within"
    if kept is None:
        detail = f"{why}; no package kept to roll back to"
        _result(update_dir, version=version, state="failed", detail=detail)
        return "failed"
    if verified_package(update_dir / PREVIOUS_DIR, kept["version"], PLATFORM, public_key) is None:
        detail = f"{why}; the package of {kept['version']} kept to roll back to no longer verifies"
        log.error("update %s: %s", version, detail)
        _result(update_dir, version=version, state="failed", detail=detail)
        return "failed"
    removed = run(msiexec_command(msi, update_dir / f"remove-{version}.log", remove=True))
    if removed.returncode not in MSI_DONE:
        detail = f"{why}; msiexec /x exited {removed.returncode} (remove-{version}.log)"
        log.error("update %s: %s", version, detail)
        _result(update_dir, version=version, state="failed", detail=detail)
        return "failed"
    back = kept["version"]
    package = update_dir / PREVIOUS_DIR / kept["file"]
    again = run(msiexec_command(package, update_dir / f"install-{back}.log"))
    if again.returncode not in MSI_DONE:
        # No agent is installed now: nobody reports this, the collector shows the version
        # failed; the officer installs the MSI kept here by hand.
        detail = (
            f"{why}; removed, but msiexec /i of {back} exited {again.returncode}: no agent "
            f"is installed, install {package} by hand"
        )
        log.error("update %s: %s", version, detail)
        _result(update_dir, version=version, state="failed", detail=detail)
        return "failed"
    log.warning("update %s rolled back to %s: %s", version, back, why)
    _result(
        update_dir, version=version, state="rolled-back", detail=f"{why}; {back} installed again"
    )
    return "rolled-back"
