"""The Windows watcher (agent.update_windows): install, confirm, roll back and refuse, with
msiexec recorded (this file) or a stand-in `msiexec.exe` on PATH run by the real command line
and the detached start (the end of this file). The real msiexec: tests/packaging/
test_msi_wine.py::test_self_update_rolls_back_a_version_that_does_not_report."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.update import (
    MANIFEST_FILE,
    PREVIOUS_DIR,
    REQUEST_FILE,
    RESULT_FILE,
    SIGNATURE_FILE,
    UpdateConfig,
    Updater,
)
from agent.update_windows import WATCH_FILE, resume, watch, watcher_command
from canhgac_common.release import Manifest, Package, manifest_bytes, sha256_hasher

NEW, RUNNING = "0.2.0", "0.1.0"


def _key() -> tuple[Ed25519PrivateKey, bytes]:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key, raw


def _release(directory: Path, version: str, key: Ed25519PrivateKey) -> Path:
    """A signed release of `version` laid out as the agent leaves it: MSI, manifest, signature."""
    directory.mkdir(parents=True, exist_ok=True)
    data = f"an MSI of {version}".encode() * 100
    msi = directory / f"canhgac-agent-{version}.msi"
    msi.write_bytes(data)
    sha = sha256_hasher()
    sha.update(data)
    package = Package("windows-x64", msi.name, len(data), sha.hexdigest())
    manifest = manifest_bytes(Manifest(version, "stable", 1.0, {"windows-x64": package}))
    (directory / MANIFEST_FILE).write_bytes(manifest)
    (directory / SIGNATURE_FILE).write_bytes(key.sign(manifest))
    return msi


def _update_dir(tmp_path: Path, *, previous: bool = True) -> tuple[Path, bytes, Path, Path]:
    key, raw = _key()
    update_dir = tmp_path / "update"
    new = _release(update_dir, NEW, key)
    old = _release(update_dir / PREVIOUS_DIR, RUNNING, key) if previous else Path()
    request = {"version": NEW, "file": new.name, "running": RUNNING, "report_within": 600.0}
    (update_dir / REQUEST_FILE).write_text(json.dumps(request))
    return update_dir, raw, new, old


class Msiexec:
    """Records each msiexec command line and answers with the next exit code (0 after them);
    `reports_after`: the new version writes its reported mark on that many polls."""

    def __init__(self, update_dir: Path, *codes: int, reports_after: int | None = None) -> None:
        self.update_dir, self.codes, self.reports_after = update_dir, list(codes), reports_after
        self.calls: list[tuple[str, str]] = []
        self.now, self.polls = 1000.0, 0

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        assert argv[0] == "msiexec.exe" and "/qn" in argv and "/norestart" in argv
        assert Path(argv[argv.index("/l*v") + 1]).parent == self.update_dir
        self.calls.append((argv[1], Path(argv[2]).name))
        code = self.codes.pop(0) if self.codes else 0
        return subprocess.CompletedProcess(list(argv), code, "", "")

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.polls += 1
        if self.polls == self.reports_after:
            (self.update_dir / f"reported-{NEW}").write_text("1\n")

    def watch(self, raw: bytes):  # type: ignore[no-untyped-def]
        return watch(self.update_dir, raw, run=self.run, sleep=self.sleep, clock=lambda: self.now)


def _result(update_dir: Path) -> dict[str, object]:
    result: dict[str, object] = json.loads((update_dir / RESULT_FILE).read_text())
    return result


def test_a_version_that_reports_is_confirmed(tmp_path: Path) -> None:
    update_dir, raw, new, _ = _update_dir(tmp_path)
    msiexec = Msiexec(update_dir, reports_after=3)
    assert msiexec.watch(raw).kind == "confirm"
    assert msiexec.calls == [("/i", new.name)]
    assert not (update_dir / REQUEST_FILE).exists()
    assert json.loads((update_dir / WATCH_FILE).read_text())["state"] == "confirmed"
    result = _result(update_dir)
    assert (result["version"], result["state"]) == (NEW, "installed")
    assert result["detail"] == f"msiexec /i done; rolled back to {RUNNING} unless {NEW} reports"


def test_no_report_within_the_time_removes_it_and_installs_the_kept_one(tmp_path: Path) -> None:
    update_dir, raw, new, old = _update_dir(tmp_path)
    msiexec = Msiexec(update_dir)
    assert msiexec.watch(raw).kind == "roll-back"
    # Removed first: the MSI's MajorUpgrade refuses an older version over a newer one.
    assert msiexec.calls == [("/i", new.name), ("/x", new.name), ("/i", old.name)]
    assert msiexec.now >= 1000.0 + 600.0  # not before report_within had passed
    result = _result(update_dir)
    assert (result["version"], result["state"]) == (NEW, "rolled-back")
    assert result["detail"] == (
        f"{NEW} did not report within update.report_within; {RUNNING} installed again"
    )
    assert json.loads((update_dir / WATCH_FILE).read_text())["state"] == "rolled-back"


def test_a_failed_install_is_reported_and_not_rolled_back_by_hand(tmp_path: Path) -> None:
    update_dir, raw, new, _ = _update_dir(tmp_path)
    msiexec = Msiexec(update_dir, 1603)
    assert msiexec.watch(raw).kind == "install"
    assert msiexec.calls == [("/i", new.name)]  # Windows Installer undoes its failed install
    result = _result(update_dir)
    assert result["state"] == "failed"
    assert str(result["detail"]).startswith(f"msiexec /i exited 1603 (install-{NEW}.log)")


def test_a_restart_needed_counts_as_installed(tmp_path: Path) -> None:
    update_dir, raw, _, _ = _update_dir(tmp_path)
    msiexec = Msiexec(update_dir, 3010, reports_after=1)
    assert msiexec.watch(raw).kind == "confirm"


def test_without_a_kept_package_the_failure_is_said_and_nothing_removed(tmp_path: Path) -> None:
    update_dir, raw, new, _ = _update_dir(tmp_path, previous=False)
    msiexec = Msiexec(update_dir)
    assert msiexec.watch(raw).kind == "roll-back"
    assert msiexec.calls == [("/i", new.name)]
    result = _result(update_dir)
    assert result["state"] == "failed"
    assert str(result["detail"]).endswith("no package kept to roll back to")


def test_a_changed_package_is_refused_before_msiexec(tmp_path: Path) -> None:
    update_dir, raw, new, _ = _update_dir(tmp_path)
    new.write_bytes(new.read_bytes()[:-1] + b"!")
    msiexec = Msiexec(update_dir)
    assert msiexec.watch(raw).kind == "nothing"
    assert msiexec.calls == []
    assert _result(update_dir) == {
        "version": NEW,
        "state": "refused",
        "detail": f"the package of {NEW} no longer verifies",
    }
    # Another key's signature: the same.
    update_dir, _, _, _ = _update_dir(tmp_path / "other")
    assert Msiexec(update_dir).watch(_key()[1]).kind == "nothing"
    assert _result(update_dir)["state"] == "refused"


def test_a_changed_package_to_roll_back_to_refuses_the_request(tmp_path: Path) -> None:
    update_dir, raw, _, old = _update_dir(tmp_path)
    old.write_bytes(b"something else")
    msiexec = Msiexec(update_dir)
    assert msiexec.watch(raw).kind == "nothing"
    assert msiexec.calls == []
    assert _result(update_dir)["detail"] == (
        f"the package to roll back to ({RUNNING}) no longer verifies"
    )


def test_one_changed_while_waiting_is_not_installed(tmp_path: Path) -> None:
    update_dir, raw, new, old = _update_dir(tmp_path)
    msiexec = Msiexec(update_dir)

    def sleep(seconds: float) -> None:
        Msiexec.sleep(msiexec, seconds)
        old.write_bytes(b"changed during the wait")

    msiexec.sleep = sleep  # type: ignore[method-assign]
    assert msiexec.watch(raw).kind == "roll-back"
    assert msiexec.calls == [("/i", new.name)]  # the new one stays: nothing safe to go back to
    result = _result(update_dir)
    assert result["state"] == "failed"
    assert "kept to roll back to no longer verifies" in str(result["detail"])


def test_a_failed_reinstall_says_no_agent_is_installed(tmp_path: Path) -> None:
    update_dir, raw, _, old = _update_dir(tmp_path)
    msiexec = Msiexec(update_dir, 0, 0, 1603)
    assert msiexec.watch(raw).kind == "roll-back"
    detail = str(_result(update_dir)["detail"])
    assert f"msiexec /i of {RUNNING} exited 1603: no agent is installed" in detail
    assert str(old) in detail


def test_no_request_does_nothing(tmp_path: Path) -> None:
    (tmp_path / "update").mkdir()
    msiexec = Msiexec(tmp_path / "update")
    assert msiexec.watch(_key()[1]).kind == "nothing"
    assert msiexec.calls == []


def test_from_source_the_watcher_is_this_interpreter(tmp_path: Path) -> None:
    argv = watcher_command(tmp_path / "update", tmp_path, b"\x01" * 32)
    assert argv[:3] == [sys.executable, "-m", "agent"]
    assert argv[3:] == [
        "--state-dir", str(tmp_path), "update", "watch",
        "--public-key", base64.b64encode(b"\x01" * 32).decode(),
    ]  # fmt: skip
    assert not (tmp_path / "update" / "watcher").exists()  # a copy only of a frozen program


def _stand_in_msiexec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An `msiexec.exe` first on PATH that appends its action and package to the file returned."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "msiexec-calls"
    stand_in = bin_dir / "msiexec.exe"
    stand_in.write_text(f'#!/bin/sh\necho "$1 $2" >> {calls}\n')
    stand_in.chmod(stand_in.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return calls


def test_the_command_line_watcher_runs_msiexec_and_rolls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`canhgac-agent update watch` in a process of its own, as the agent starts it, with a
    stand-in msiexec.exe on PATH that logs its arguments: the real command line, runner and
    files. report_within is 1 s: the version never reports."""
    update_dir, raw, new, old = _update_dir(tmp_path)
    request = json.loads((update_dir / REQUEST_FILE).read_text())
    (update_dir / REQUEST_FILE).write_text(json.dumps({**request, "report_within": 1.0}))
    calls = _stand_in_msiexec(tmp_path, monkeypatch)
    argv = watcher_command(update_dir, tmp_path, raw)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"roll-back: {NEW} did not report by its deadline"
    assert calls.read_text().splitlines() == [f"/i {new}", f"/x {new}", f"/i {old}"]
    assert _result(update_dir)["state"] == "rolled-back"


