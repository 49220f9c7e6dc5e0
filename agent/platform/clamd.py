"""ClamAV boundary: pure parsers of clamd replies and database headers, and a thin socket client."""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.errors import ProbeFailed

__all__ = [
    "DATABASE_HEADER_BYTES",
    "ClamdAddress",
    "ClamdClient",
    "ClamdUnreachable",
    "ClamdVersion",
    "ScanResult",
    "eicar",
    "parse_database_header",
    "parse_scan_reply",
    "parse_version_reply",
    "read_database_built_at",
]

DATABASE_HEADER_BYTES = 512  # CVD/CLD/CUD files start with a 512-byte text header

# clamd closes an INSTREAM connection past StreamMaxLength; our payload is far smaller.
_CHUNK = 8192
_MAX_REPLY = 4096

# "ClamAV 1.0.7/27500/Mon Nov 25 09:32:35 2024" or the bare "ClamAV 1.0.7".
_VERSION = re.compile(r"ClamAV\s+(?P<engine>[^/\s]+)(?:/(?P<db>\d+)(?:/(?P<date>.+))?)?")


class ClamdUnreachable(ProbeFailed):
    """clamd does not answer on its socket: the product is "not running"."""


@dataclass(frozen=True)
class ClamdAddress:
    """Where clamd listens: a unix socket path, or a TCP host and port (when `port` is set)."""

    path: str = "/var/run/clamav/clamd.ctl"
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        return f"tcp://{self.host}:{self.port}" if self.port else f"unix:{self.path}"


@dataclass(frozen=True)
class ClamdVersion:
    engine: str
    database_version: int  # 0 when the reply is bare
    database_date: float  # Unix seconds; 0 when the reply is bare or the date unreadable


@dataclass(frozen=True)
class ScanResult:
    detected: bool
    signature: str  # the signature name when detected


def eicar() -> bytes:
    """The EICAR test string, assembled here so no file in the repo or on disk holds it."""
    head = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$"
    tail = "EICAR-STANDARD-ANTIVIRUS-" + "TEST-FILE!$H+H*"
    return (head + tail).encode("ascii")


def parse_version_reply(
    reply: str, local_to_epoch: Callable[[time.struct_time], float] = time.mktime
) -> ClamdVersion:
    """Engine, database version and date from a VERSION reply; raises ProbeFailed otherwise.

    clamd writes the date with ctime() in its own local time, which is the agent's too.
    """
    match = _VERSION.fullmatch(reply.strip().rstrip("\0").strip())
    if match is None:
        raise ProbeFailed(f"clamd VERSION reply not understood: {reply[:80]!r}")
    db = match.group("db")
    date = 0.0
    if match.group("date"):
        try:
            date = local_to_epoch(
                time.strptime(match.group("date").strip(), "%a %b %d %H:%M:%S %Y")
            )
        except (ValueError, OverflowError):
            date = 0.0
    return ClamdVersion(
        engine=match.group("engine"),
        database_version=int(db) if db and len(db) < 10 else 0,
        database_date=date,
    )


def parse_scan_reply(reply: str) -> ScanResult:
    """A scan reply ("stream: OK", "stream: <name> FOUND"); ProbeFailed on ERROR or garbage."""
    text = reply.strip().rstrip("\0").strip()
    _, sep, verdict = text.partition(": ")
    if not sep:
        raise ProbeFailed(f"clamd scan reply not understood: {text[:80]!r}")
    if verdict == "OK":
        return ScanResult(detected=False, signature="")
    if verdict.endswith(" FOUND") and verdict[:-6].strip():
        return ScanResult(detected=True, signature=verdict[:-6].strip())
    if verdict.endswith(" ERROR"):
        raise ProbeFailed(f"clamd could not scan: {verdict[:-6].strip()[:120]}")
    raise ProbeFailed(f"clamd scan reply not understood: {text[:80]!r}")


def parse_database_header(header: bytes) -> float:
    """Build time (Unix seconds) from a CVD/CLD/CUD header; ProbeFailed when it is not one."""
    text = header[:DATABASE_HEADER_BYTES].decode("ascii", errors="replace").rstrip("\0 ")
    fields = text.split(":")
    # ClamAV-VDB:<build time text>:<version>:<sigs>:<flevel>:<md5>:<dsig>:<builder>:<stime>
    if len(fields) < 9 or fields[0] != "ClamAV-VDB":
        raise ProbeFailed("not a ClamAV database header")
    stime = fields[8].strip()
    if not stime.isdigit() or len(stime) > 12:
        raise ProbeFailed(f"ClamAV database header has no build time: {stime[:20]!r}")
    return float(stime)


def read_database_built_at(database_dir: Path) -> float:
    """Build time of the daily database (cld, cvd or cud, the newest wins); 0 when none."""
    newest = 0.0
    for name in ("daily.cld", "daily.cvd", "daily.cud"):
        try:
            with (database_dir / name).open("rb") as f:
                newest = max(newest, parse_database_header(f.read(DATABASE_HEADER_BYTES)))
        except (OSError, ProbeFailed):
            continue
    return newest


class ClamdClient:
    """One short connection per command, so a restarted clamd is picked up at once."""

    def __init__(self, address: ClamdAddress, timeout: float = 10.0) -> None:
        self._address = address
        self._timeout = timeout

    def ping(self) -> None:
        reply = self._command(b"zPING\0")
        if reply.strip("\0\n ") != "PONG":
            raise ProbeFailed(f"clamd answered PING with {reply[:80]!r}")

    def version(self) -> str:
        return self._command(b"zVERSION\0")

    def instream(self, data: bytes) -> str:
        """Stream `data` for scanning and return clamd's raw reply."""
        with self._connect() as s:
            try:
                s.sendall(b"zINSTREAM\0")
                for i in range(0, len(data), _CHUNK):
                    chunk = data[i : i + _CHUNK]
                    s.sendall(struct.pack("!I", len(chunk)) + chunk)
                s.sendall(struct.pack("!I", 0))
                return self._read_reply(s)
            except OSError as e:
                raise ProbeFailed(f"clamd INSTREAM on {self._address} failed: {e}") from e

    def _command(self, command: bytes) -> str:
        with self._connect() as s:
            try:
                s.sendall(command)
                return self._read_reply(s)
            except OSError as e:
                raise ClamdUnreachable(f"clamd on {self._address} stopped answering: {e}") from e

    def _connect(self) -> contextlib.closing[socket.socket]:
        a = self._address
        try:
            if a.port:
                s = socket.create_connection((a.host, a.port), timeout=self._timeout)
            else:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(self._timeout)
                try:
                    s.connect(a.path)
                except OSError:
                    s.close()
                    raise
        except OSError as e:
            raise ClamdUnreachable(f"clamd does not answer on {a}: {e.strerror or e}") from e
        return contextlib.closing(s)

    @staticmethod
    def _read_reply(s: socket.socket) -> str:
        # With the "z" prefix clamd ends its reply with NUL; it then closes the connection.
        buf = b""
        while b"\0" not in buf and len(buf) < _MAX_REPLY:
            chunk = s.recv(1024)
            if not chunk:
                break
            buf += chunk
        return buf.split(b"\0", 1)[0].decode("utf-8", errors="replace")
