"""Bytes on the wire per report: protobuf plain vs gzip, for one report and for a batch of 50.

gRPC compresses whole messages, so a replayed batch compresses across reports. Run with
`make bench`; figures are from this machine's real hardware probe.
"""

from __future__ import annotations

import gzip
import time

from agent.probes.hardware import HardwareProbe
from agent.runner import collect
from agent.transport.encode import encode_report, to_pb
from canhgac_proto.v1 import collector_pb2 as pb


def main() -> dict[str, float]:
    probe = HardwareProbe()
    reports = []
    for seq in range(1, 51):
        r = collect({"hardware": probe}, "boot", int(time.time() * 1000))
        reports.append(to_pb(r))
        reports[-1].seq = seq
    one = encode_report(collect({"hardware": probe}, "boot", int(time.time() * 1000)))
    batch = pb.SubmitRequest(reports=reports).SerializeToString()
    print("bytes on the wire per report (this machine's hardware probe)")
    print(f"{'':24}{'plain':>10}{'gzip':>10}{'ratio':>8}")
    figures = {}
    for key, name, data, n in (
        ("one", "one report", one, 1),
        ("batch50", "batch of 50, per report", batch, 50),
    ):
        packed = len(gzip.compress(data))
        print(f"{name:24}{len(data) / n:>10.0f}{packed / n:>10.0f}{packed / len(data):>8.2f}")
        figures[f"{key}_plain_bytes"] = len(data) / n
        figures[f"{key}_gzip_bytes"] = packed / n
    return figures


if __name__ == "__main__":
    main()
