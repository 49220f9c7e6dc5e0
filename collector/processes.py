"""Several collector processes on one host: a supervisor runs N children that share the gRPC
port (SO_REUSEPORT), restarts one that dies, and forwards stop and reload to them.

Only on PostgreSQL: SQLite lets one writer commit at a time, so N processes would queue on its
write lock (and the group commit that shares one fsync among concurrent Submits works within a
process only). Each child is a whole collector (`CollectorApp`): the one-leader rule of
`collector/leader.py` picks the one that runs the timers and sends notifications. Process 0
alone serves HTTP on the configured port; its /metrics renders the fleet from the shared store
and the collector's own counters summed over every process (prometheus_client's multiprocess
mode, in a directory the supervisor owns).
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.engine import make_url

from canhgac_common.i18n import gettext_ as _
from collector.config import CollectorConfig
from collector.errors import CollectorError, ConfigError, cannot_listen
from collector.metrics.core import METRICS_DIR_ENV

__all__ = [
    "Supervisor",
    "default_processes",
    "host_cores",
    "processes_for",
    "reload_siblings",
]

log = logging.getLogger(__name__)

# A child that lived less than this was failing, not crashing now and then: back off.
_STEADY_AFTER = 60.0
_BACKOFF_FIRST, _BACKOFF_MAX = 1.0, 30.0
# How long all children may take to start (imports, store migration, rules) before giving up.
START_TIMEOUT = 120.0


def host_cores() -> int:
    """The cores this process may run on (a cgroup or taskset may give it fewer than exist)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _backend(cfg: CollectorConfig) -> str:
    return make_url(cfg.store.url).get_backend_name()


def default_processes(cfg: CollectorConfig) -> int:
    """The number of cores on PostgreSQL; one on SQLite (one writer)."""
    return host_cores() if _backend(cfg) == "postgresql" else 1


def processes_for(cfg: CollectorConfig, asked: int | None) -> int:
    """`serve --processes` checked against the store: ConfigError when it cannot be."""
    if asked is None:
        return default_processes(cfg)
    if asked < 1:
        raise ConfigError(_("--processes {n}: at least 1").format(n=asked))
    if asked > 1 and _backend(cfg) != "postgresql":
        raise ConfigError(
            _(
                "--processes {n}: the SQLite store takes one writer at a time, so one process "
                "serves it (several would queue on its write lock); run several processes on "
                "PostgreSQL (docs/scaling.md)"
            ).format(n=asked)
        )
    if asked > 1 and cfg.grpc_listen.rpartition(":")[2] == "0":
        raise ConfigError(
            _("--processes {n}: grpc_listen {address} needs a fixed port to share").format(
                n=asked, address=cfg.grpc_listen
            )
        )
    return asked


def _check_free(address: str) -> None:
    """Refuse a port already taken, even by processes that share theirs (another `serve`): the
    children set SO_REUSEPORT, so without this check they would join that group silently."""
    host, _sep, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104 - the configured address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpc: TIME_WAIT is no owner
        try:
            s.bind((host, int(port)))
        except OSError as e:
            raise cannot_listen("grpc_listen", address, e) from None


def reload_siblings() -> None:
    """From process 0 (POST /-/reload): ask the supervisor to reload the other processes."""
    os.kill(os.getppid(), signal.SIGUSR1)


@dataclass
class _Child:
    index: int
    process: subprocess.Popen[bytes]
    started: float
    ready: int  # read end of the pipe the child writes one byte to once it serves
    relay: threading.Thread | None = None


@dataclass
class _Restart:
    due: float
    backoff: float


