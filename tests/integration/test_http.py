"""The collector's HTTP edge against real sockets: idle connections closed, a connection bound,
IPv6 listen addresses, and TLS with basic auth as in the Prometheus exporter web config."""

from __future__ import annotations

import base64
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt
import pytest
from pydantic import ValidationError

from agent.transport.client import CollectorClient, MachineFacts
from canhgac_common.config import ConfigError
from collector.app import CollectorApp
from collector.model import Placement
from tests.integration.harness import collector_config, start_collector, wait_until
from tests.integration.test_limits import _rejections
from tests.integration.test_tls import make_ca_and_server_cert


def _get(url: str, context: ssl.SSLContext | None = None, auth: str | None = None) -> int:
    request = urllib.request.Request(url)
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return e.code


def _closed_by_peer(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_http_timeout_idle_connections_are_closed_and_the_server_still_answers(
    tmp_path: Path,
) -> None:
    cfg = collector_config(tmp_path / "c.db", http={"idle_timeout": "1s", "max_connections": 16})
    running = start_collector(cfg)
    port = running.app.http_port
    try:
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(12)]
        # One sends half a request and stops: a read timeout, not only an idle one.
        idle[0].sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed = [_closed_by_peer(s, 5) for s in idle]
        assert closed == [True] * len(idle)
        assert time.monotonic() - started < 5
        assert _get(f"http://127.0.0.1:{port}/healthz") == 200
        print(f"\n{sum(closed)}/{len(idle)} idle connections closed by the server after ~1 s")
        for s in idle:
            s.close()
    finally:
        running.app.stop(grace=0)


def test_http_timeout_connections_beyond_the_bound_get_no_thread(tmp_path: Path) -> None:
    bound = 8
    cfg = collector_config(tmp_path / "c.db", http={"idle_timeout": "3s", "max_connections": bound})
    running = start_collector(cfg)
    port = running.app.http_port
    before = threading.active_count()
    try:
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(bound)]
        wait_until(lambda: threading.active_count() >= before + bound, 5, "a thread each")
        extra = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
        assert [_closed_by_peer(s, 5) for s in extra] == [True] * len(extra)  # at once
        assert threading.active_count() <= before + bound
        # The held ones time out, and the server answers again (and says what it refused).
        assert [_closed_by_peer(s, 6) for s in held] == [True] * bound
        wait_until(lambda: _get(f"http://127.0.0.1:{port}/healthz") == 200, 5, "/healthz")
        assert _rejections(running).get("http_connections") == len(extra)
        print(f"\n{len(extra)} connections beyond the bound of {bound} closed at once")
        for s in held + extra:
            s.close()
    finally:
        running.app.stop(grace=0)


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
def test_http_timeout_ipv6_listen_addresses_serve_http_and_grpc(tmp_path: Path) -> None:
    cfg = collector_config(tmp_path / "c.db", http_listen="[::1]:0", grpc_listen="[::1]:0")
    app = CollectorApp(cfg)
    app.start()
    try:
        assert _get(f"http://[::1]:{app.http_port}/healthz") == 200
        _, token = app.store.create_token(Placement("Cao Bằng", "Hạ Lang"), 600, time.time())
        with CollectorClient(f"[::1]:{app.grpc_port}") as c:
            enrolled = c.enroll(token, MachineFacts("m6", "pc6", "Linux", "6", "0.1.0"))
        with CollectorClient(f"[::1]:{app.grpc_port}", secret=enrolled.secret) as c:
            assert c.submit([]).stored == []
    finally:
        app.stop(grace=0)
    # Every interface, IPv4 included (dual stack).
    cfg = collector_config(tmp_path / "c.db", http_listen="[::]:0")
    app = CollectorApp(cfg, grpc_address="127.0.0.1:0")
    app.start()
    try:
        assert _get(f"http://[::1]:{app.http_port}/healthz") == 200
        assert _get(f"http://127.0.0.1:{app.http_port}/healthz") == 200
    finally:
        app.stop(grace=0)


def test_http_timeout_tls_and_basic_auth_guard_every_path(tmp_path: Path) -> None:
    ca, crt, key = make_ca_and_server_cert(tmp_path, "collector.halang.test")
    hashed = bcrypt.hashpw(b"mat-khau-bi-mat", bcrypt.gensalt(rounds=10)).decode()
    cfg = collector_config(
        tmp_path / "c.db",
        http={
            "tls_server_config": {"cert_file": str(crt), "key_file": str(key)},
            "basic_auth_users": {"prometheus": hashed},
        },
    )
    running = start_collector(cfg)
    base = f"https://127.0.0.1:{running.app.http_port}"
    trusted = ssl.create_default_context(cafile=str(ca))
    try:
        for path in ("/metrics", "/healthz", "/readyz"):
            assert _get(base + path, trusted) == 401
            assert _get(base + path, trusted, "prometheus:wrong") == 401
            assert _get(base + path, trusted, "nobody:mat-khau-bi-mat") == 401
            assert _get(base + path, trusted, "prometheus:mat-khau-bi-mat") == 200
        with pytest.raises(OSError):  # no HTTP answer without TLS
            _get(f"http://127.0.0.1:{running.app.http_port}/healthz")  # plaintext to TLS
    finally:
        running.app.stop(grace=0)


def test_http_timeout_bad_web_config_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"basic_auth_users\.prometheus: not a bcrypt hash"):
        collector_config(tmp_path / "c.db", http={"basic_auth_users": {"prometheus": "plain"}})
    cfg = collector_config(
        tmp_path / "c.db",
        http={"tls_server_config": {"cert_file": "/nonexistent.crt", "key_file": "/x.key"}},
    )
    with pytest.raises(ConfigError, match=r"http\.tls_server_config\.cert_file/key_file"):
        start_collector(cfg)
