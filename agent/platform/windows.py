"""Windows boundary: PowerShell runs — one script (`run_powershell`), or every query of a
collection cycle in one process (`PowerShellBatch`, docs/probes.md "The cost on Windows")."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Protocol

from agent.errors import ProbeFailed
from agent.platform.psbatch import Outcome, Query, build_script, outer_timeout, split_output

__all__ = [
    "MAX_OUTPUT_BYTES",
    "UTF8_PREFIX",
    "PerScript",
    "PowerShell",
    "PowerShellBatch",
    "RawRun",
    "decode_batch_output",
    "run_batch",
    "run_powershell",
    "shared_batch",
]

log = logging.getLogger(__name__)

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


# ---- one process per collection cycle ---------------------------------------------------

# The whole batch's standard output past this is cut and the process ended: a runaway query
# must not grow the agent (each query is bounded in the script too, psbatch.MAX_DOCUMENT_CHARS).
MAX_OUTPUT_BYTES = 16 * 1024 * 1024
_STDERR_BYTES = 64 * 1024
_ERROR_ACCESS_DISABLED_BY_POLICY = 1260  # AppLocker / Software Restriction Policies


@dataclass(frozen=True)
class RawRun:
    """What a batch process gave: its output as bytes, and `failure` when it did not end on
    its own (timeout, output bound); then `stdout` holds what it wrote until it was ended."""

    stdout: bytes
    stderr: bytes = b""
    returncode: int | None = 0
    failure: str = ""


def run_batch(
    script: str,
    timeout: float,
    *,
    max_bytes: int = MAX_OUTPUT_BYTES,
    executable: str = "powershell",
) -> RawRun:
    """Run `script` with `executable -NoProfile -NonInteractive -Command`, reading at most
    `max_bytes` of output for at most `timeout` seconds, and keep what came before either
    bound. Raises ProbeFailed when PowerShell is missing, blocked by policy or cannot start."""
    argv = [executable, "-NoProfile", "-NonInteractive", "-Command", script]
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            creationflags=_NO_WINDOW,
        )
    except FileNotFoundError as e:
        raise ProbeFailed(f"PowerShell not found ({executable}): {e}") from e
    except OSError as e:
        if getattr(e, "winerror", None) == _ERROR_ACCESS_DISABLED_BY_POLICY:
            raise ProbeFailed(f"PowerShell blocked by policy ({executable}): {e}") from e
        raise ProbeFailed(f"PowerShell could not start ({executable}): {e}") from e
    over = threading.Event()
    out, err = bytearray(), bytearray()
    assert proc.stdout is not None and proc.stderr is not None
    pumps = [
        threading.Thread(target=_pump, args=(proc.stdout, out, max_bytes, over, proc)),
        threading.Thread(target=_pump, args=(proc.stderr, err, _STDERR_BYTES, None, proc)),
    ]
    for pump in pumps:
        pump.daemon = True
        pump.start()
    failure = ""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        failure = f"PowerShell did not finish within {timeout:g} s"
    for pump in pumps:
        # A grandchild could hold the pipe open after the kill; do not wait for it for long.
        pump.join(5.0)
    if over.is_set():
        failure = f"PowerShell wrote more than {max_bytes} bytes; its output was cut there"
    return RawRun(bytes(out[:max_bytes]), bytes(err[:_STDERR_BYTES]), proc.returncode, failure)


def _pump(
    stream: IO[bytes],
    into: bytearray,
    limit: int,
    over: threading.Event | None,
    proc: subprocess.Popen[bytes],
) -> None:
    # Past `limit` stdout ends the process; stderr is drained on (and dropped), so that the
    # process never blocks writing it.
    with stream, contextlib.suppress(OSError):  # a pipe broken by the kill ends the output
        while chunk := os.read(stream.fileno(), 65536):
            room = limit - len(into)
            into.extend(chunk[: max(0, room)])
            if len(chunk) > room and over is not None and not over.is_set():
                over.set()
                proc.kill()


def decode_batch_output(raw: bytes) -> str:
    """The batch's output as text: ASCII by design (the script escapes the rest), so a byte
    outside it is replaced and marks the line garbled. A UTF-16 or UTF-8 byte-order mark (a host
    set to another encoding) is honoured."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", errors="replace")
    return raw.removeprefix(b"\xef\xbb\xbf").decode("ascii", errors="replace")


