"""gRPC edge of the collector: auth interceptor, limits, and a thin servicer over the store."""

from __future__ import annotations

import contextvars
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

from canhgac_common.text import printable
from canhgac_proto.v1 import collector_pb2 as pb
from canhgac_proto.v1 import collector_pb2_grpc as pb_grpc
from collector import __version__
from collector.config import CollectorConfig
from collector.decode import InvalidReport, decode_report
from collector.errors import AuthError, CollectorError, ConfigError, InvalidRequest, StoreError
from collector.metrics import ServerMetrics
from collector.model import AgentRecord, Report
from collector.store import MachineFacts, Store

__all__ = ["Servicer", "build_server", "current_agent"]

log = logging.getLogger(__name__)

_SERVICE = "/canhgac_proto.v1.Collector/"
_UNAUTHENTICATED_METHODS = frozenset({_SERVICE + "Enroll"})
if TYPE_CHECKING:  # grpc-stubs makes these generic; at run time they are plain classes
    _Handler = grpc.RpcMethodHandler[Any, Any]
_current_agent: contextvars.ContextVar[AgentRecord] = contextvars.ContextVar("agent")


def current_agent() -> AgentRecord:
    """The agent whose credential authenticated the current call (set by the interceptor)."""
    return _current_agent.get()


@dataclass(frozen=True)
class _Undecodable:
    """Stands in for a request the deserializer refused, so the handler can answer why."""

    code: grpc.StatusCode
    reason: str