class Releases:
    """A collector's GetRelease and Download for windows-x64 releases made by `_release`."""

    def __init__(self, directory: Path, key: Ed25519PrivateKey, *versions: str) -> None:
        self.releases: dict[str, tuple[bytes, bytes]] = {}
        self.packages: dict[str, bytes] = {}
        for version in versions:
            msi = _release(directory / version, version, key)
            self.releases[version] = (
                (directory / version / MANIFEST_FILE).read_bytes(),
                (directory / version / SIGNATURE_FILE).read_bytes(),
            )
            sha = sha256_hasher()
            sha.update(msi.read_bytes())
            self.packages[sha.hexdigest()] = msi.read_bytes()

    def get_release(self, version: str) -> tuple[bytes, bytes]:
        return self.releases[version]

    def download(self, sha256: str, offset: int, length: int) -> Iterator[tuple[int, int, bytes]]:
        data = self.packages[sha256]
        yield offset, len(data), data[offset : offset + length]


def test_the_agent_keeps_the_running_msi_and_asks_for_the_install(tmp_path: Path) -> None:
    """The first self-update after a hand install: the running version's MSI is fetched into
    previous/ before the install is asked for, as on Linux."""
    key, raw = _key()
    releases = Releases(tmp_path / "collector", key, RUNNING, NEW)
    asked: list[tuple[Path, str, str]] = []

    def install(directory: Path, manifest: Manifest, package: Package) -> str:
        asked.append((directory, manifest.version, package.file))
        return "msiexec started"

    cfg = UpdateConfig(public_key=base64.b64encode(raw).decode(), report_within=600.0)
    updater = Updater(
        cfg, tmp_path / "state", lambda: releases, install=install,
        platform="windows-x64", version=RUNNING, sleep=lambda s: False,
    )  # fmt: skip
    assert updater.work(NEW) is True
    update_dir = tmp_path / "state" / "update"
    assert asked == [(update_dir, NEW, f"canhgac-agent-{NEW}.msi")]
    kept = update_dir / PREVIOUS_DIR / f"canhgac-agent-{RUNNING}.msi"
    assert kept.read_bytes() == (tmp_path / "collector" / RUNNING / kept.name).read_bytes()
    assert updater.state().detail == (
        f"msiexec started; rolled back to {RUNNING} unless {NEW} reports within 600 s"
    )


