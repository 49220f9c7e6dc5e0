"""HTTP edge: /metrics (and /metrics/collector, its own health alone), /healthz (alive),
/readyz (store reachable), POST /-/reload (rules)."""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import hmac
import ipaddress
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import bcrypt
from prometheus_client import CONTENT_TYPE_LATEST

from collector.config import HttpConfig
from collector.errors import ConfigError, cannot_listen

__all__ = ["HttpServer"]

log = logging.getLogger(__name__)

# Checked against when the user is unknown, so a wrong name costs as long as a wrong password.
_NO_USER = b"$2b$10$yYbuvfuViujOOm7CY2GnuO8v/OTK41T.7liFC/0dAT94ezB9v4NEe"
# Successful logins kept (as digests) so a scrape every 15 s does not pay bcrypt each time.
_KEPT_LOGINS = 64


def _tls_context(cfg: HttpConfig) -> ssl.SSLContext | None:
    tls = cfg.tls_server_config
    if tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(
            f"http.tls_server_config.cert_file/key_file: {tls.cert_file}, {tls.key_file}: {e}"
        ) from None
    if tls.client_ca_file is not None:
        try:
            context.load_verify_locations(tls.client_ca_file)
        except (OSError, ssl.SSLError) as e:
            raise ConfigError(
                f"http.tls_server_config.client_ca_file: {tls.client_ca_file}: {e}"
            ) from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


# Prometheus asks for gzip at every scrape. Level 1: the fleet's repetitive text shrinks
# most of the way already, for a fraction of level 9's CPU at each scrape.
GZIP_LEVEL = 1


def _wants_gzip(accept_encoding: str) -> bool:
    """True when the client accepts gzip (RFC 9110: `gzip`, `gzip;q=0.5`; not `gzip;q=0`)."""
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip"):
            q = params.strip().lower().removeprefix("q=")
            try:
                return not params.strip() or float(q) > 0
            except ValueError:
                return False
    return False


class _Logins:
    """Basic auth against bcrypt hashes; no users configured = every request is let in."""

    def __init__(self, users: dict[str, str]) -> None:
        self._users = {name: hashed.encode() for name, hashed in users.items()}
        self._kept: set[bytes] = set()
        self._lock = threading.Lock()

    def allows(self, header: str | None) -> bool:
        if not self._users:
            return True
        if header is None or not header.startswith("Basic "):
            return False
        try:
            name, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed = self._users.get(name)
        digest = hashlib.sha256(f"{name}\0{password}\0".encode() + (hashed or b"")).digest()
        with self._lock:
            if hashed is not None and any(hmac.compare_digest(digest, k) for k in self._kept):
                return True
        ok = bcrypt.checkpw(password.encode(), hashed or _NO_USER) and hashed is not None
        if ok:
            with self._lock:
                if len(self._kept) >= _KEPT_LOGINS:
                    self._kept.clear()
                self._kept.add(digest)
        return ok


class _Server(ThreadingHTTPServer):
    """One thread per connection, at most `max_connections` of them; TLS handshakes happen in
    the connection's thread, not in the accepting one."""

    daemon_threads = True
    # Connections waiting to be accepted (and refused at once past the bound): the default 5
    # would leave a burst of them to the kernel's SYN-ACK retries, seconds later.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        max_connections: int,
        tls: ssl.SSLContext | None,
        on_refused: Callable[[], None],
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._slots = threading.BoundedSemaphore(max_connections)
        self._tls = tls
        self._on_refused = on_refused
        super().__init__(address, handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, client = self.socket.accept()
        if self._tls is not None:
            sock = self._tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, client

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            # Closed at once: no thread, no buffer, nothing waits for a slow client.
            self._on_refused()
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Timeouts, resets and failed TLS handshakes are the client's business.
        log.debug("http connection from %s ended with an error", client_address, exc_info=True)


class HttpServer:
    """A small threaded HTTP server; `port` is the bound port (pass port 0 in tests).

    `address` is HOST:PORT, with IPv6 hosts in brackets ("[::1]:9108", "[::]:9108").
    """

    def __init__(
        self,
        address: str,
        metrics: Callable[[], bytes],
        ready: Callable[[], bool],
        reload: Callable[[], tuple[bool, str]] | None = None,
        *,
        own_metrics: Callable[[], bytes] | None = None,
        config: HttpConfig | None = None,
        on_refused: Callable[[], None] = lambda: None,
    ):
        cfg = config or HttpConfig()
        host, _, port = address.rpartition(":")
        ready_, reload_ = ready, reload
        scrapes = {"/metrics": metrics}
        if own_metrics is not None:
            scrapes["/metrics/collector"] = own_metrics
        tls = _tls_context(cfg)
        logins = _Logins(cfg.basic_auth_users)

        class Handler(BaseHTTPRequestHandler):
            timeout = cfg.idle_timeout  # per connection: reads (and so idle keep-alive) bounded

            def setup(self) -> None:
                if tls is not None:
                    self.request.settimeout(self.timeout)
                    self.request.do_handshake()
                super().setup()

            def _allowed(self) -> bool:
                if logins.allows(self.headers.get("Authorization")):
                    return True
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="canhgac"')
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", "13")
                self.end_headers()
                self.wfile.write(b"unauthorized\n")
                return False

            def do_POST(self) -> None:
                if not self._allowed():
                    return
                if self.path.split("?", 1)[0] != "/-/reload":
                    self._send(404, b"not found: POST /-/reload\n")
                elif not ipaddress.ip_address(self.client_address[0]).is_loopback:
                    # Only from the collector's own host (and with the users' password if set).
                    self._send(403, b"reload is accepted from loopback only\n")
                elif reload_ is None:
                    self._send(404, b"compliance rules are not configured\n")
                else:
                    # Re-reads files named in the config only; the running pack stays on error.
                    ok, message = reload_()
                    self._send(200 if ok else 422, message.encode() + b"\n")

            def do_GET(self) -> None:
                # Every path, /healthz included, as the exporter toolkit does.
                if not self._allowed():
                    return
                path = self.path.split("?", 1)[0]
                if (render := scrapes.get(path)) is not None:
                    try:
                        body = render()
                    except Exception:
                        log.exception("rendering /metrics failed")
                        self._send(500, b"metrics unavailable\n")
                        return
                    if _wants_gzip(self.headers.get("Accept-Encoding", "")):
                        body = gzip.compress(body, compresslevel=GZIP_LEVEL)
                        self._send(200, body, CONTENT_TYPE_LATEST, gzipped=True)
                    else:
                        self._send(200, body, CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    self._send(200, b"ok\n")
                elif path == "/readyz":
                    ok = ready_()
                    self._send(200 if ok else 503, b"ready\n" if ok else b"store unavailable\n")
                else:
                    self._send(
                        404, b"not found: try /metrics, /metrics/collector, /healthz, /readyz\n"
                    )

            def _send(
                self,
                code: int,
                body: bytes,
                ctype: str = "text/plain; charset=utf-8",
                *,
                gzipped: bool = False,
            ) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                if gzipped:
                    self.send_header("Content-Encoding", "gzip")
                    self.send_header("Vary", "Accept-Encoding")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("http %s", format % args)

        bind = host.strip("[]") or "0.0.0.0"  # noqa: S104 (":9108" means every interface)
        try:
            self._server = _Server((bind, int(port)), Handler, cfg.max_connections, tls, on_refused)
        except OSError as e:
            raise cannot_listen("http_listen", address, e) from None
        except ValueError as e:
            raise ConfigError(f"http_listen {address!r}: cannot listen: {e}") from None
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
