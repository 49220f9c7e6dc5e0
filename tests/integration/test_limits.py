"""One client never hurts the others: server-side deadlines, per-agent limits, a reserve of
workers for Submit, and every refusal counted (real collector, real grpcio and agent clients)."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from agent.transport.client import DeliveryError
from agent.transport.wire import StatusCode
from canhgac_proto.v1 import collector_pb2 as pb
from tests.integration.harness import Running, collector_config, start_collector, wait_until
from tests.integration.test_end_to_end import samples, scrape

_SERVICE = "/canhgac_proto.v1.Collector/"


def _rejections(running: Running) -> dict[str, float]:
    text = scrape(running)[1]
    return {
        labels["reason"]: value
        for labels, value in samples(text, "canhgac_collector_rejections_total")
    }


def _idle(release: threading.Event) -> Iterator[Any]:
    """A request stream that sends nothing until released (headers only, then silence)."""
    release.wait(120)
    return
    yield


def _auth(secret: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {secret}"),)


def _settled(call: grpc.Future[Any], wait: float = 1.0) -> grpc.StatusCode | None:
    """The call's status if the collector ended it within `wait` seconds, else None (open)."""
    try:
        call.result(timeout=wait)
    except grpc.FutureTimeoutError:
        return None
    except grpc.RpcError as e:
        return e.code()
    return grpc.StatusCode.OK


def _report(seq: int) -> bytes:
    return pb.Report(seq=seq, collected_at_ms=int(time.time() * 1000)).SerializeToString()


def test_stalled_stream_idle_uploads_and_tiny_chunks_leave_every_submit_served(
    tmp_path: Path,
) -> None:
    cfg = collector_config(
        tmp_path / "c.db", limits={"stream_max_duration": "4s", "request_timeout": "3s"}
    )
    limits = cfg.limits
    running = start_collector(cfg)
    release = threading.Event()
    channel = grpc.insecure_channel(running.address)
    try:
        bad = [running.enroll(machine=f"bad-{i}") for i in range(limits.workers + 1)]
        good = [running.enroll(machine=f"good-{i}") for i in range(6)]
        upload = channel.stream_unary(
            _SERVICE + "Upload",
            request_serializer=pb.ThroughputChunk.SerializeToString,
            response_deserializer=pb.UploadResult.FromString,
        )
        throughput = channel.unary_stream(
            _SERVICE + "Throughput",
            request_serializer=pb.ThroughputRequest.SerializeToString,
            response_deserializer=pb.ThroughputChunk.FromString,
        )
        # Each misbehaving client asks for a minute; the collector must not grant it.
        started = time.monotonic()
        first = upload.future(_idle(release), metadata=_auth(bad[0]), timeout=60)
        assert _settled(first) is None
        second = upload.future(_idle(release), metadata=_auth(bad[0]), timeout=60)
        assert _settled(second) is grpc.StatusCode.RESOURCE_EXHAUSTED  # one stream per agent
        # 1-byte chunks, never read past the first: raised to the floor, cut at the deadline.
        tiny = throughput(
            pb.ThroughputRequest(bytes=limits.throughput_max_bytes, chunk_bytes=1),
            metadata=_auth(bad[limits.workers]),
            timeout=60,
        )
        assert len(next(iter(tiny)).data) == limits.throughput_min_chunk_bytes
        uploads = [first] + [
            upload.future(_idle(release), metadata=_auth(secret), timeout=60)
            for secret in bad[1 : limits.workers]
        ]
        outcomes = [_settled(call, 0.5) for call in uploads]
        open_streams = outcomes.count(None)  # and `tiny`: all the workers not reserved
        assert open_streams == limits.workers - limits.reserved_workers - 1
        refused = outcomes.count(grpc.StatusCode.RESOURCE_EXHAUSTED)
        assert refused == len(uploads) - open_streams

        # Meanwhile every other agent's Submit is served, before and after the deadline.
        def deliver(index: int) -> int:
            stored = 0
            with running.client(good[index], timeout=10) as client:
                for seq in range(1, 9):
                    stored += client.submit([_report(seq)]).stored == [seq]
                    time.sleep(0.5)
            return stored

        with futures.ThreadPoolExecutor(len(good)) as pool:
            delivered = list(pool.map(deliver, range(len(good))))
        assert delivered == [8] * len(good), f"Submits stored per agent: {delivered}"

        # The collector ended the open streams itself, long before the clients' 60 s.
        wait_until(lambda: all(call.done() for call in uploads), 15, "streams cut by the server")
        with contextlib.suppress(grpc.RpcError):
            for _ in tiny:
                pass
        assert tiny.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED)
        assert time.monotonic() - started < 30
        reasons = _rejections(running)
        assert reasons.get("agent_streams") == 1
        assert reasons.get("stream_reserve") == refused
        assert reasons.get("deadline_exceeded") == open_streams + 1
        print(
            f"\nSubmits stored {sum(delivered)}/{8 * len(good)} while {open_streams + 1} streams"
            f" stalled; rejections {reasons}"
        )
    finally:
        release.set()
        channel.close()
        running.app.stop(grace=0)


