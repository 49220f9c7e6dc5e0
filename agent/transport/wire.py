"""gRPC calls over one HTTP/2 connection (pure-Python h2): what the agent needs of grpcio."""

from __future__ import annotations

import enum
import errno
import select
import socket
import struct
import threading
import time
import zlib
from collections.abc import Generator, Iterable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import unquote

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

from canhgac_common.i18n import gettext_ as _

if TYPE_CHECKING:
    import ssl

__all__ = ["Channel", "ClientCertError", "RpcError", "StatusCode"]

# Received messages larger than this are refused, as grpcio does by default.
MAX_RECEIVE_BYTES = 4 * 1024 * 1024
# Flow-control window we grant the collector: a Throughput stream over a slow, far link must not
# be capped at 64 KiB per round trip (grpcio sizes its window from the measured bandwidth-delay).
WINDOW_BYTES = 4 * 1024 * 1024
_PREFIX = struct.Struct(">BI")
_GZIP = 16 + zlib.MAX_WBITS


class StatusCode(enum.IntEnum):
    """gRPC status codes (the numbers on the wire)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


# What an HTTP status without a gRPC status means (gRPC's http-grpc-status-mapping.md).
_HTTP_STATUS = {
    400: StatusCode.INTERNAL,
    401: StatusCode.UNAUTHENTICATED,
    403: StatusCode.PERMISSION_DENIED,
    404: StatusCode.UNIMPLEMENTED,
    429: StatusCode.UNAVAILABLE,
    502: StatusCode.UNAVAILABLE,
    503: StatusCode.UNAVAILABLE,
    504: StatusCode.UNAVAILABLE,
}
# What an RST_STREAM error code means (gRPC's PROTOCOL-HTTP2.md).
_RESET = {
    0x7: StatusCode.UNAVAILABLE,  # REFUSED_STREAM: not processed, safe to retry
    0x8: StatusCode.CANCELLED,
    0xB: StatusCode.RESOURCE_EXHAUSTED,  # ENHANCE_YOUR_CALM
    0xC: StatusCode.PERMISSION_DENIED,  # INADEQUATE_SECURITY
}


class ClientCertError(OSError):
    """The agent's own certificate or key (mutual TLS) cannot be loaded."""


class RpcError(Exception):
    def __init__(self, code: StatusCode, details: str, *, local: bool = False) -> None:
        super().__init__(details if local else f"{code.name}: {details}")
        self.code = code
        self.details = details
        # Raised here (the network, the deadline), not a status the collector sent.
        self.local = local


class _Connection:
    """One HTTP/2 connection; every read and write is bounded by the caller's deadline."""

    def __init__(self, sock: socket.socket, authority: str, scheme: str) -> None:
        self.sock = sock
        self.authority = authority
        self.scheme = scheme
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: WINDOW_BYTES,
            },
        )
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(WINDOW_BYTES - 65535)
        # Set by GOAWAY: finish the streams it let through, open none.
        self.last_stream_id: int | None = None
        self.backlog: list[h2.events.Event] = []
        # The collector's SETTINGS arrived: it speaks HTTP/2 (what `Channel.ready` waits for).
        self.settled = False

    def flush(self, deadline: float) -> None:
        data = self.h2.data_to_send()
        if data:
            self.sock.settimeout(_remaining(deadline))
            self.sock.sendall(data)

    def read(self, deadline: float) -> list[h2.events.Event]:
        self.sock.settimeout(_remaining(deadline))
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the collector closed the connection")
        events = self.h2.receive_data(data)
        for event in events:
            if isinstance(event, h2.events.ConnectionTerminated):
                self.last_stream_id = event.last_stream_id or 0
            self.settled = self.settled or isinstance(event, h2.events.RemoteSettingsChanged)
        self.flush(deadline)  # settings and ping acks
        return events

    def alive(self, would_block: tuple[type[OSError], ...]) -> bool:
        """Whether an idle connection can carry another call: answer what arrived while idle
        (pings), and notice a close or GOAWAY without waiting for a call to fail on it."""
        try:
            while select.select([self.sock], [], [], 0)[0]:
                self.sock.settimeout(0)
                try:
                    data = self.sock.recv(65536)
                except would_block:
                    break
                if not data:
                    return False
                for event in self.h2.receive_data(data):
                    if isinstance(event, h2.events.ConnectionTerminated):
                        return False
                    self.settled = self.settled or isinstance(
                        event, h2.events.RemoteSettingsChanged
                    )
            self.flush(time.monotonic() + 1)
        except (OSError, h2.exceptions.ProtocolError):
            return False
        return self.last_stream_id is None

    def send(self, stream_id: int, data: bytes, deadline: float) -> None:
        """DATA frames within the collector's flow-control window, waiting for it to open."""
        view = memoryview(data)
        while view:
            size = min(
                self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size
            )
            if size <= 0:
                self.flush(deadline)
                self.backlog.extend(self.read(deadline))
                continue
            self.h2.send_data(stream_id, view[:size].tobytes())
            view = view[size:]
            self.flush(deadline)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline exceeded")
    return left


