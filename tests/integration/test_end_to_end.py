"""Enroll -> collect -> spool -> Submit -> store -> /metrics, over real gRPC and SQLite."""

from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.config import DeliveryConfig
from agent.probes.hardware import HardwareProbe
from agent.runner import Runner, Scheduled
from agent.spool import Spool
from agent.transport.client import CollectorClient, DeliveryError, MachineFacts
from agent.transport.wire import StatusCode
from canhgac_proto.v1 import collector_pb2 as pb
from collector.metrics.worker import RENDER_NICENESS, RENDER_PROCESSES
from tests.integration.harness import Running, collector_config, start_collector


def scrape(running: Running, path: str = "/metrics") -> tuple[int, str]:
    url = f"http://127.0.0.1:{running.app.http_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (s.labels, s.value)
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == name
    ]


def runner_for(running: Running, secret: str, tmp_path: Path) -> tuple[Runner, Spool]:
    spool = Spool(tmp_path / "spool.db", 1 << 20, 86400)
    client = running.client(secret)
    sched = {"hardware": Scheduled(HardwareProbe(), 15)}
    return Runner(sched, spool, client.submit, DeliveryConfig(), boot_id="boot-1"), spool


def test_enrolled_agent_appears_in_metrics_with_its_place(
    collector: Running, tmp_path: Path
) -> None:
    secret = collector.enroll(hostname="ubnd-thanhnhat-01")
    runner, spool = runner_for(collector, secret, tmp_path)
    runner.collect_due(["hardware"])
    assert runner.deliver_batch() is False  # delivered, nothing left
    assert spool.status().depth == 0

    status, text = scrape(collector)
    assert status == 200
    up = samples(text, "canhgac_agent_up")
    assert len(up) == 1
    labels, value = up[0]
    assert value == 1.0
    assert labels["district"] == "Hạ Lang"
    assert labels["commune"] == "Thanh Nhật"
    assert labels["role"] == "workstation"
    assert labels["host"]  # the hostname the hardware probe read
    mem = samples(text, "canhgac_memory_total_bytes")
    assert mem and mem[0][1] > 0
    assert samples(text, "canhgac_disk_size_bytes")
    assert samples(text, "canhgac_probe_success")[0][0]["probe"] == "hardware"
    stored = samples(text, "canhgac_collector_reports_stored_total")
    assert stored == [({}, 1.0)]


def test_a_killed_metrics_renderer_is_replaced_and_the_fleet_stays_in_metrics(
    collector: Running, tmp_path: Path
) -> None:
    secret = collector.enroll(hostname="ubnd-thanhnhat-01")
    runner, _ = runner_for(collector, secret, tmp_path)
    runner.collect_due(["hardware"])
    runner.deliver_batch()
    assert [v for _, v in samples(scrape(collector)[1], "canhgac_agent_up")] == [1.0]
    renderer = collector.app.fleet_renderer
    first = renderer.pids
    assert len(first) == RENDER_PROCESSES and os.getpid() not in first  # rendered in children
    # Below the collector's priority: Submit's acks come first when cores are short.
    niceness = min(19, os.nice(0) + RENDER_NICENESS)
    assert [psutil.Process(pid).nice() for pid in first] == [niceness] * RENDER_PROCESSES
    for pid in first:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(map(_alive, first)) and time.monotonic() < deadline:
        time.sleep(0.05)
    status, text = scrape(collector)
    assert status == 200
    assert [v for _, v in samples(text, "canhgac_agent_up")] == [1.0]
    assert len(renderer.pids) == RENDER_PROCESSES and not set(renderer.pids) & set(first)


