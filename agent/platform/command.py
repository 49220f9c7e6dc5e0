"""Run one program with a timeout and hand back its exit code and output as text."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from agent.errors import ProbeFailed

__all__ = ["Completed", "run_command"]


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


def run_command(argv: list[str], timeout: float) -> Completed:
    """`argv` run without a shell or stdin. A non-zero exit is returned, not raised (smartctl
    and upsc say what went wrong in their output); ProbeFailed when the program is missing,
    cannot start or runs past `timeout` seconds."""
    try:
        done = subprocess.run(
            argv, capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError as e:
        raise ProbeFailed(f"{argv[0]} not found: {e}") from e
    except subprocess.TimeoutExpired as e:
        raise ProbeFailed(f"{argv[0]} did not finish within {timeout:g} s") from e
    except OSError as e:
        raise ProbeFailed(f"{argv[0]} could not start: {e}") from e
    return Completed(
        done.returncode,
        done.stdout.decode("utf-8", errors="replace"),
        done.stderr.decode("utf-8", errors="replace"),
    )