@dataclass
class Supervisor:
    """Runs `processes` children, each `command(index, ready_fd)`, until `stop` is set.

    `log_handler`: when the collector logs to a file, the children write their lines to a pipe
    and this process writes them into that one handler (N processes rotating one file would
    lose lines); None lets them inherit stderr.
    """

    command: Callable[[int, int], Sequence[str]]
    processes: int
    grpc_listen: str
    log_handler: logging.Handler | None = None
    grace: float = 5.0
    clock: Callable[[], float] = time.monotonic
    children: dict[int, _Child] = field(default_factory=dict)
    _restarts: dict[int, _Restart] = field(default_factory=dict)
    _metrics_dir: str = ""
    _stopping: bool = False

    def start(self) -> None:
        """Start every child and wait until each serves; CollectorError if one cannot."""
        _check_free(self.grpc_listen)
        self._metrics_dir = tempfile.mkdtemp(prefix="canhgac-metrics-")
        try:
            for index in range(self.processes):
                self._spawn(index)
            self._wait_ready(self.clock() + START_TIMEOUT)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, index: int) -> None:
        read, write = os.pipe()
        env = {**os.environ, METRICS_DIR_ENV: self._metrics_dir}
        try:
            process = subprocess.Popen(
                list(self.command(index, write)),
                pass_fds=(write,),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE if self.log_handler is not None else None,
            )
        except OSError:
            os.close(read)
            raise
        finally:
            os.close(write)
        child = _Child(index, process, self.clock(), read)
        if self.log_handler is not None:
            child.relay = threading.Thread(
                target=_relay, args=(process, self.log_handler), name=f"log-{index}", daemon=True
            )
            child.relay.start()
        self.children[index] = child
        log.info("collector process %d started (pid %d)", index, process.pid)

    def _wait_ready(self, deadline: float) -> None:
        waiting = {c.ready: c for c in self.children.values()}
        while waiting:
            for child in waiting.values():
                code = child.process.poll()
                if code is not None:
                    raise CollectorError(
                        _("collector process {index} exited while starting (code {code})").format(
                            index=child.index, code=code
                        )
                    )
            left = deadline - self.clock()
            if left <= 0:
                raise CollectorError(
                    _("collector processes not serving after {seconds:g} s").format(
                        seconds=START_TIMEOUT
                    )
                )
            readable, _w, _x = select.select(list(waiting), [], [], min(left, 0.2))
            for fd in readable:
                child = waiting.pop(fd)
                if not os.read(fd, 1):  # closed without a byte: it is exiting; poll says how
                    waiting[fd] = child
                    time.sleep(0.05)
                    continue
                os.close(fd)
                child.ready = -1

    def watch(self) -> None:
        """One look at the children: restart those that died (with a backoff when they keep
        dying soon after their start). Called about once a second by the serving loop."""
        now = self.clock()
        for index, child in list(self.children.items()):
            code = child.process.poll()
            if code is None:
                continue
            self._forget(child)
            del self.children[index]
            lived = now - child.started
            previous = self._restarts.get(index)
            backoff = (
                _BACKOFF_FIRST
                if lived >= _STEADY_AFTER or previous is None
                else min(previous.backoff * 2, _BACKOFF_MAX)
            )
            how = f"signal {-code}" if code < 0 else f"code {code}"
            log.error(
                "collector process %d (pid %d) exited (%s) after %.0f s; restarting in %.0f s",
                index,
                child.process.pid,
                how,
                lived,
                backoff,
            )
            self._restarts[index] = _Restart(now + backoff, backoff)
        for index, restart in self._restarts.items():
            if index not in self.children and now >= restart.due and not self._stopping:
                try:
                    self._spawn(index)
                except OSError as e:
                    log.error("cannot restart collector process %d: %s", index, e)
                    restart.due = now + restart.backoff
                    continue
                # No wait here: the others serve meanwhile; `_readied` hears it when it serves.
        self._readied()

    def _readied(self) -> None:
        """Log the restarted children that now serve (their pipe is kept open until then: a
        child writing to a closed pipe would die of it)."""
        starting = {c.ready: c for c in self.children.values() if c.ready >= 0}
        if not starting:
            return
        readable, _w, _x = select.select(list(starting), [], [], 0)
        for fd in readable:
            child = starting[fd]
            if os.read(fd, 1):
                log.info("collector process %d (pid %d) serves", child.index, child.process.pid)
            self._close_ready(child)  # a byte, or closed: it serves, or poll will tell

    def _forget(self, child: _Child) -> None:
        """A dead child's live gauges leave the sum; its counters stay (they only go up)."""
        self._close_ready(child)
        from prometheus_client import multiprocess  # noqa: PLC0415 - only the supervisor

        with contextlib.suppress(OSError):
            multiprocess.mark_process_dead(child.process.pid, self._metrics_dir)  # type: ignore[no-untyped-call]

    @staticmethod
    def _close_ready(child: _Child) -> None:
        if child.ready >= 0:
            with contextlib.suppress(OSError):
                os.close(child.ready)
            child.ready = -1

    def signal(self, signum: int, indexes: Sequence[int] | None = None) -> None:
        """Forward a signal (SIGHUP: reload the rules) to the children, or to those listed."""
        for child in self.children.values():
            if indexes is None or child.index in indexes:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signum)

    def stop(self) -> None:
        """SIGTERM to every child; each finishes its calls in flight (`grace`) and exits; the
        ones still running after that and 10 s more are killed."""
        self._stopping = True
        self.signal(signal.SIGTERM)
        deadline = self.clock() + self.grace + 10
        for child in self.children.values():
            try:
                child.process.wait(max(0.0, deadline - self.clock()))
            except subprocess.TimeoutExpired:
                log.error("collector process %d did not stop: killed", child.index)
                child.process.kill()
                child.process.wait()
            if child.relay is not None:
                child.relay.join(5)
            self._close_ready(child)
        self.children.clear()
        if self._metrics_dir:
            shutil.rmtree(self._metrics_dir, ignore_errors=True)


def _relay(process: subprocess.Popen[bytes], handler: logging.Handler) -> None:
    """Write a child's log lines (formatted by the child) through this process's handler."""
    assert process.stderr is not None
    for raw in process.stderr:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        record = logging.makeLogRecord({"msg": line, "levelno": logging.INFO})
        handler.acquire()
        try:
            if isinstance(handler, logging.handlers.RotatingFileHandler) and (
                handler.shouldRollover(record)
            ):
                handler.doRollover()
            stream = getattr(handler, "stream", None) or sys.stderr
            stream.write(line + "\n")
            stream.flush()
        finally:
            handler.release()
