"""`canhgac-agent service install|uninstall|status`: the systemd unit without a package.

The .deb ships the same unit (agent/service/canhgac-agent.service); here it is written with
ExecStart pointing at the canhgac-agent that runs the command (a venv anywhere), the system
user created when missing, and the unit enabled and started.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from agent.errors import AgentError
from canhgac_common.files import atomic_write

__all__ = ["UNIT_NAME", "USER", "Systemd", "render_unit"]

UNIT_NAME = "canhgac-agent.service"
USER = "canhgac-agent"
_PACKAGED_EXEC = "/opt/canhgac/agent/bin/canhgac-agent --config /etc/canhgac/agent.yaml run"

Run = Callable[[Sequence[str]], subprocess.CompletedProcess[str]]


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=120)


def render_unit(executable: Path, config: Path) -> str:
    """The shipped unit with ExecStart running `executable --config config run`."""
    template = resources.files("agent.service").joinpath(UNIT_NAME).read_text(encoding="utf-8")
    if f"ExecStart={_PACKAGED_EXEC}\n" not in template:
        raise AssertionError(f"{UNIT_NAME}: ExecStart is not {_PACKAGED_EXEC}")
    for path in (executable, config):
        if not path.is_absolute() or any(c.isspace() or c in "%$\\\"'" for c in str(path)):
            raise AgentError(f"service install: {path}: needs an absolute path without spaces")
    return template.replace(_PACKAGED_EXEC, f"{executable} --config {config} run")


@dataclass(frozen=True)
class Systemd:
    """The OS boundary of the three commands: where units live and how commands run."""

    unit_dir: Path = Path("/etc/systemd/system")
    run: Run = _run

    def _check(self, *argv: str) -> str:
        try:
            done = self.run(argv)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise AgentError(f"service: {' '.join(argv)}: {e}") from None
        if done.returncode != 0:
            why = (done.stderr or done.stdout).strip()
            raise AgentError(f"service: {' '.join(argv)} failed ({done.returncode}): {why}")
        return done.stdout

    def install(self, executable: Path, config: Path) -> Path:
        if not config.is_file():
            raise AgentError(
                f"service install: {config}: no such config file (copy "
                "configs/agent.example.yaml there and set collector.address)"
            )
        unit = render_unit(executable, config)
        if self.run(["getent", "passwd", USER]).returncode != 0:
            self._check(
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                USER,
            )
        path = self.unit_dir / UNIT_NAME
        atomic_write(path, unit.encode(), mode=0o644)
        self._check("systemctl", "daemon-reload")
        self._check("systemctl", "enable", "--now", UNIT_NAME)
        return path

    def uninstall(self) -> Path:
        """Stops, disables and removes the unit; the state dir and the user stay."""
        path = self.unit_dir / UNIT_NAME
        if not path.exists():
            raise AgentError(f"service uninstall: {path}: not installed")
        self._check("systemctl", "disable", "--now", UNIT_NAME)
        path.unlink()
        self._check("systemctl", "daemon-reload")
        return path

    def status(self) -> tuple[str, str]:
        """(enabled state, active state) as systemctl names them."""
        enabled = self.run(["systemctl", "is-enabled", UNIT_NAME]).stdout.strip() or "not-found"
        active = self.run(["systemctl", "is-active", UNIT_NAME]).stdout.strip() or "unknown"
        return enabled, active
