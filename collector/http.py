"""HTTP edge: /metrics, /healthz (alive), /readyz (store reachable), POST /-/reload (rules)."""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

__all__ = ["HttpServer"]

log = logging.getLogger(__name__)


class HttpServer:
    """A small threaded HTTP server; `port` is the bound port (pass port 0 in tests)."""

    def __init__(
        self,
        address: str,
        metrics: Callable[[], bytes],
        ready: Callable[[], bool],
        reload: Callable[[], tuple[bool, str]] | None = None,
    ):
        host, _, port = address.rpartition(":")
        metrics_, ready_, reload_ = metrics, ready, reload

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path.split("?", 1)[0] != "/-/reload":
                    self._send(404, b"not found: POST /-/reload\n")
                elif not ipaddress.ip_address(self.client_address[0]).is_loopback:
                    # Unauthenticated by design, so only from the collector's own host.
                    self._send(403, b"reload is accepted from loopback only\n")
                elif reload_ is None:
                    self._send(404, b"compliance rules are not configured\n")
                else:
                    # Re-reads files named in the config only; the running pack stays on error.
                    ok, message = reload_()
                    self._send(200 if ok else 422, message.encode() + b"\n")

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    try:
                        body = metrics_()
                    except Exception:
                        log.exception("rendering /metrics failed")
                        self._send(500, b"metrics unavailable\n")
                        return
                    self._send(200, body, CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    self._send(200, b"ok\n")
                elif path == "/readyz":
                    ok = ready_()
                    self._send(200 if ok else 503, b"ready\n" if ok else b"store unavailable\n")
                else:
                    self._send(404, b"not found: try /metrics, /healthz, /readyz\n")

            def _send(
                self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8"
            ) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("http %s", format % args)

        bind = host.strip("[]") or "0.0.0.0"  # noqa: S104 (":9108" means every interface)
        self._server = ThreadingHTTPServer((bind, int(port)), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