def _unfinished(update_dir: Path, deadline: float, pid: int) -> None:
    """What a watcher killed by a restart of Windows leaves: 0.2.0 installed, pending."""
    (update_dir / REQUEST_FILE).unlink()
    record = {
        "version": NEW, "file": f"canhgac-agent-{NEW}.msi", "report_within": 600.0,
        "deadline": deadline, "state": "pending", "watcher_pid": pid,
        "previous": {"version": RUNNING, "file": f"canhgac-agent-{RUNNING}.msi"},
    }  # fmt: skip
    (update_dir / WATCH_FILE).write_text(json.dumps(record))


def test_an_unfinished_watch_goes_on_with_report_within_again(tmp_path: Path) -> None:
    """Windows restarted the next morning, long past the deadline: the new version, just
    started, gets report_within again before it is rolled back."""
    update_dir, raw, new, old = _update_dir(tmp_path)
    _unfinished(update_dir, deadline=10.0, pid=0)
    msiexec = Msiexec(update_dir)
    assert msiexec.watch(raw).kind == "roll-back"
    assert msiexec.calls == [("/x", new.name), ("/i", old.name)]  # not installed again
    assert msiexec.now >= 1000.0 + 600.0
    update_dir, raw, _, _ = _update_dir(tmp_path / "reports")
    _unfinished(update_dir, deadline=10.0, pid=0)
    msiexec = Msiexec(update_dir, reports_after=2)
    assert msiexec.watch(raw).kind == "confirm"
    assert msiexec.calls == []


