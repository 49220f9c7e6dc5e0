"""Windows boundary: run one PowerShell script and return its UTF-8 standard output."""

from __future__ import annotations

import subprocess

from agent.errors import ProbeFailed

__all__ = ["UTF8_PREFIX", "run_powershell"]

# Without this, Windows PowerShell 5.1 writes redirected output in the OEM code page and
# Vietnamese text (localized captions, interface names) arrives as mojibake.
UTF8_PREFIX = "[Console]::OutputEncoding = [Text.Encoding]::UTF8; "

# Only defined on Windows; keeps a service-started agent from flashing console windows.
_NO_WINDOW: int = getattr(subprocess, "CREATE_NO_WINDOW", 0)

_REASON_CHARS = 300


def run_powershell(script: str, timeout: float, *, executable: str = "powershell") -> str:
    """Run `script` with `executable -NoProfile -NonInteractive -Command` and return stdout.

    Raises ProbeFailed naming the reason when PowerShell is missing, exceeds `timeout`
    seconds, or exits non-zero (with the start of its stderr).
    """
    argv = [executable, "-NoProfile", "-NonInteractive", "-Command", UTF8_PREFIX + script]
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
            creationflags=_NO_WINDOW,
        )
    except FileNotFoundError as e:
        raise ProbeFailed(f"PowerShell not found ({executable}): {e}") from e
    except subprocess.TimeoutExpired as e:
        raise ProbeFailed(f"PowerShell did not finish within {timeout:g} s") from e
    except OSError as e:
        raise ProbeFailed(f"PowerShell could not start ({executable}): {e}") from e
    if done.returncode != 0:
        reason = _decode(done.stderr).strip() or _decode(done.stdout).strip() or "no output"
        raise ProbeFailed(f"PowerShell exited with code {done.returncode}: {_one_line(reason)}")
    return _decode(done.stdout)


def _decode(raw: bytes) -> str:
    # [Text.Encoding]::UTF8 carries a byte-order mark that PowerShell 5.1 writes first.
    return raw.decode("utf-8-sig", errors="replace")


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) > _REASON_CHARS:
        return flat[: _REASON_CHARS - 1] + "…"
    return flat