def test_stalled_stream_of_headers_only_beyond_the_in_flight_cap_is_refused_and_counted(
    tmp_path: Path,
) -> None:
    cfg = collector_config(
        tmp_path / "c.db",
        limits={
            "workers": 2,
            "reserved_workers": 1,
            "max_concurrent_rpcs": 3,
            "request_timeout": "2s",
        },
    )
    running = start_collector(cfg)
    release = threading.Event()
    channel = grpc.insecure_channel(running.address)
    try:
        secrets = [running.enroll(machine=f"m-{i}") for i in range(2)]
        # Submit sent as a stream that never carries its message: headers, then silence.
        stalled_submit = channel.stream_unary(
            _SERVICE + "Submit",
            request_serializer=pb.SubmitRequest.SerializeToString,
            response_deserializer=pb.SubmitResponse.FromString,
        )
        calls = []
        for i in range(7):
            calls.append(
                stalled_submit.future(_idle(release), metadata=_auth(secrets[i % 2]), timeout=60)
            )
            time.sleep(0.1)  # in this order: the in-flight count grows by one per call
        wait_until(lambda: all(c.done() for c in calls), 20, "every stalled call to end")
        codes = [_settled(c, 0) for c in calls]
        details = [c.exception().details() for c in calls]  # type: ignore[union-attr]
        assert codes[:3] == [grpc.StatusCode.CANCELLED] * 3, details  # past request_timeout
        assert codes[3:] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 4, details
        assert [d.startswith("collector busy") for d in details[3:6]] == [True] * 3
        assert details[6] == "Concurrent RPC limit exceeded!"  # grpc's own backstop
        reasons = _rejections(running)
        assert reasons == {"deadline_exceeded": 3.0, "busy": 3.0, "grpc_busy": 1.0}, reasons
        with running.client(secrets[0], timeout=10) as client:
            assert client.submit([_report(1)]).stored == [1]  # served again once drained
    finally:
        release.set()
        channel.close()
        running.app.stop(grace=0)


def test_stalled_stream_store_errors_are_unavailable_and_counted(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    running = start_collector(collector_config(db))
    try:
        secret = running.enroll()
        with contextlib.closing(sqlite3.connect(db)) as conn:
            conn.execute("DROP TABLE reports")  # every ingest now fails in the store
        with running.client(secret, timeout=10) as client:
            try:
                client.submit([_report(1)])
                raise AssertionError("ingest without a reports table succeeded")
            except DeliveryError as e:
                assert e.code is StatusCode.UNAVAILABLE
        assert _rejections(running) == {"unavailable": 1.0}
    finally:
        running.app.stop(grace=0)
