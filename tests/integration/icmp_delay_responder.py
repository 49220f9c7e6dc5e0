"""Answers ICMP echo after a random delay (the kernel has no netem); run inside a test namespace.

Usage: icmp_delay_responder.py MIN_SECONDS MAX_SECONDS LIFETIME_SECONDS
The namespace must set net.ipv4.icmp_echo_ignore_all=1 so only these delayed replies exist.
"""

from __future__ import annotations

import heapq
import random
import select
import socket
import sys
import time

from agent.platform.icmp import checksum


def main() -> None:
    low, high, lifetime = (float(a) for a in sys.argv[1:4])
    rng = random.Random(4)
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    pending: list[tuple[float, bytes, str]] = []
    end = time.monotonic() + lifetime
    print("ready", flush=True)
    while time.monotonic() < end:
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, reply, peer = heapq.heappop(pending)
            sock.sendto(reply, (peer, 0))
        wait = min(end, pending[0][0] if pending else end) - now
        if not select.select([sock], [], [], max(0.0, wait))[0]:
            continue
        packet, (peer, _) = sock.recvfrom(65535)
        icmp = packet[(packet[0] & 0x0F) * 4 :]
        if len(icmp) < 8 or icmp[0] != 8:
            continue  # only echo requests (the raw socket also sees our own replies)
        body = bytes([0, 0, 0, 0]) + icmp[4:]
        reply = body[:2] + checksum(body).to_bytes(2, "big") + body[4:]
        heapq.heappush(pending, (time.monotonic() + rng.uniform(low, high), reply, peer))


if __name__ == "__main__":
    main()