class PowerShell(Protocol):
    """What a Windows probe asks of PowerShell: declare a query before the cycle's collects
    (optional: it only lets one run serve them all), then take its document in `collect`."""

    def declare(self, query: Query) -> None: ...

    def result(self, query: Query) -> str: ...


class PowerShellBatch:
    """Every query declared for one collection cycle, run in one PowerShell process on the
    first `result` of the cycle. `result` of a query not declared runs it then (with anything
    still pending), so a probe collected on its own still works. A failed query raises
    ProbeFailed with its own reason; the other queries keep their documents."""

    def __init__(self, run: Callable[[str, float], RawRun] = run_batch) -> None:
        self._run = run
        self._lock = threading.Lock()
        self._pending: dict[str, Query] = {}
        self._results: dict[str, tuple[Query, Outcome]] = {}
        self._ran = False  # a run since the last declare: the next declare starts a new cycle
        self._failing = False  # said once per failing spell, not once per cycle

    def declare(self, query: Query) -> None:
        with self._lock:
            if self._ran:
                self._results.clear()  # what the last cycle's probes did not take is dropped
                self._ran = False
            self._pending[query.name] = query

    def result(self, query: Query) -> str:
        with self._lock:
            kept = self._results.pop(query.name, None)
            if kept is None or kept[0] != query:
                batch = {**self._pending, query.name: query}
                self._pending.clear()
                outcomes = self._run_now(list(batch.values()))
                self._ran = True
                self._results.update((n, (batch[n], o)) for n, o in outcomes.items())
                kept = self._results.pop(query.name)
        outcome = kept[1]
        if outcome.document is None:
            error = outcome.error
            raise ProbeFailed(error if error.startswith("PowerShell") else f"PowerShell: {error}")
        return outcome.document

    def _run_now(self, queries: list[Query]) -> dict[str, Outcome]:
        names = ", ".join(q.name for q in queries)
        started = time.monotonic()
        try:
            raw = self._run(build_script(queries), outer_timeout(queries))
        except (ProbeFailed, ValueError) as e:
            outcomes = {q.name: Outcome(None, str(e)) for q in queries}
            self._say(f"PowerShell run for {names} failed: {e}")
            return outcomes
        failure = raw.failure
        if not failure and raw.returncode != 0:
            reason = _decode(raw.stderr).strip() or "no error output"
            failure = f"PowerShell exited with code {raw.returncode}: {_one_line(reason)}"
        outcomes = split_output(decode_batch_output(raw.stdout), queries, failure)
        # What a field machine costs, for docs/performance.md: the run's wall time and when
        # each query finished inside it.
        log.debug(
            "PowerShell run in %.2f s: %s",
            time.monotonic() - started,
            ", ".join(f"{n} {o.elapsed_ms} ms" for n, o in outcomes.items()),
        )
        if failure:
            kept = sum(o.document is not None for o in outcomes.values())
            self._say(f"PowerShell run for {names}: {failure} ({kept} of {len(queries)} kept)")
        elif self._failing:
            log.warning("PowerShell runs again (%s)", names)
            self._failing = False
        return outcomes

    def _say(self, message: str) -> None:
        if not self._failing:
            log.error("%s; said once until a run succeeds", message)
        self._failing = True


class PerScript:
    """A `PowerShell` that runs each query on its own through `run(script, timeout)`: the test
    double for probe tests that answer per script, and the shape of the old one-run-per-probe."""

    def __init__(self, run: Callable[[str, float], str] = run_powershell) -> None:
        self._run = run

    def declare(self, query: Query) -> None:
        del query

    def result(self, query: Query) -> str:
        return self._run(query.script, query.timeout)


_shared: PowerShellBatch | None = None
_shared_lock = threading.Lock()


def shared_batch() -> PowerShellBatch:
    """The agent's one batch, shared by every Windows probe built with the defaults."""
    global _shared  # noqa: PLW0603 (one per process, made on first use, not at import)
    with _shared_lock:
        if _shared is None:
            _shared = PowerShellBatch()
        return _shared
