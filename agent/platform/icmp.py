"""ICMP echo: pure packet building and parsing; Linux socket and Windows IcmpSendEcho senders."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "IP_REQ_TIMED_OUT",
    "IP_SUCCESS",
    "EchoReply",
    "IcmpUnavailable",
    "PingRun",
    "WindowsEchoReply",
    "build_echo_request",
    "checksum",
    "parse_echo_reply",
    "parse_windows_echo_reply",
    "ping_linux",
    "ping_windows",
]

ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
IP_SUCCESS = 0
IP_REQ_TIMED_OUT = 11010
_HEADER = struct.Struct("!BBHHH")


class IcmpUnavailable(OSError):
    """No way to send ICMP here (no datagram permission, not root); the reason says which."""


@dataclass(frozen=True)
class EchoReply:
    ident: int
    seq: int
    payload: bytes


@dataclass(frozen=True)
class PingRun:
    method: str
    rtts: tuple[float | None, ...]  # seconds per probe in send order; None = no reply


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return int(~total & 0xFFFF)


def build_echo_request(ident: int, seq: int, payload: bytes) -> bytes:
    """An ICMP echo request with a correct checksum (the kernel redoes it for datagram sockets)."""
    header = _HEADER.pack(ICMP_ECHO_REQUEST, 0, 0, ident, seq)
    return _HEADER.pack(ICMP_ECHO_REQUEST, 0, checksum(header + payload), ident, seq) + payload


def parse_echo_reply(packet: bytes, with_ip_header: bool) -> EchoReply | None:
    """The echo reply in `packet` (raw sockets include the IPv4 header), None for anything else."""
    if with_ip_header:
        if len(packet) < 20 or packet[0] >> 4 != 4:
            return None
        packet = packet[(packet[0] & 0x0F) * 4 :]
    if len(packet) < _HEADER.size:
        return None
    kind, code, _sum, ident, seq = _HEADER.unpack_from(packet)
    if kind != ICMP_ECHO_REPLY or code != 0:
        return None
    return EchoReply(ident, seq, packet[_HEADER.size :])


def _open_socket() -> tuple[socket.socket, str]:
    # Datagram ICMP needs the group in net.ipv4.ping_group_range; raw needs CAP_NET_RAW.
    errors = []
    for kind, method in ((socket.SOCK_DGRAM, "icmp-dgram"), (socket.SOCK_RAW, "icmp-raw")):
        try:
            return socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP), method
        except OSError as e:
            errors.append(f"{method}: {e.strerror or e}")
    raise IcmpUnavailable("cannot open an ICMP socket (" + "; ".join(errors) + ")")


def ping_linux(address: str, count: int, interval: float, timeout: float) -> PingRun:
    """Send `count` echo requests `interval` apart; wait `timeout` after the last for replies.

    Replies are matched by sequence number and a per-run token, so other pings on the machine
    (which a raw socket also sees) are ignored. Never blocks longer than
    `count * interval + timeout` seconds.
    """
    sock, method = _open_socket()
    token = os.urandom(8)
    ident = os.getpid() & 0xFFFF
    raw = method == "icmp-raw"
    sent_at: list[float] = []
    rtts: list[float | None] = [None] * count
    with sock:
        sock.setblocking(False)
        start = time.monotonic()
        end = start + (count - 1) * interval + timeout
        while True:
            now = time.monotonic()
            if len(sent_at) < count and now >= start + len(sent_at) * interval:
                seq = len(sent_at)
                sent_at.append(time.perf_counter())
                # Unreachable network: this probe is lost, which is the measurement.
                with contextlib.suppress(OSError):
                    sock.sendto(build_echo_request(ident, seq, token), (address, 0))
                continue
            if now >= end or (len(sent_at) == count and None not in rtts):
                break
            wake = end if len(sent_at) == count else start + len(sent_at) * interval
            ready, _, _ = select.select([sock], [], [], max(0.0, min(wake, end) - now))
            if not ready:
                continue
            try:
                packet, _peer = sock.recvfrom(65535)
            except BlockingIOError:
                continue
            received = time.perf_counter()
            reply = parse_echo_reply(packet, with_ip_header=raw)
            # The kernel rewrites the identifier of datagram sockets; the token stays ours.
            if reply is None or reply.payload != token or reply.seq >= len(sent_at):
                continue
            if raw and reply.ident != ident:
                continue
            if rtts[reply.seq] is None:
                rtts[reply.seq] = received - sent_at[reply.seq]
    return PingRun(method, tuple(rtts))


# ---- Windows: IcmpSendEcho (iphlpapi), no administrator rights needed ---------------------


@dataclass(frozen=True)
class WindowsEchoReply:
    address: str
    status: int
    rtt_ms: int


def parse_windows_echo_reply(buffer: bytes, pointer_size: int) -> WindowsEchoReply:
    """Decode the ICMP_ECHO_REPLY (pointer_size 4) or ICMP_ECHO_REPLY32-on-64 (8) structure.

    Layout: Address ULONG, Status ULONG, RoundTripTime ULONG, DataSize USHORT, Reserved USHORT,
    then pointers; only the first three fields matter and they do not move with pointer size.
    """
    minimum = 16 + pointer_size
    if len(buffer) < minimum:
        raise ValueError(f"ICMP_ECHO_REPLY needs {minimum} bytes, got {len(buffer)}")
    address, status, rtt = struct.unpack_from("<4sLL", buffer)
    return WindowsEchoReply(socket.inet_ntoa(address), status, rtt)


def ping_windows(
    address: str,
    count: int,
    interval: float,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> PingRun:
    """Ping through IcmpSendEcho; RTTs come in whole milliseconds (the API's resolution)."""
    if sys.platform != "win32":
        raise IcmpUnavailable("IcmpSendEcho exists only on Windows")
    import ctypes  # noqa: PLC0415 (Windows only: never resident on Linux)

    iphlpapi = ctypes.WinDLL("iphlpapi.dll")  # type: ignore[attr-defined,unused-ignore]
    iphlpapi.IcmpCreateFile.restype = ctypes.c_void_p
    iphlpapi.IcmpSendEcho.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_void_p,
        ctypes.c_uint16,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_uint32,
    ]
    iphlpapi.IcmpCloseHandle.argtypes = [ctypes.c_void_p]
    handle = iphlpapi.IcmpCreateFile()
    if not handle or handle == ctypes.c_void_p(-1).value:
        raise IcmpUnavailable("IcmpCreateFile failed")
    payload = os.urandom(8)
    dest = struct.unpack("<L", socket.inet_aton(address))[0]
    # Room for one reply, its data and an ICMP error (the size the API documents).
    reply_size = 16 + 2 * ctypes.sizeof(ctypes.c_void_p) + len(payload) + 8 + 8
    rtts: list[float | None] = []
    try:
        for i in range(count):
            if i:
                sleep(interval)
            buffer = ctypes.create_string_buffer(reply_size)
            n = iphlpapi.IcmpSendEcho(
                handle,
                dest,
                payload,
                len(payload),
                None,
                buffer,
                reply_size,
                max(1, int(timeout * 1000)),
            )
            reply = parse_windows_echo_reply(buffer.raw, ctypes.sizeof(ctypes.c_void_p))
            ok = n > 0 and reply.status == IP_SUCCESS and reply.address == address
            rtts.append(reply.rtt_ms / 1000.0 if ok else None)
    finally:
        iphlpapi.IcmpCloseHandle(handle)
    return PingRun("windows-icmp", tuple(rtts))
