"""TCP connect, DNS query to a chosen resolver and HTTP(S) check, each timed and bounded."""

from __future__ import annotations

import os
import select
import socket
import struct
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from agent.model import DnsCheck, HttpCheck, TcpCheck

__all__ = [
    "DnsAnswer",
    "build_dns_query",
    "check_dns",
    "check_http",
    "check_tcp",
    "parse_dns_response",
    "split_host_port",
]

_RCODES = {1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def _reason(e: BaseException) -> str:
    if isinstance(e, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return f"{type(e).__name__}: {e}"


def check_tcp(host: str, port: int, timeout: float) -> TcpCheck:
    """Time a TCP handshake; a refusal or timeout is a result with its elapsed time."""
    start = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        return TcpCheck(f"{host}:{port}", False, time.perf_counter() - start, _reason(e))
    return TcpCheck(f"{host}:{port}", True, time.perf_counter() - start)


# ---- DNS (stdlib cannot ask a chosen resolver, so a minimal RFC 1035 client) ---------------


@dataclass(frozen=True)
class DnsAnswer:
    ident: int
    rcode: int
    addresses: tuple[str, ...]


def build_dns_query(ident: int, name: str) -> bytes:
    """A recursive query for the A records of `name`."""
    labels = b"".join(
        bytes([len(part)]) + part for part in (p.encode("idna") for p in name.strip(".").split("."))
    )
    return (
        struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
        + labels
        + b"\0"
        + struct.pack("!HH", 1, 1)
    )


def _skip_name(data: bytes, pos: int) -> int:
    for _ in range(128):  # a name has at most 127 labels; bounds a malicious loop
        length = data[pos]
        if length & 0xC0 == 0xC0:
            return pos + 2
        if length == 0:
            return pos + 1
        pos += 1 + length
    raise ValueError("DNS name too long")


def parse_dns_response(data: bytes) -> DnsAnswer:
    """Id, rcode and IPv4 answers of a DNS response; raises ValueError when malformed."""
    if len(data) < 12:
        raise ValueError("DNS response shorter than its header")
    ident, flags, qdcount, ancount = struct.unpack_from("!HHHH", data)
    if not flags & 0x8000:
        raise ValueError("not a DNS response")
    try:
        pos = 12
        for _ in range(qdcount):
            pos = _skip_name(data, pos) + 4
        addresses = []
        for _ in range(ancount):
            pos = _skip_name(data, pos)
            rtype, _cls, _ttl, length = struct.unpack_from("!HHLH", data, pos)
            pos += 10
            if rtype == 1 and length == 4:
                addresses.append(socket.inet_ntoa(data[pos : pos + 4]))
            pos += length
    except (IndexError, struct.error) as e:
        raise ValueError("DNS response truncated") from e
    return DnsAnswer(ident, flags & 0x000F, tuple(addresses))


def check_dns(resolver: str, name: str, timeout: float, port: int = 53) -> DnsCheck:
    """Ask `resolver` for `name` over UDP once; timeouts and error codes are results."""
    ident = struct.unpack("!H", os.urandom(2))[0]
    start = time.perf_counter()
    deadline = time.monotonic() + timeout
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((resolver, port))
            sock.send(build_dns_query(ident, name))
            while (left := deadline - time.monotonic()) > 0:
                if not select.select([sock], [], [], left)[0]:
                    break
                try:
                    answer = parse_dns_response(sock.recv(4096))
                except ValueError:
                    continue
                if answer.ident != ident:
                    continue  # a late answer to someone else's query
                elapsed = time.perf_counter() - start
                if answer.rcode:
                    error = _RCODES.get(answer.rcode, f"rcode {answer.rcode}")
                    return DnsCheck(resolver, name, False, elapsed, error=error)
                if not answer.addresses:
                    return DnsCheck(resolver, name, False, elapsed, error="no A record")
                return DnsCheck(resolver, name, True, elapsed, answer.addresses)
    except OSError as e:
        return DnsCheck(resolver, name, False, time.perf_counter() - start, error=_reason(e))
    return DnsCheck(resolver, name, False, time.perf_counter() - start, error="timeout")


# ---- HTTP(S) --------------------------------------------------------------------------------


def check_http(
    name: str,
    url: str,
    timeout: float,
    ca_file: Path | None = None,
    expect_status: int | None = None,
) -> HttpCheck:
    """GET `url`: status, time to first byte (connect + TLS + headers), certificate expiry.

    The certificate is verified (against `ca_file` when given); a failed verification is a
    failed check whose error says so. Healthy: `expect_status` when given, else below 400.
    """
    # Only with http_checks configured: http.client ≈ 1 MB resident, ssl maps OpenSSL (≈ 4 MB).
    import http.client  # noqa: PLC0415
    import ssl  # noqa: PLC0415

    parts = urllib.parse.urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        conn = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout, context=context
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    start = time.perf_counter()
    expires_in: float | None = None
    try:
        conn.connect()
        if isinstance(conn.sock, ssl.SSLSocket):
            cert = conn.sock.getpeercert()
            not_after = cert.get("notAfter") if cert else None
            if isinstance(not_after, str):
                expires_in = ssl.cert_time_to_seconds(not_after) - time.time()
        conn.request("GET", path, headers={"User-Agent": "canhgac-agent"})
        response = conn.getresponse()
        ttfb = time.perf_counter() - start
        response.read(1024)  # a bounded read: the body's size is not what is measured
    except (OSError, http.client.HTTPException) as e:
        return HttpCheck(
            name, url, False, ttfb_seconds=time.perf_counter() - start, error=_reason(e)
        )
    finally:
        conn.close()
    status = response.status
    ok = status == expect_status if expect_status is not None else status < 400
    error = ""
    if not ok:
        error = f"HTTP {status}" if expect_status is None else f"HTTP {status}, not {expect_status}"
    return HttpCheck(name, url, ok, status, ttfb, expires_in, error)


def split_host_port(target: str, default_port: int) -> tuple[str, int]:
    """("host", port) from "host:port", "[v6]:port" or a bare host."""
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    host, sep, port = target.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, int(port)
    return target, default_port
