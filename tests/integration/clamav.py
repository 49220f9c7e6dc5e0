"""Real ClamAV for integration tests: sigtool-built databases and a clamd on a socket in tmp."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from agent.errors import ProbeFailed
from agent.platform.clamd import ClamdAddress, ClamdClient, eicar

__all__ = ["DAILY_VERSION", "build_daily_cud", "need_clamav", "running_clamd", "write_hdb"]

DAILY_VERSION = 27001
_START_TIMEOUT = 120.0  # loading even a one-signature database takes seconds on a busy host


def need_clamav() -> None:
    """Skip (or fail in CI) when the Debian clamav-daemon and clamav packages are missing."""
    missing = [tool for tool in ("clamd", "sigtool") if shutil.which(tool, path=_path()) is None]
    if missing:
        reason = f"needs {', '.join(missing)} (Debian clamav-daemon, clamav): make test-deps"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        print(f"skipping: {reason}")
        pytest.skip(reason)


def _path() -> str:
    return os.environ.get("PATH", "") + ":/usr/sbin:/sbin"


def write_hdb(path: Path, data: bytes, name: str) -> None:
    """An MD5 signature database line for `data` (so the repo never holds the data itself)."""
    path.write_text(f"{hashlib.md5(data).hexdigest()}:{len(data)}:{name}\n", encoding="ascii")


def build_daily_cud(database_dir: Path, work: Path) -> Path:
    """A daily database clamd loads offline: sigtool builds an unsigned CVD, saved as .cud.

    A signed .cvd needs ClamAV's signing key, and clamd refuses an unsigned one named .cvd;
    the same bytes named daily.cud (clamd's unsigned format) load, and VERSION then reports
    the database version and build date. It holds one MD5 signature of the EICAR string.
    """
    work.mkdir(parents=True, exist_ok=True)
    write_hdb(work / "daily.hdb", eicar(), "Canhgac.Test.EICAR")
    (work / "COPYING").write_text("Canh Gac test signatures\n", encoding="ascii")
    done = subprocess.run(
        [
            shutil.which("sigtool", path=_path()) or "sigtool",
            "--build=daily.cvd",
            "--unsigned",
            f"--cvd-version={DAILY_VERSION}",
            "--no-cdiff",
            f"--datadir={work}",
        ],
        cwd=work,
        input=b"canhgac\n",  # the builder name sigtool asks for
        capture_output=True,
        timeout=120,
        check=False,
    )
    built = work / "daily.cvd"
    if done.returncode != 0 or not built.exists():
        raise AssertionError(f"sigtool --build failed: {done.stderr.decode(errors='replace')}")
    target = database_dir / "daily.cud"
    database_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(built, target)
    return target


@contextmanager
def running_clamd(
    tmp: Path, database_dir: Path
) -> Iterator[tuple[ClamdAddress, subprocess.Popen[bytes]]]:
    """clamd in the foreground on a unix socket under `tmp`; stopped (and waited for) on exit."""
    socket_path = tmp / "clamd.sock"
    conf = tmp / "clamd.conf"
    conf.write_text(
        "\n".join(
            [
                f"LocalSocket {socket_path}",
                f"DatabaseDirectory {database_dir}",
                f"LogFile {tmp / 'clamd.log'}",
                f"TemporaryDirectory {tmp}",
                "Foreground yes",
                "SelfCheck 0",
                "",
            ]
        ),
        encoding="ascii",
    )
    proc = subprocess.Popen(
        [shutil.which("clamd", path=_path()) or "clamd", "-c", str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    address = ClamdAddress(path=str(socket_path))
    try:
        _wait_for_pong(proc, address)
        yield address, proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
    if proc.stderr is not None:
        proc.stderr.close()


def _wait_for_pong(proc: subprocess.Popen[bytes], address: ClamdAddress) -> None:
    client = ClamdClient(address, timeout=5)
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise AssertionError(f"clamd exited with {proc.returncode}: {err[-500:]}")
        try:
            client.ping()
            return
        except ProbeFailed:
            time.sleep(0.2)
    raise AssertionError(f"clamd did not answer PING within {_START_TIMEOUT:g} s")