def test_the_agent_starts_the_watcher_again_only_for_its_own_dead_watch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    update_dir, raw, new, old = _update_dir(tmp_path / "state")
    calls = _stand_in_msiexec(tmp_path, monkeypatch)
    cfg = UpdateConfig(public_key=base64.b64encode(raw).decode())
    # A watcher still running (its command line says watch): left alone.
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "watch"])
    try:
        _unfinished(update_dir, deadline=0.0, pid=alive.pid)
        assert not resume(update_dir, raw, NEW)
    finally:
        alive.kill()
        alive.wait()
    # Another version's record (this agent is 0.1.0: the roll back already happened): left.
    assert not resume(update_dir, raw, RUNNING)
    # Its own, with the watcher gone: the agent starting as 0.2.0 starts it again, and with
    # report_within 1 s here the version that does not report is rolled back.
    record = json.loads((update_dir / WATCH_FILE).read_text())
    record["report_within"], record["watcher_pid"] = 1.0, 2**22 + 1  # no such process
    (update_dir / WATCH_FILE).write_text(json.dumps(record))
    Updater(cfg, tmp_path / "state", lambda: Releases(tmp_path, _key()[0]), platform="windows-x64",
            version=NEW)  # fmt: skip
    for _ in range(600):
        if json.loads((update_dir / WATCH_FILE).read_text())["state"] != "pending":
            break
        time.sleep(0.1)
    assert calls.read_text().splitlines() == [f"/x {new}", f"/i {old}"]
    assert _result(update_dir)["state"] == "rolled-back"
    assert "watching again" in (update_dir / "watch.log").read_text()