def _decode_messages(buffer: bytearray, encoding: str) -> list[bytes]:
    out = []
    while len(buffer) >= _PREFIX.size:
        compressed, size = _PREFIX.unpack_from(buffer)
        if size > MAX_RECEIVE_BYTES:
            raise RpcError(StatusCode.RESOURCE_EXHAUSTED, f"received message of {size} bytes")
        if len(buffer) < _PREFIX.size + size:
            break
        message = bytes(buffer[_PREFIX.size : _PREFIX.size + size])
        del buffer[: _PREFIX.size + size]
        if compressed:
            if encoding != "gzip":
                raise RpcError(
                    StatusCode.INTERNAL, f"compressed message with encoding {encoding!r}"
                )
            message = _gunzip(message)
        out.append(message)
    return out


def _gunzip(data: bytes) -> bytes:
    """A gzip-compressed message; corrupt or truncated ones are the call's error (zlib's own
    error escaped the channel before), and one inflating beyond MAX_RECEIVE_BYTES is refused
    as grpcio refuses it rather than filling the agent's memory."""
    inflater = zlib.decompressobj(_GZIP)
    try:
        out = inflater.decompress(data, MAX_RECEIVE_BYTES)
    except zlib.error as e:
        raise RpcError(StatusCode.INTERNAL, f"corrupt gzip message: {e}") from None
    if inflater.unconsumed_tail:
        raise RpcError(
            StatusCode.RESOURCE_EXHAUSTED, f"gzip message inflates beyond {MAX_RECEIVE_BYTES} bytes"
        )
    if not inflater.eof:
        raise RpcError(StatusCode.INTERNAL, "truncated gzip message")
    return out


