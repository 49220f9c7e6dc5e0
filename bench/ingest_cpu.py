"""Collector CPU per Submit call without gRPC: authentication, decoding and the durable store
write in one process, the quiet-machine-independent side of bench/ingest.py.
`python -m bench.ingest_cpu [--profile]` (the profile: cProfile of the batch-1 calls)."""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NoReturn

import grpc
from prometheus_client import CollectorRegistry

from bench.ingest import _template
from canhgac_proto.v1 import collector_pb2 as pb
from collector.config import CollectorConfig
from collector.metrics import ServerMetrics
from collector.model import Placement
from collector.server import Servicer, _Guard, _Pool
from collector.store import MachineFacts, Store

__all__ = ["main", "measure"]

CALLS = {1: 1500, 50: 60}
_METHOD = "/canhgac_proto.v1.Collector/Submit"


class _Context:
    """The two things the guard and the servicer ask of a call context."""

    def __init__(self, credential: str) -> None:
        self._metadata = (("authorization", f"Bearer {credential}"),)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        raise RuntimeError(f"{code}: {details}")


def _calls(store: Store, batch: int, calls: int) -> tuple[list[pb.SubmitRequest], _Context]:
    _, token = store.create_token(Placement("Cao Bằng", "Hạ Lang"), 3600, time.time())
    facts = MachineFacts(f"bench-{batch}", "pc", "W", "10", "bench")
    credential = store.enroll(token, facts, time.time()).credential
    template = pb.Report.FromString(_template())
    requests = []
    for i in range(calls):
        req = pb.SubmitRequest()
        for j in range(batch):
            template.seq = i * batch + j + 1
            req.reports.append(template)
        requests.append(req)
    return requests, _Context(credential)


def measure(batch: int, profile: cProfile.Profile | None = None) -> float:
    """Process CPU µs per Submit call of `batch` reports (SQLite, synchronous=FULL)."""
    with tempfile.TemporaryDirectory() as d:
        store = Store(f"sqlite:///{Path(d) / 'c.db'}")
        try:
            metrics = ServerMetrics(CollectorRegistry())
            limits = CollectorConfig().limits
            guard = _Guard(store, metrics, limits, _Pool(1))
            servicer = Servicer(store, metrics, CollectorConfig())
            requests, context = _calls(store, batch, CALLS[batch])
            ctx: Any = context
            start = time.process_time()
            if profile is not None:
                profile.enable()
            for req in requests:
                with guard._admitted(_METHOD, ctx, stream=False):
                    servicer.Submit(req, ctx)
            if profile is not None:
                profile.disable()
            return (time.process_time() - start) / len(requests) * 1e6
        finally:
            store.close()


def main() -> dict[str, float]:
    profile = cProfile.Profile(time.process_time) if "--profile" in sys.argv else None
    figures = {f"batch{b}_cpu_us_per_call": measure(b, profile if b == 1 else None) for b in CALLS}
    print("ingest CPU without gRPC (auth + decode + durable store; SQLite synchronous=FULL)")
    for b in CALLS:
        us = figures[f"batch{b}_cpu_us_per_call"]
        print(f"  batch {b:>2}: {us:>8.0f} µs per call, {us / b:>6.0f} µs per report")
    if profile is not None:
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(40)
        print(out.getvalue())
    return figures


if __name__ == "__main__":
    main()