def _alive(pid: int) -> bool:
    """Not yet reaped (the renderer's parent reaps it when it notices)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_health_endpoints(collector: Running) -> None:
    assert scrape(collector, "/healthz") == (200, "ok\n")
    assert scrape(collector, "/readyz") == (200, "ready\n")
    assert scrape(collector, "/nope")[0] == 404


def test_duplicate_delivery_is_stored_once_and_acked_again(
    collector: Running, tmp_path: Path
) -> None:
    secret = collector.enroll()
    runner, spool = runner_for(collector, secret, tmp_path)
    runner.collect_due(["hardware"])
    payload = [p for _, p in spool.pending(10)]
    client = collector.client(secret)
    first = client.submit(payload)
    again = client.submit(payload + payload)
    assert first.stored == [1]
    assert again.stored == [1, 1]
    agent = collector.app.store.list_agents()[0]
    assert collector.app.store.report_seqs(agent.agent_id) == [1]
    text = scrape(collector)[1]
    assert samples(text, "canhgac_collector_reports_duplicate_total") == [({}, 2.0)]


def test_reenrolling_the_same_machine_keeps_one_agent(collector: Running) -> None:
    old = collector.enroll(machine="same-machine")
    new = collector.enroll(machine="same-machine", previous=old)  # the proof
    agents = collector.app.store.list_agents()
    assert len(agents) == 1
    assert old.split(".")[0] == new.split(".")[0] == agents[0].agent_id
    with pytest.raises(DeliveryError) as e:
        collector.client(old).submit([])
    assert e.value.code is StatusCode.UNAUTHENTICATED  # the old secret was replaced
    assert collector.client(new).submit([]).stored == []


@pytest.mark.parametrize(
    "secret",
    [None, "garbage", "0123456789ab.forged-secret-that-was-never-issued"],
    ids=["missing", "malformed", "forged"],
)
def test_bad_credentials_are_rejected_and_counted(collector: Running, secret: str | None) -> None:
    with pytest.raises(DeliveryError) as e:
        collector.client(secret).submit([])
    assert e.value.code is StatusCode.UNAUTHENTICATED
    with pytest.raises(DeliveryError):
        collector.client(secret).throughput(1000)
    text = scrape(collector)[1]
    assert samples(text, "canhgac_collector_rejections_total") == [
        ({"reason": "unauthenticated"}, 2.0)
    ]


def test_forged_agent_id_with_a_real_secret_is_rejected(collector: Running) -> None:
    secret = collector.enroll(machine="m1")
    other = collector.enroll(machine="m2")
    forged = other.split(".")[0] + "." + secret.split(".")[1]
    with pytest.raises(DeliveryError) as e:
        collector.client(forged).submit([])
    assert e.value.code is StatusCode.UNAUTHENTICATED


def test_revoked_agent_is_rejected(collector: Running) -> None:
    secret = collector.enroll()
    agent_id = secret.split(".")[0]
    assert collector.client(secret).submit([]).stored == []
    collector.app.store.revoke_agent(agent_id, 0)
    with pytest.raises(DeliveryError) as e:
        collector.client(secret).submit([])
    assert e.value.code is StatusCode.UNAUTHENTICATED
    assert "revoked" in str(e.value)


def test_enrollment_with_a_bad_token_is_refused(collector: Running) -> None:
    facts = MachineFacts("m", "h", "Linux", "6", "0.1.0")
    with CollectorClient(collector.address) as c:
        for token in ("nonsense", "cgt.deadbeef.not-the-secret"):
            with pytest.raises(DeliveryError) as e:
                c.enroll(token, facts)
            assert e.value.code is StatusCode.UNAUTHENTICATED


def test_oversize_message_is_refused_and_the_server_keeps_serving(
    collector: Running, tmp_path: Path
) -> None:
    secret = collector.enroll()
    runner, spool = runner_for(collector, secret, tmp_path)
    runner.collect_due(["hardware"])
    payload = spool.pending(1)[0][1]
    limit = collector.app.cfg.limits.max_message_bytes
    # Uncompressed, so the size on the wire is what the guard sees.
    big = collector.client(secret, gzip=False)
    with pytest.raises(DeliveryError) as e:
        big.submit([payload] * (limit // len(payload) + 10))
    assert e.value.code is StatusCode.RESOURCE_EXHAUSTED
    assert "exceeds the limit" in str(e.value)
    assert collector.client(secret).submit([payload]).stored == [1]
    text = scrape(collector)[1]
    assert ({"reason": "resource_exhausted"}, 1.0) in samples(
        text, "canhgac_collector_rejections_total"
    )


def test_garbage_bytes_get_invalid_argument_and_are_counted(collector: Running) -> None:
    secret = collector.enroll()
    with grpc.insecure_channel(collector.address) as ch:
        call = ch.unary_unary(
            "/canhgac_proto.v1.Collector/Submit",
            request_serializer=None,
            response_deserializer=None,
        )
        with pytest.raises(grpc.RpcError) as e:
            call(
                b"\xff\xff\xff\xff not a protobuf",
                metadata=(("authorization", f"Bearer {secret}"),),
            )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    text = scrape(collector)[1]
    assert ({"reason": "invalid_argument"}, 1.0) in samples(
        text, "canhgac_collector_rejections_total"
    )


def test_invalid_report_is_rejected_alone_and_the_rest_stored(
    collector: Running, tmp_path: Path
) -> None:
    secret = collector.enroll()
    runner, spool = runner_for(collector, secret, tmp_path)
    runner.collect_due(["hardware"])
    good = spool.pending(1)[0][1]
    bad = pb.Report(seq=99, collected_at_ms=5).SerializeToString()
    result = collector.client(secret).submit([good, bad])
    assert result.stored == [1]
    assert result.rejected == [(99, "collected_at_ms 5 is not a plausible time")]


def test_throughput_streams_exactly_the_bytes_asked_and_is_bounded(collector: Running) -> None:
    secret = collector.enroll()
    client = collector.client(secret)
    received, seconds = client.throughput(1_000_000)
    assert received == 1_000_000
    assert seconds > 0
    limit = collector.app.cfg.limits.throughput_max_bytes
    with pytest.raises(DeliveryError) as e:
        client.throughput(limit + 1)
    assert e.value.code is StatusCode.INVALID_ARGUMENT


def test_calls_beyond_the_concurrency_limit_get_resource_exhausted(tmp_path: Path) -> None:
    running = start_collector(
        collector_config(tmp_path / "c.db", limits={"max_concurrent_rpcs": 1})
    )
    try:
        secret = running.enroll()
        with grpc.insecure_channel(running.address) as ch:
            throughput = ch.unary_stream(
                "/canhgac_proto.v1.Collector/Throughput",
                request_serializer=pb.ThroughputRequest.SerializeToString,
                response_deserializer=pb.ThroughputChunk.FromString,
            )

            def hold_the_only_slot() -> Any:
                """A throughput stream far larger than the flow-control window stays in flight
                while only its first chunk is read. The server frees the enrollment's slot a
                moment after the client has its answer, so the first try may be refused."""
                for _ in range(100):
                    stream = throughput(
                        pb.ThroughputRequest(bytes=16 * 1024 * 1024, chunk_bytes=4096),
                        metadata=(("authorization", f"Bearer {secret}"),),
                        timeout=30,
                    )
                    try:
                        assert len(next(iter(stream)).data) == 4096
                        return stream
                    except grpc.RpcError as err:
                        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                        time.sleep(0.05)
                raise AssertionError("the only slot never became free")

            stream = hold_the_only_slot()
            with pytest.raises(DeliveryError) as e:
                running.client(secret).submit([])
            assert e.value.code is StatusCode.RESOURCE_EXHAUSTED
            stream.cancel()
    finally:
        running.app.stop(grace=0)


def test_upload_counts_the_bytes_sent_and_is_bounded(collector: Running) -> None:
    secret = collector.enroll()
    client = collector.client(secret)
    received, seconds = client.upload(1_000_000)
    assert received == 1_000_000
    assert seconds > 0
    limit = collector.app.cfg.limits.throughput_max_bytes
    with pytest.raises(DeliveryError) as e:
        client.upload(limit + 65536)
    assert e.value.code is StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(DeliveryError) as e:
        collector.client("0123456789ab.forged").upload(1000)
    assert e.value.code is StatusCode.UNAUTHENTICATED
