"""A real NUT upsd on loopback with the dummy-ups driver reading a file the test rewrites.

Debian's `nut-server` installs both under /lib/nut; `NUT_CONFPATH` and `NUT_STATEPATH` keep
everything (config, driver socket) in the test's directory, and `-u root` lets them run as
the test's user without the `nut` account's directories."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DRIVER", "UPSD", "Ups", "running_ups"]

DRIVER = Path("/lib/nut/dummy-ups")
UPSD = Path("/lib/nut/upsd")
_NAME = "testups"


@dataclass(frozen=True)
class Ups:
    name: str  # what upsc takes: testups@127.0.0.1:PORT
    data: Path  # the driver's file: "variable: value" lines, re-read every 2 s

    def set(self, **variables: str) -> None:
        """Rewrite the UPS's variables (keys with "_" for "."), atomically."""
        text = "".join(f"{k.replace('_', '.')}: {v}\n" for k, v in variables.items())
        tmp = self.data.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.data)

    def wait_for(self, status: str, timeout: float = 15.0) -> None:
        """Until upsc reports `status` (the driver polls its file every 2 s)."""
        deadline = time.monotonic() + timeout
        seen = ""
        while time.monotonic() < deadline:
            done = subprocess.run(
                ["upsc", self.name, "ups.status"], capture_output=True, text=True, check=False
            )
            seen = done.stdout.strip()
            if seen == status:
                return
            time.sleep(0.3)
        raise AssertionError(f"upsd never reported {status!r} (last: {seen!r})")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_ups(directory: Path, **variables: str) -> Iterator[Ups]:
    """A driver and upsd serving one UPS with `variables`; both stopped at exit."""
    state = directory / "state"
    state.mkdir(parents=True)
    port = _free_port()
    ups = Ups(f"{_NAME}@127.0.0.1:{port}", directory / "testups.seq")
    ups.set(**variables)
    (directory / "ups.conf").write_text(f"[{_NAME}]\n  driver = dummy-ups\n  port = {ups.data}\n")
    (directory / "upsd.conf").write_text(f"LISTEN 127.0.0.1 {port}\n")
    users = directory / "upsd.users"
    users.write_text("")
    users.chmod(0o600)
    env = {**os.environ, "NUT_CONFPATH": str(directory), "NUT_STATEPATH": str(state),
           "NUT_ALTPIDPATH": str(state)}  # fmt: skip
    driver = subprocess.Popen(
        [str(DRIVER), "-a", _NAME, "-u", "root", "-F"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    upsd = None
    try:
        deadline = time.monotonic() + 10
        while not (state / f"dummy-ups-{_NAME}").exists():
            if time.monotonic() > deadline or driver.poll() is not None:
                raise AssertionError("the dummy-ups driver did not start")
            time.sleep(0.1)
        upsd = subprocess.Popen(
            [str(UPSD), "-u", "root", "-F"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        ups.wait_for(variables["ups_status"])
        yield ups
    finally:
        for process in (upsd, driver):
            if process is not None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
