"""The agent's own gRPC client (agent.transport.wire) against a real grpcio server on loopback."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from agent.transport.wire import Channel, RpcError, StatusCode
from tests.integration.harness import Running, free_port

REPO = Path(__file__).resolve().parents[2]
SERVICE = "test.Echo"


def _echo(request: bytes, context: grpc.ServicerContext) -> bytes:
    token = dict(context.invocation_metadata()).get("authorization", "")
    return request + str(token).encode()


def _peer(request: bytes, context: grpc.ServicerContext) -> bytes:
    return context.peer().encode()


def _refuse(request: bytes, context: grpc.ServicerContext) -> bytes:
    context.abort(grpc.StatusCode.PERMISSION_DENIED, "không được phép: xã Thanh Nhật 100%")
    raise AssertionError("abort returns only by raising")


def _chunks(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    count = int(request)
    for i in range(count):
        yield bytes([i % 251]) * 65536


def _total(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
    return str(sum(len(r) for r in requests)).encode()


@contextlib.contextmanager
def _server(
    release: threading.Event | None = None,
    compression: grpc.Compression | None = None,
    options: tuple[tuple[str, int], ...] = (),
) -> Iterator[str]:
    def wait(request: bytes, context: grpc.ServicerContext) -> bytes:
        assert release is not None
        release.wait(10)
        return request

    handlers = {
        "Echo": grpc.unary_unary_rpc_method_handler(_echo),
        "Peer": grpc.unary_unary_rpc_method_handler(_peer),
        "Refuse": grpc.unary_unary_rpc_method_handler(_refuse),
        "Wait": grpc.unary_unary_rpc_method_handler(wait),
        "Chunks": grpc.unary_stream_rpc_method_handler(_chunks),
        "Total": grpc.stream_unary_rpc_method_handler(_total),
    }
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4), options=options, compression=compression
    )
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=0)


def _method(name: str) -> str:
    return f"/{SERVICE}/{name}"


@pytest.mark.parametrize("gzip", [True, False])
def test_unary_call_carries_message_and_metadata(gzip: bool) -> None:
    body = "báo cáo ".encode() * 2000
    with _server() as address:
        channel = Channel(address, gzip=gzip)
        try:
            reply = channel.unary(
                _method("Echo"), body, timeout=10, metadata=[("authorization", "Bearer s")]
            )
            assert reply == body + b"Bearer s"
            assert channel.unary(_method("Echo"), b"", timeout=10) == b""
        finally:
            channel.close()


def test_error_status_and_its_unicode_details_reach_the_caller() -> None:
    with _server() as address:
        channel = Channel(address)
        with pytest.raises(RpcError) as e:
            channel.unary(_method("Refuse"), b"x", timeout=10)
        assert e.value.code is StatusCode.PERMISSION_DENIED
        assert e.value.details == "không được phép: xã Thanh Nhật 100%"
        with pytest.raises(RpcError) as e:
            channel.unary("/test.Echo/Missing", b"x", timeout=10)
        assert e.value.code is StatusCode.UNIMPLEMENTED
        assert channel.unary(_method("Echo"), b"ok", timeout=10) == b"ok"  # same channel
        channel.close()


def test_deadline_exceeded_and_the_channel_still_works_after() -> None:
    release = threading.Event()
    with _server(release) as address:
        channel = Channel(address)
        try:
            with pytest.raises(RpcError) as e:
                channel.unary(_method("Wait"), b"slow", timeout=0.2)
            assert e.value.code is StatusCode.DEADLINE_EXCEEDED
            release.set()
            assert channel.unary(_method("Wait"), b"next", timeout=10) == b"next"
        finally:
            channel.close()


@pytest.mark.parametrize("compression", [None, grpc.Compression.Gzip])
def test_server_stream_beyond_the_flow_control_window(
    compression: grpc.Compression | None,
) -> None:
    count = 100  # 6.4 MiB: more than the window the client grants, so it must grant more
    with _server(compression=compression) as address:
        channel = Channel(address)
        try:
            chunks = list(channel.stream(_method("Chunks"), [str(count).encode()], timeout=30))
        finally:
            channel.close()
    assert [c[:1] for c in chunks] == [bytes([i % 251]) for i in range(count)]
    assert {len(c) for c in chunks} == {65536}


def test_client_stream_larger_than_the_servers_window() -> None:
    parts = [b"\x01" * 1_000_000] * 3
    with _server() as address:
        channel = Channel(address, gzip=False)
        try:
            assert channel.unary(_method("Total"), b"", timeout=10) == b"0"
            (reply,) = channel.stream(_method("Total"), iter(parts), timeout=30)
        finally:
            channel.close()
    assert reply == b"3000000"


def test_a_connection_the_server_closed_while_idle_is_replaced_without_a_failed_call() -> None:
    # The server sends GOAWAY after 1 s idle (grpcio's minimum); every call must still succeed.
    with _server(options=(("grpc.max_connection_idle_ms", 1000),)) as address:
        channel = Channel(address)
        try:
            first = channel.unary(_method("Peer"), b"", timeout=10)
            peers = {first}
            for _ in range(10):
                time.sleep(1.5)
                peers.add(channel.unary(_method("Peer"), b"", timeout=10))
                if len(peers) > 1:
                    break
        finally:
            channel.close()
    assert len(peers) > 1, "the server never closed the idle connection"


def test_unreachable_collector_is_unavailable_and_not_ready() -> None:
    channel = Channel(f"127.0.0.1:{free_port()}")
    assert channel.ready(2) is False
    with pytest.raises(RpcError) as e:
        channel.unary(_method("Echo"), b"x", timeout=5)
    assert e.value.code is StatusCode.UNAVAILABLE
    with _server() as address:
        channel = Channel(address)
        try:
            assert channel.ready(10) is True
            assert channel.ready(10) is True  # the same connection, already settled
            assert channel.unary(_method("Echo"), b"x", timeout=10) == b"x"
            assert channel.ready(10) is True
        finally:
            channel.close()


def test_status_codes_are_grpcs() -> None:
    assert {c.name: c.value for c in StatusCode} == {c.name: c.value[0] for c in grpc.StatusCode}


def test_addresses_without_a_port_are_refused() -> None:
    for address in ("collector.halang.test", "127.0.0.1:", ":443"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            Channel(address)


def test_the_agent_delivering_loads_neither_grpcio_nor_openssl(collector: Running) -> None:
    # grpcio with the asyncio it imports, OpenSSL (ssl, hashlib) and pydantic cost ≈ 25 MB
    # resident (docs/performance.md, agent memory); TLS is the only reason to map OpenSSL.
    secret = collector.enroll()
    code = (
        "import dataclasses, sys, time\n"
        "from agent.cli import _schedule\n"
        "from agent.config import load_config\n"
        "from agent.runner import collect\n"
        "from agent.transport.client import CollectorClient\n"
        "from agent.transport.encode import encode_report\n"
        "cfg = load_config(None)\n"
        "probes = {n: s.probe for n, s in _schedule(cfg, 15.0).items() if n == 'hardware'}\n"
        "report = collect(probes, 'boot', int(time.time() * 1000))\n"
        "report = dataclasses.replace(report, seq=1)\n"
        f"with CollectorClient({collector.address!r}, secret={secret!r}) as c:\n"
        "    assert c.submit([encode_report(report)]).stored == [1]\n"
        "heavy = ('grpc', 'asyncio', 'ssl', '_ssl', '_hashlib', 'pydantic', 'scapy')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, capture_output=True)
    assert out.stdout.decode().strip() == "[]"