class _Guard(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Size check, decoding errors, authentication and timing for every call.

    grpc's own size limit is set well above ours so that oversize messages reach this
    interceptor and are counted; above 4x our limit grpc refuses them uncounted.
    """

    def __init__(self, store: Store, metrics: ServerMetrics, max_bytes: int) -> None:
        self._store = store
        self._metrics = metrics
        self._max_bytes = max_bytes
        self._guarded: dict[str, tuple[_Handler, _Handler]] = {}

    def _reject(self, context: grpc.ServicerContext, code: grpc.StatusCode, reason: str) -> None:
        self._metrics.rejections.labels(code.name.lower()).inc()
        context.abort(code, reason)

    def _deserializer(self, inner: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        def deserialize(data: bytes) -> Any:
            if len(data) > self._max_bytes:
                return _Undecodable(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"message of {len(data)} bytes exceeds the limit of {self._max_bytes}",
                )
            try:
                return inner(data)
            except Exception as e:  # DecodeError and friends: garbage on the wire
                return _Undecodable(grpc.StatusCode.INVALID_ARGUMENT, f"undecodable message: {e}")

        return deserialize

    def _admit(self, method: str, request: Any, context: grpc.ServicerContext) -> None:
        if isinstance(request, _Undecodable):
            self._reject(context, request.code, request.reason)
        if method in _UNAUTHENTICATED_METHODS:
            return
        auth = next((str(v) for k, v in context.invocation_metadata() if k == "authorization"), "")
        if not auth.startswith("Bearer "):
            self._reject(context, grpc.StatusCode.UNAUTHENTICATED, "missing agent credential")
        try:
            agent = self._store.authenticate(auth.removeprefix("Bearer "))
        except AuthError as e:
            self._reject(context, grpc.StatusCode.UNAUTHENTICATED, str(e))
        except StoreError as e:
            log.error("store unavailable during authentication: %s", e)
            context.abort(grpc.StatusCode.UNAVAILABLE, "store unavailable, retry later")
        _current_agent.set(agent)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], _Handler | None],
        details: grpc.HandlerCallDetails,
    ) -> _Handler | None:
        handler = continuation(details)
        method = details.method
        if handler is None or not method.startswith(_SERVICE):
            return handler
        # Wrapped once per method, not per call: grpc hands back the same handler each time.
        found = self._guarded.get(method)
        if found is None or found[0] is not handler:
            found = self._guarded[method] = (handler, self._guard(method, handler))
        return found[1]

    def _guard(self, method: str, handler: _Handler) -> _Handler:
        short = method.removeprefix(_SERVICE)
        timer = self._metrics.rpc_duration.labels(short)
        deserializer = self._deserializer(handler.request_deserializer or bytes)

        if handler.unary_unary is not None:
            inner_uu = handler.unary_unary

            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                start = time.perf_counter()
                try:
                    self._admit(method, request, context)
                    return inner_uu(request, context)
                finally:
                    timer.observe(time.perf_counter() - start)

            return grpc.unary_unary_rpc_method_handler(
                unary, deserializer, handler.response_serializer
            )
        if handler.stream_unary is not None:
            inner_su = handler.stream_unary

            def upstream(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
                start = time.perf_counter()
                try:
                    self._admit(method, None, context)

                    def checked() -> Iterator[Any]:
                        for request in requests:
                            if isinstance(request, _Undecodable):
                                self._reject(context, request.code, request.reason)
                            yield request

                    return inner_su(checked(), context)
                finally:
                    timer.observe(time.perf_counter() - start)

            return grpc.stream_unary_rpc_method_handler(
                upstream, deserializer, handler.response_serializer
            )
        inner_us = handler.unary_stream
        assert inner_us is not None, "the Collector service has no bidirectional calls"

        def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            start = time.perf_counter()
            try:
                self._admit(method, request, context)
                yield from inner_us(request, context)
            finally:
                timer.observe(time.perf_counter() - start)

        return grpc.unary_stream_rpc_method_handler(
            stream, deserializer, handler.response_serializer
        )


class Servicer(pb_grpc.CollectorServicer):
    def __init__(
        self,
        store: Store,
        metrics: ServerMetrics,
        cfg: CollectorConfig,
        clock: Callable[[], float] = time.time,
        on_stored: Callable[[AgentRecord, list[Report]], None] | None = None,
        *,
        fresh_checks: Callable[[AgentRecord, float], list[str]] | None = None,
    ) -> None:
        self._store = store
        self._fresh_checks = fresh_checks
        self._on_stored = on_stored
        self._metrics = metrics
        self._cfg = cfg
        self._clock = clock
        # Random, so gzip cannot shrink it and the measured rate is the link's.
        self._chunk = os.urandom(64 * 1024)

    def _reject(self, context: grpc.ServicerContext, code: grpc.StatusCode, reason: str) -> None:
        self._metrics.rejections.labels(code.name.lower()).inc()
        context.abort(code, reason)

    def Enroll(self, request: pb.EnrollRequest, context: grpc.ServicerContext) -> pb.EnrollResponse:
        m = request.machine
        facts = MachineFacts(m.machine_id, m.hostname, m.os_name, m.os_version, m.agent_version)
        try:
            e = self._store.enroll(request.token, facts, self._clock(), request.previous_credential)
        except (AuthError, InvalidRequest) as err:
            # Everything here but our own words came from the caller: escaped and bounded.
            log.warning(
                "enrollment refused for %s (%s): %s",
                printable(m.hostname),
                printable(context.peer()),
                printable(err),
            )
            code = (
                grpc.StatusCode.INVALID_ARGUMENT
                if isinstance(err, InvalidRequest)
                else grpc.StatusCode.UNAUTHENTICATED
            )
            self._reject(context, code, printable(err, 1000))
        except StoreError as err:
            log.error("enrollment failed: %s", err)
            context.abort(grpc.StatusCode.UNAVAILABLE, "store unavailable, retry later")
        self._metrics.enrollments.inc()
        p = e.agent.placement
        log.info(
            "%s agent %s (%s) in %s as %s",
            f"re-enrolled ({e.proof} proof)" if e.reenrolled else "enrolled",
            e.agent.agent_id,
            printable(e.agent.hostname),
            " / ".join(x for x in (p.district, p.commune, p.unit) if x),
            p.role,
        )
        if e.agent.clone_of is not None:
            log.warning(
                "agent %s (%s, %s) is a possible clone of agent %s: it enrolled with that "
                "agent's machine id without %s; both keep working (see `canhgac-collector "
                "agent show %s`; revoke the one that is not the machine)",
                e.agent.agent_id,
                printable(e.agent.hostname),
                printable(context.peer()),
                e.agent.clone_of,
                "a valid previous credential"
                if request.previous_credential
                else "its previous credential",
                e.agent.agent_id,
            )
        return pb.EnrollResponse(
            agent_id=e.agent.agent_id,
            credential=e.credential,
            settings=pb.AgentSettings(report_interval_seconds=int(self._cfg.report_interval)),
            placement=pb.Placement(
                province=p.province,
                district=p.district,
                commune=p.commune,
                unit=p.unit,
                role=p.role,
            ),
        )

    def Submit(self, request: pb.SubmitRequest, context: grpc.ServicerContext) -> pb.SubmitResponse:
        agent = current_agent()
        n = len(request.reports)
        limit = self._cfg.limits.max_batch_reports
        if n > limit:
            self._reject(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"batch of {n} reports exceeds the limit of {limit}",
            )
        now = self._clock()
        self._metrics.received.inc(n)
        valid, rejected = [], []
        for r in request.reports:
            try:
                valid.append(decode_report(r, now))
            except InvalidReport as e:
                rejected.append(pb.Rejected(seq=r.seq, reason=str(e)))
        if rejected:
            self._metrics.rejections.labels("invalid_report").inc(len(rejected))
            log.warning("agent %s: %d reports rejected", agent.agent_id, len(rejected))
        try:
            stored, new = self._store.ingest(agent.agent_id, valid, now)
        except StoreError as e:
            log.error("ingest for agent %s failed: %s", agent.agent_id, e)
            context.abort(grpc.StatusCode.UNAVAILABLE, "store unavailable, retry later")
        self._metrics.stored.inc(new)
        self._metrics.duplicate.inc(len(valid) - new)
        if self._on_stored is not None and new:
            try:
                self._on_stored(agent, valid)
            except Exception:  # rules must never cost an agent its ack
                log.exception("agent %s: queueing rule evaluation failed", agent.agent_id)
        fresh: list[str] = []
        if self._fresh_checks is not None:
            try:
                fresh = self._fresh_checks(agent, now)
            except Exception:  # a schedule problem must never cost an agent its ack
                log.exception("agent %s: fresh-check lookup failed", agent.agent_id)
        # Sent only now: ingest has committed. The time lets the agent measure its clock offset.
        return pb.SubmitResponse(
            stored_seqs=stored,
            rejected=rejected,
            collector_time_ms=int(self._clock() * 1000),
            fresh_checks=fresh,
        )

    def Upload(
        self, requests: Iterator[pb.ThroughputChunk], context: grpc.ServicerContext
    ) -> pb.UploadResult:
        limit = self._cfg.limits.throughput_max_bytes
        received = 0
        for chunk in requests:
            received += len(chunk.data)
            if received > limit:
                self._reject(
                    context,
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"upload test exceeds the limit of {limit} bytes",
                )
        return pb.UploadResult(bytes=received)

    def Throughput(
        self, request: pb.ThroughputRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ThroughputChunk]:
        limit = self._cfg.limits.throughput_max_bytes
        if request.bytes > limit:
            self._reject(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"throughput test of {request.bytes} bytes exceeds the limit of {limit}",
            )
        context.set_compression(grpc.Compression.NoCompression)
        size = min(request.chunk_bytes or len(self._chunk), len(self._chunk))
        left = request.bytes
        while left > 0 and context.is_active():
            n = min(size, left)
            yield pb.ThroughputChunk(data=self._chunk[:n])
            left -= n


def _server_credentials(cfg: CollectorConfig) -> grpc.ServerCredentials | None:
    if not cfg.tls.enabled:
        return None
    assert cfg.tls.cert_file is not None and cfg.tls.key_file is not None  # checked by config
    try:
        cert, key = cfg.tls.cert_file.read_bytes(), cfg.tls.key_file.read_bytes()
    except OSError as e:
        raise ConfigError(f"tls: cannot read {e.filename}: {e.strerror}") from None
    return grpc.ssl_server_credentials([(key, cert)])


def build_server(
    cfg: CollectorConfig,
    store: Store,
    metrics: ServerMetrics,
    address: str | None = None,
    *,
    on_stored: Callable[[AgentRecord, list[Report]], None] | None = None,
    fresh_checks: Callable[[AgentRecord, float], list[str]] | None = None,
    clock: Callable[[], float] = time.time,
) -> tuple[grpc.Server, int]:
    """A started-not-yet gRPC server bound to `address` (default: cfg.grpc_listen) and its port.

    Pass "127.0.0.1:0" in tests for a free port.
    """
    limits = cfg.limits
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="grpc"),
        interceptors=[_Guard(store, metrics, limits.max_message_bytes)],
        options=[
            ("grpc.max_receive_message_length", limits.max_message_bytes * 4),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
            # Agents behind NAT keep no long-lived streams; reap dead peers.
            ("grpc.keepalive_time_ms", 120_000),
        ],
        maximum_concurrent_rpcs=limits.max_concurrent_rpcs,
    )
    pb_grpc.add_CollectorServicer_to_server(  # type: ignore[no-untyped-call]
        Servicer(store, metrics, cfg, clock, on_stored, fresh_checks=fresh_checks), server
    )
    address = address or cfg.grpc_listen
    creds = _server_credentials(cfg)
    try:
        port = (
            server.add_secure_port(address, creds)
            if creds is not None
            else server.add_insecure_port(address)
        )
    except RuntimeError as e:
        raise CollectorError(f"cannot listen on {address}: {e}") from None
    if port == 0:
        raise CollectorError(f"cannot listen on {address}")
    log.info("collector %s gRPC on %s (port %d, tls %s)", __version__, address, port, bool(creds))
    return server, port