def _headers(fields: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    return {k.decode("ascii", "replace"): v.decode("utf-8", "replace") for k, v in fields}


def _status(headers: dict[str, str]) -> RpcError | None:
    """The call's outcome from its trailers (None: OK)."""
    try:
        code = StatusCode(int(headers["grpc-status"]))
    except (KeyError, ValueError):
        return RpcError(StatusCode.UNKNOWN, "response without a valid grpc-status")
    if code is StatusCode.OK:
        return None
    return RpcError(code, unquote(headers.get("grpc-message", "")))


class Channel:
    """Calls to one collector address, one at a time, over a connection opened when first needed
    and kept while it stays usable. Nothing runs between calls (no threads, no timers), so an
    idle agent costs no CPU; a call that finds the connection gone opens a new one."""

    def __init__(
        self,
        address: str,
        *,
        tls: bool = False,
        root_certificates: bytes | None = None,
        server_name: str | None = None,
        client_cert: tuple[str, str] | None = None,
        gzip: bool = True,
        user_agent: str = "canhgac-agent",
    ) -> None:
        host, _sep, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"collector address {address!r} is not HOST:PORT")
        self._host, self._port = host.strip("[]"), int(port)
        self._authority = server_name or address
        self._server_name = server_name or self._host
        self._gzip = gzip
        self._user_agent = user_agent
        self._lock = threading.Lock()
        self._connection: _Connection | None = None
        self._would_block: tuple[type[OSError], ...] = (BlockingIOError,)
        self._tls: ssl.SSLContext | None = None
        if tls:
            import ssl  # noqa: PLC0415 (only TLS deployments pay for OpenSSL)

            # The system's trust store (Windows' on Windows) unless a CA is pinned.
            cadata = root_certificates.decode("ascii") if root_certificates else None
            self._tls = ssl.create_default_context(cadata=cadata)
            self._tls.set_alpn_protocols(["h2"])
            if client_cert is not None:  # (certificate chain file, key file), PEM
                try:
                    self._tls.load_cert_chain(*client_cert)
                except (OSError, ssl.SSLError) as e:
                    raise ClientCertError(str(e)) from None
            self._would_block = (BlockingIOError, ssl.SSLWantReadError)

    def close(self) -> None:
        with self._lock:
            self._drop()

    def ready(self, timeout: float) -> bool:
        """Whether a connection to the collector can be made (TCP, TLS, HTTP/2 settings)."""
        return self.why_not_ready(timeout) is None

    def why_not_ready(self, timeout: float) -> str | None:
        """None when a connection to the collector can be made, else what happened."""
        deadline = time.monotonic() + timeout
        with self._lock:
            try:
                conn = self._connected(deadline)
                while not conn.settled:
                    conn.backlog.extend(conn.read(deadline))
            except TimeoutError:
                self._drop()
                return self._no_answer(timeout)
            except (OSError, h2.exceptions.ProtocolError) as e:
                reason = self._why(e)
                self._drop()
                return reason
            return None

    def unary(
        self,
        method: str,
        request: bytes,
        *,
        timeout: float,
        metadata: Iterable[tuple[str, str]] = (),
    ) -> bytes:
        responses = list(self.stream(method, [request], timeout=timeout, metadata=metadata))
        if len(responses) != 1:
            raise RpcError(StatusCode.INTERNAL, f"{len(responses)} responses to a unary call")
        return responses[0]

    def stream(
        self,
        method: str,
        requests: Iterable[bytes],
        *,
        timeout: float,
        metadata: Iterable[tuple[str, str]] = (),
        compress: bool | None = None,
    ) -> Iterator[bytes]:
        """Send `requests` (serialized messages) to `method` ("/package.Service/Method") and
        yield the serialized responses; raises RpcError with the call's status."""
        deadline = time.monotonic() + timeout
        gzip = self._gzip if compress is None else compress
        with self._lock:
            finished = False
            try:
                conn = self._connected(deadline)
                stream_id = conn.h2.get_next_available_stream_id()
                headers = [
                    (":method", "POST"),
                    (":scheme", conn.scheme),
                    (":path", method),
                    (":authority", conn.authority),
                    ("content-type", "application/grpc"),
                    ("te", "trailers"),
                    ("user-agent", self._user_agent),
                    ("grpc-accept-encoding", "identity,gzip"),
                    ("grpc-timeout", f"{max(1, int(_remaining(deadline) * 1000))}m"),
                ]
                if gzip:
                    headers.append(("grpc-encoding", "gzip"))
                conn.h2.send_headers(stream_id, [*headers, *metadata])
                conn.flush(deadline)
                try:
                    for message in requests:
                        body = zlib.compress(message, wbits=_GZIP) if gzip else message
                        conn.send(stream_id, _PREFIX.pack(int(gzip), len(body)) + body, deadline)
                    conn.h2.end_stream(stream_id)
                    conn.flush(deadline)
                except h2.exceptions.StreamClosedError:
                    pass  # the collector answered early (an error): read what it said
                error = yield from self._responses(conn, stream_id, deadline)
                finished = True
            except TimeoutError:
                no_answer = self._no_answer(timeout)
                raise RpcError(StatusCode.DEADLINE_EXCEEDED, no_answer, local=True) from None
            except (OSError, h2.exceptions.ProtocolError) as e:
                raise RpcError(StatusCode.UNAVAILABLE, self._why(e), local=True) from None
            finally:
                # A call cut short (deadline, error, caller stopped reading) leaves its stream
                # in an unknown state: start the next call on a fresh connection.
                if not finished or (
                    self._connection is not None and self._connection.last_stream_id is not None
                ):
                    self._drop()
        if error is not None:
            raise error

    def _no_answer(self, timeout: float) -> str:
        return _("no answer from {where} in {seconds} s").format(
            where=f"{self._host}:{self._port}", seconds=f"{timeout:g}"
        )

    def _why(self, error: Exception) -> str:
        """What happened, for a person: "connection refused by 127.0.0.1:4317", not the
        exception's class name."""
        where = f"{self._host}:{self._port}"
        code = getattr(error, "errno", None)
        raw = f"{type(error).__name__}: {error}"
        if isinstance(error, ConnectionRefusedError):
            why = _("connection refused by {where} (is the collector running, on this port?)")
            why = why.format(where=where)
        elif isinstance(error, ConnectionResetError):
            why = _("connection reset by {where}").format(where=where)
        elif isinstance(error, socket.gaierror):
            why = _("cannot find the address of {host}: {why}").format(
                host=self._host, why=error.strerror
            )
        elif code in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            why = _("no route to {where}: {why}").format(
                where=where, why=getattr(error, "strerror", None)
            )
        elif type(error) in (OSError, ConnectionError):  # no subclass says more
            why = f"{where}: {getattr(error, 'strerror', None) or error}"
        else:
            why = f"{where}: {raw}"
        conn = self._connection
        # The collector hung up (an alert, EOF, a reset, or a clean close before its HTTP/2
        # settings: which one a TLS 1.3 client sees depends on timing), not our own
        # verification failing nor an ALPN mismatch.
        peer_closed = ("EOF" in raw or "ALERT" in raw or isinstance(error, ConnectionError)) and (
            "ALPN" not in raw
        )
        if self._tls is not None and (conn is None or not conn.settled) and peer_closed:
            # A collector requiring client certificates (mutual TLS) just closes the connection.
            why += (
                " (the collector ended TLS before HTTP/2 began: it may require a client"
                " certificate signed by its client CA, collector.tls.cert_file and key_file)"
            )
        return why

    def _responses(
        self, conn: _Connection, stream_id: int, deadline: float
    ) -> Generator[bytes, None, RpcError | None]:
        """The stream's messages as they arrive; returns its status once it ended."""
        buffer = bytearray()
        encoding = "identity"
        trailers: dict[str, str] | None = None
        while True:
            events, conn.backlog = conn.backlog, []
            if not events:
                events = conn.read(deadline)
            messages: list[bytes] = []
            for event in events:
                if getattr(event, "stream_id", stream_id) != stream_id:
                    continue
                if isinstance(event, h2.events.ResponseReceived):
                    headers = _headers(event.headers or [])
                    status = int(headers.get(":status", "0"))
                    if "grpc-status" in headers:
                        trailers = headers  # trailers-only response
                    elif status != 200:
                        code = _HTTP_STATUS.get(status, StatusCode.UNKNOWN)
                        raise RpcError(code, f"HTTP status {status}")
                    encoding = headers.get("grpc-encoding", "identity")
                elif isinstance(event, h2.events.DataReceived):
                    buffer += event.data or b""
                    conn.h2.acknowledge_received_data(event.flow_controlled_length or 0, stream_id)
                    messages += _decode_messages(buffer, encoding)
                elif isinstance(event, h2.events.TrailersReceived):
                    trailers = _headers(event.headers or [])
                elif isinstance(event, h2.events.StreamReset):
                    code = _RESET.get(event.error_code or 0, StatusCode.INTERNAL)
                    raise RpcError(code, f"stream reset by the collector ({event.error_code})")
                elif isinstance(event, h2.events.StreamEnded):
                    conn.flush(deadline)
                    yield from messages
                    return _status(trailers or {})
                elif isinstance(event, h2.events.ConnectionTerminated) and (
                    (event.last_stream_id or 0) < stream_id
                ):
                    raise RpcError(StatusCode.UNAVAILABLE, "the collector is going away")
            conn.flush(deadline)
            yield from messages

    def _connected(self, deadline: float) -> _Connection:
        conn = self._connection
        if conn is not None and conn.alive(self._would_block):
            return conn
        self._drop()
        sock = socket.create_connection((self._host, self._port), timeout=_remaining(deadline))
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self._server_name)
                if sock.selected_alpn_protocol() != "h2":
                    raise ConnectionError("the collector did not negotiate HTTP/2 (ALPN h2)")
            conn = _Connection(sock, self._authority, "https" if self._tls else "http")
            conn.flush(deadline)
        except BaseException:
            sock.close()
            raise
        self._connection = conn
        return conn

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.sock.close()
            self._connection = None
