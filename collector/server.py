"""gRPC edge of the collector: auth interceptor, limits, and a thin servicer over the store."""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from canhgac_common import refusal
from canhgac_common.text import printable
from canhgac_proto.v1 import collector_pb2 as pb
from canhgac_proto.v1 import collector_pb2_grpc as pb_grpc
from collector import __version__
from collector.agent_settings import SettingsResolver, services_for
from collector.config import THROUGHPUT_CHUNK_BYTES, CollectorConfig, LimitsConfig
from collector.decode import InvalidReport, decode_report
from collector.errors import (
    AuthError,
    ConfigError,
    InvalidRequest,
    StoreError,
    cannot_listen,
)
from collector.metrics import ServerMetrics
from collector.model import AgentRecord, Report
from collector.releases import DOWNLOAD_CHUNK_BYTES, ReleaseService
from collector.store import MachineFacts, Store

__all__ = ["Servicer", "build_server", "current_agent"]

log = logging.getLogger(__name__)

_SERVICE = "/canhgac_proto.v1.Collector/"
# The names grpc.health.v1 answers for: the whole server, and the agents' service.
HEALTH_SERVICES = ("", "canhgac_proto.v1.Collector")
_UNAUTHENTICATED_METHODS = frozenset({_SERVICE + "Enroll"})
# Link measurements and package downloads: long calls, limited per agent and kept off the
# reserved workers.
_MEASUREMENT_METHODS = frozenset(
    {_SERVICE + "Upload", _SERVICE + "Throughput", _SERVICE + "Download"}
)
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


class _Refused(Exception):
    """A call refused by a limit: its status, its details and the reason it is counted under."""

    def __init__(self, code: grpc.StatusCode, details: str, reason: str) -> None:
        super().__init__(details)
        self.code, self.details, self.reason = code, details, reason


class _Pool(futures.ThreadPoolExecutor):
    """grpc's worker pool, knowing how many calls are running or waiting for a worker.

    grpc submits each call once, and its own `maximum_concurrent_rpcs` counts the same
    submitted, unfinished tasks; the interceptor reads this count before grpc decides.
    """

    def __init__(self, workers: int) -> None:
        super().__init__(max_workers=workers, thread_name_prefix="grpc")
        self._count_lock = threading.Lock()
        self.in_flight = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        with self._count_lock:
            self.in_flight += 1
        try:
            future = super().submit(fn, *args, **kwargs)
        except BaseException:
            self._done(None)
            raise
        future.add_done_callback(self._done)
        return future

    def _done(self, _: object) -> None:
        with self._count_lock:
            self.in_flight -= 1


class _Watchdog:
    """Cancels calls that outlive their server-side deadline, wherever they are blocked
    (waiting for a message that never comes, or for a client that stopped reading)."""

    def __init__(self, on_expired: Callable[[], None]) -> None:
        self._on_expired = on_expired
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._live: dict[int, grpc.ServicerContext] = {}
        self._ids = itertools.count()
        self._running = False

    def arm(self, seconds: float, context: grpc.ServicerContext) -> int:
        token = next(self._ids)
        with self._cond:
            self._live[token] = context
            heapq.heappush(self._heap, (time.monotonic() + seconds, token))
            if len(self._heap) > 2 * len(self._live) + 1024:  # mostly disarmed: drop those
                self._heap = [e for e in self._heap if e[1] in self._live]
                heapq.heapify(self._heap)
            if not self._running:  # one thread while calls are armed, none when idle
                self._running = True
                threading.Thread(target=self._run, name="grpc-deadlines", daemon=True).start()
            elif self._heap[0][1] == token:
                # Only a deadline sooner than the one the thread waits for needs it awake: woken
                # on every call, it cost a thread switch per call (py-spy, 2026-12-04: 18 % of
                # the GIL-holding samples of a batch-1 Submit load on PostgreSQL).
                self._cond.notify()
        return token

    def disarm(self, token: int) -> bool:
        """Whether the call was still within its deadline (False: the watchdog ended it)."""
        with self._cond:
            return self._live.pop(token, None) is not None

    def _run(self) -> None:
        while True:
            expired = []
            with self._cond:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)  # disarmed
                if not self._heap:
                    self._running = False
                    return
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    context = self._live.pop(heapq.heappop(self._heap)[1], None)
                    if context is not None:
                        expired.append(context)
                if not expired:
                    self._cond.wait(self._heap[0][0] - now)
            for context in expired:
                # The client sees CANCELLED; the handler blocked on the call is released.
                context.cancel()  # type: ignore[no-untyped-call]
                self._on_expired()


class _Admission:
    """Per-agent calls and streams, and the workers streams may take (all but the reserve)."""

    def __init__(self, limits: LimitsConfig) -> None:
        self._limits = limits
        self._lock = threading.Lock()
        self._calls: dict[str, int] = {}
        self._streams: dict[str, int] = {}
        self._all_streams = 0

    def enter(self, agent_id: str, stream: bool) -> None:
        limits = self._limits
        with self._lock:
            calls = self._calls.get(agent_id, 0)
            if calls >= limits.agent_calls:
                raise _Refused(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"agent has {calls} calls in progress (limits.agent_calls)",
                    "agent_calls",
                )
            if stream:
                streams = self._streams.get(agent_id, 0)
                if streams >= limits.agent_streams:
                    raise _Refused(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"agent has {streams} measurement streams open (limits.agent_streams)",
                        "agent_streams",
                    )
                if self._all_streams >= limits.workers - limits.reserved_workers:
                    raise _Refused(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        "every worker not reserved for Submit is measuring, retry later",
                        "stream_reserve",
                    )
                self._streams[agent_id] = streams + 1
                self._all_streams += 1
            self._calls[agent_id] = calls + 1

    def leave(self, agent_id: str, stream: bool) -> None:
        with self._lock:
            _decrement(self._calls, agent_id)
            if stream:
                _decrement(self._streams, agent_id)
                self._all_streams -= 1


def _decrement(counts: dict[str, int], key: str) -> None:
    left = counts[key] - 1
    if left:
        counts[key] = left
    else:
        del counts[key]


class _Guard(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Limits, size check, decoding errors, authentication and timing for every call.

    Every method is served as a client-streaming one (the same on the wire), so this code owns
    the worker from the call's start: it authenticates from the headers and admits the call
    before any message arrives, and a request that never arrives is bounded by
    `limits.request_timeout`. grpc's own size limit and concurrency cap are set above ours
    so that refusals reach this interceptor and are counted; beyond them grpc refuses by
    itself (its concurrency refusals are still counted here, as "grpc_busy").
    """

    def __init__(
        self, store: Store, metrics: ServerMetrics, limits: LimitsConfig, pool: _Pool
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._limits = limits
        self._max_bytes = limits.max_message_bytes
        self._pool = pool
        self._admission = _Admission(limits)
        self._watchdog = _Watchdog(
            lambda: self._metrics.rejections.labels("deadline_exceeded").inc()
        )
        self._guarded: dict[str, tuple[_Handler, _Handler]] = {}
        self._busy = self._refusing(
            _Refused(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "collector busy: too many calls in flight, retry later",
                "busy",
            )
        )

    def _reject(self, context: grpc.ServicerContext, refused: _Refused) -> None:
        self._metrics.rejections.labels(refused.reason).inc()
        context.abort(refused.code, refused.details)

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

    def _authenticate(self, method: str, context: grpc.ServicerContext) -> AgentRecord | None:
        if method in _UNAUTHENTICATED_METHODS:
            return None
        auth = next((str(v) for k, v in context.invocation_metadata() if k == "authorization"), "")
        if not auth.startswith("Bearer "):
            raise _Refused(
                grpc.StatusCode.UNAUTHENTICATED,
                refusal.details(refusal.MISSING, "missing agent credential"),
                "unauthenticated",
            )
        try:
            agent = self._store.authenticate(auth.removeprefix("Bearer "))
        except AuthError as e:
            why = refusal.details(e.reason, str(e)) if e.reason else str(e)
            raise _Refused(grpc.StatusCode.UNAUTHENTICATED, why, "unauthenticated") from None
        except StoreError as e:
            log.error("store unavailable during authentication: %s", e)
            raise _Refused(
                grpc.StatusCode.UNAVAILABLE, "store unavailable, retry later", "unavailable"
            ) from None
        _current_agent.set(agent)
        return agent

    @contextlib.contextmanager
    def _admitted(self, method: str, context: grpc.ServicerContext, stream: bool) -> Iterator[None]:
        """The call authenticated and within its agent's limits for as long as it runs."""
        try:
            agent = self._authenticate(method, context)
            if agent is not None:
                self._admission.enter(agent.agent_id, stream)
        except _Refused as refused:
            self._reject(context, refused)
            raise  # not reached: abort raises
        token = self._watchdog.arm(self._limits.stream_max_duration + 1, context) if stream else -1
        try:
            yield
        finally:
            if stream:
                self._watchdog.disarm(token)
            if agent is not None:
                self._admission.leave(agent.agent_id, stream)

    def _request(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
        """The one request message of a unary-request method, within `request_timeout`."""
        token = self._watchdog.arm(self._limits.request_timeout, context)
        in_time = False
        try:
            request = next(requests, None)
        finally:
            in_time = self._watchdog.disarm(token)
        if request is None:
            if not in_time:  # the watchdog cancelled the call, and counted it
                context.abort(grpc.StatusCode.CANCELLED, "request did not arrive in time")
            code = grpc.StatusCode.INVALID_ARGUMENT
            self._reject(context, _Refused(code, "no request message", "invalid_argument"))
        if isinstance(request, _Undecodable):
            self._reject(context, _Refused(request.code, request.reason, request.code.name.lower()))
        return request

    def _refusing(self, refused: _Refused) -> _Handler:
        def refuse(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            context.abort(refused.code, refused.details)

        return grpc.stream_unary_rpc_method_handler(refuse)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], _Handler | None],
        details: grpc.HandlerCallDetails,
    ) -> _Handler | None:
        # Called by grpc's polling thread for every call, before grpc applies its own cap.
        handler = continuation(details)
        method = details.method
        if handler is None or not method.startswith(_SERVICE):
            return handler
        in_flight = self._pool.in_flight
        if in_flight >= 2 * self._limits.max_concurrent_rpcs:
            self._metrics.rejections.labels("grpc_busy").inc()  # grpc refuses it by itself
        elif in_flight >= self._limits.max_concurrent_rpcs:
            self._metrics.rejections.labels("busy").inc()
            return self._busy
        # Wrapped once per method, not per call: grpc hands back the same handler each time.
        found = self._guarded.get(method)
        if found is None or found[0] is not handler:
            found = self._guarded[method] = (handler, self._guard(method, handler))
        return found[1]

    def _guard(self, method: str, handler: _Handler) -> _Handler:
        short = method.removeprefix(_SERVICE)
        timer = self._metrics.rpc_duration.labels(short)
        deserializer = self._deserializer(handler.request_deserializer or bytes)
        stream = method in _MEASUREMENT_METHODS

        if handler.unary_unary is not None:
            inner_uu = handler.unary_unary

            def unary(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
                start = time.perf_counter()
                try:
                    with self._admitted(method, context, stream):
                        return inner_uu(self._request(requests, context), context)
                finally:
                    timer.observe(time.perf_counter() - start)

            return grpc.stream_unary_rpc_method_handler(
                unary, deserializer, handler.response_serializer
            )
        if handler.stream_unary is not None:
            inner_su = handler.stream_unary

            def upstream(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
                start = time.perf_counter()
                try:
                    with self._admitted(method, context, stream):

                        def checked() -> Iterator[Any]:
                            for request in requests:
                                if isinstance(request, _Undecodable):
                                    reason = request.code.name.lower()
                                    self._reject(
                                        context, _Refused(request.code, request.reason, reason)
                                    )
                                yield request

                        return inner_su(checked(), context)
                finally:
                    timer.observe(time.perf_counter() - start)

            return grpc.stream_unary_rpc_method_handler(
                upstream, deserializer, handler.response_serializer
            )
        inner_us = handler.unary_stream
        assert inner_us is not None, "the Collector service has no bidirectional calls"

        def downstream(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
            start = time.perf_counter()
            try:
                with self._admitted(method, context, stream):
                    yield from inner_us(self._request(requests, context), context)
            finally:
                timer.observe(time.perf_counter() - start)

        return grpc.stream_stream_rpc_method_handler(
            downstream, deserializer, handler.response_serializer
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
        releases: ReleaseService | None = None,
    ) -> None:
        self._store = store
        self._releases = releases
        self._fresh_checks = fresh_checks
        self._settings = SettingsResolver(
            store.settings.in_force, store.settings.latest_change, services_for(cfg.services)
        )
        self._on_stored = on_stored
        self._metrics = metrics
        self._cfg = cfg
        self._clock = clock
        # Random, so gzip cannot shrink it and the measured rate is the link's.
        self._chunk = os.urandom(THROUGHPUT_CHUNK_BYTES)

    def _reject(
        self,
        context: grpc.ServicerContext,
        code: grpc.StatusCode,
        details: str,
        reason: str | None = None,
    ) -> None:
        self._metrics.rejections.labels(reason or code.name.lower()).inc()
        context.abort(code, details)

    def _past(self, deadline: float, context: grpc.ServicerContext) -> None:
        if time.monotonic() > deadline:
            details = (
                f"measurement longer than {self._cfg.limits.stream_max_duration:g} s "
                "(limits.stream_max_duration)"
            )
            if not context.is_active():  # the watchdog ended it first, and counted it
                context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, details)
            self._reject(context, grpc.StatusCode.DEADLINE_EXCEEDED, details)

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
            self._metrics.store_write_errors.labels("enrollment").inc()
            self._reject(context, grpc.StatusCode.UNAVAILABLE, "store unavailable, retry later")
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
        seen: set[tuple[int, int]] = set()
        twice = 0
        for r in request.reports:
            if (r.spool_id, r.seq) in seen:
                twice += 1  # the same report twice in one batch: stored and counted once
                continue
            seen.add((r.spool_id, r.seq))
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
            self._metrics.store_write_errors.labels("reports").inc()
            self._reject(context, grpc.StatusCode.UNAVAILABLE, "store unavailable, retry later")
        self._metrics.stored.inc(new)
        self._metrics.duplicate.inc(len(valid) - new + twice)
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
        try:
            settings_hash = self._settings.for_agent(agent).hash
        except Exception:  # a settings problem must never cost an agent its ack
            log.exception("agent %s: central settings lookup failed", agent.agent_id)
            # "Keep what you run": an empty hash would tell the agent to drop its settings.
            settings_hash = valid[-1].settings.get("hash", "") if valid else ""
        release = self._release_for(agent, valid)
        # Sent only now: ingest has committed. The time lets the agent measure its clock offset.
        if twice:  # each copy is acked, as the agent sent it
            done = set(stored)
            stored = [r.seq for r in request.reports if r.seq in done]
        return pb.SubmitResponse(
            stored_seqs=stored,
            rejected=rejected,
            collector_time_ms=int(self._clock() * 1000),
            fresh_checks=fresh,
            settings_hash=settings_hash,
            release_version=release,
        )

    def GetSettings(
        self, request: pb.GetSettingsRequest, context: grpc.ServicerContext
    ) -> pb.GetSettingsResponse:
        agent = current_agent()
        try:
            found = self._settings.for_agent(agent)
        except StoreError as e:
            log.error("central settings for agent %s unreadable: %s", agent.agent_id, e)
            self._reject(context, grpc.StatusCode.UNAVAILABLE, "store unavailable, retry later")
        return pb.GetSettingsResponse(
            hash=found.hash, document=json.dumps(found.document, ensure_ascii=False)
        )

    def _release_for(self, agent: AgentRecord, reports: list[Report]) -> str:
        """The version this agent should run ("" when none), for its ack."""
        if self._releases is None:
            return ""
        try:
            return self._releases.offer(agent, reports)
        except Exception:  # a release problem must never cost an agent its ack
            log.exception("agent %s: release lookup failed", agent.agent_id)
            return ""

    def GetRelease(
        self, request: pb.GetReleaseRequest, context: grpc.ServicerContext
    ) -> pb.GetReleaseResponse:
        release = None if self._releases is None else self._releases.release(request.version)
        if release is None:
            self._reject(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"no release {printable(request.version)} is rolled out",
                "release_not_found",
            )
        assert release is not None
        return pb.GetReleaseResponse(manifest=release.manifest, signature=release.signature)

    def Download(
        self, request: pb.DownloadRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.DownloadChunk]:
        found = None if self._releases is None else self._releases.open(request.sha256)
        if found is None:
            self._reject(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"no package of sha256 {printable(request.sha256)} in a rolled-out release",
                "release_not_found",
            )
        assert found is not None
        deadline = time.monotonic() + self._cfg.limits.stream_max_duration
        with found as (f, size):
            if request.offset > size:
                self._reject(
                    context,
                    grpc.StatusCode.OUT_OF_RANGE,
                    f"offset {request.offset} is past the package's {size} bytes",
                )
            cap = self._cfg.releases.download_max_bytes
            left = min(request.length or cap, cap, size - request.offset)
            offset = request.offset
            f.seek(offset)
            while left > 0 and context.is_active():
                self._past(deadline, context)
                data = f.read(min(left, DOWNLOAD_CHUNK_BYTES))
                if not data:  # the file shrank under us: an operator's mistake, not the agent's
                    self._reject(context, grpc.StatusCode.DATA_LOSS, "package file is short")
                yield pb.DownloadChunk(data=data, offset=offset, size=size)
                offset += len(data)
                left -= len(data)

    def Upload(
        self, requests: Iterator[pb.ThroughputChunk], context: grpc.ServicerContext
    ) -> pb.UploadResult:
        limit = self._cfg.limits.throughput_max_bytes
        deadline = time.monotonic() + self._cfg.limits.stream_max_duration
        received = 0
        for chunk in requests:
            self._past(deadline, context)
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
        limits = self._cfg.limits
        deadline = time.monotonic() + limits.stream_max_duration
        limit = limits.throughput_max_bytes
        if request.bytes > limit:
            self._reject(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"throughput test of {request.bytes} bytes exceeds the limit of {limit}",
            )
        context.set_compression(grpc.Compression.NoCompression)
        # Tiny chunks would hold a worker for minutes: below the floor they are raised to it.
        size = min(
            max(request.chunk_bytes or len(self._chunk), limits.throughput_min_chunk_bytes),
            len(self._chunk),
        )
        left = request.bytes
        while left > 0 and context.is_active():
            self._past(deadline, context)
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
    if cfg.tls.client_ca_file is None:
        return grpc.ssl_server_credentials([(key, cert)])
    try:
        client_ca = cfg.tls.client_ca_file.read_bytes()
    except OSError as e:
        raise ConfigError(f"tls.client_ca_file: cannot read {e.filename}: {e.strerror}") from None
    # Mutual TLS: the handshake fails for agents without a certificate signed by this CA.
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=True
    )


class StoreHealth(health.HealthServicer):
    """The standard grpc.health.v1 service for load balancers and probes: SERVING while the
    store answers (as /readyz), NOT_SERVING otherwise. Check only: each Watch would hold a
    handler thread, which Submit needs, for as long as it watches."""

    def __init__(self, ready: Callable[[], bool]) -> None:
        super().__init__()
        self._ready = ready

    def Check(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.service in HEALTH_SERVICES:
            serving = health_pb2.HealthCheckResponse.SERVING
            status = serving if self._ready() else health_pb2.HealthCheckResponse.NOT_SERVING
            self.set(request.service, status)
        return super().Check(request, context)

    def Watch(self, request: Any, context: grpc.ServicerContext, send: Any = None) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "grpc.health.v1 Watch is not offered: Check")


def build_server(
    cfg: CollectorConfig,
    store: Store,
    metrics: ServerMetrics,
    address: str | None = None,
    *,
    on_stored: Callable[[AgentRecord, list[Report]], None] | None = None,
    fresh_checks: Callable[[AgentRecord, float], list[str]] | None = None,
    clock: Callable[[], float] = time.time,
    reuse_port: bool = False,
    releases: ReleaseService | None = None,
) -> tuple[grpc.Server, int]:
    """A started-not-yet gRPC server bound to `address` (default: cfg.grpc_listen) and its port.

    Pass "127.0.0.1:0" in tests for a free port. `reuse_port`: share the port with the other
    processes of one `serve --processes N` (SO_REUSEPORT; off, a port in use is an error).
    """
    limits = cfg.limits
    pool = _Pool(limits.workers)
    server = grpc.server(
        pool,
        interceptors=[_Guard(store, metrics, limits, pool)],
        options=[
            ("grpc.max_receive_message_length", limits.max_message_bytes * 4),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
            # Agents behind NAT keep no long-lived streams; reap dead peers.
            ("grpc.keepalive_time_ms", 120_000),
        ],
        # A backstop: the interceptor refuses (and counts) from max_concurrent_rpcs on.
        maximum_concurrent_rpcs=2 * limits.max_concurrent_rpcs,
    )
    pb_grpc.add_CollectorServicer_to_server(  # type: ignore[no-untyped-call]
        Servicer(
            store, metrics, cfg, clock, on_stored, fresh_checks=fresh_checks, releases=releases
        ),
        server,
    )
    health_pb2_grpc.add_HealthServicer_to_server(StoreHealth(store.ready), server)
    address = address or cfg.grpc_listen
    creds = _server_credentials(cfg)
    try:
        port = (
            server.add_secure_port(address, creds)
            if creds is not None
            else server.add_insecure_port(address)
        )
    except RuntimeError:
        raise cannot_listen("grpc_listen", address) from None
    if port == 0:
        raise cannot_listen("grpc_listen", address)
    tls = "off" if creds is None else "mutual" if cfg.tls.client_ca_file else "on"
    log.info("collector %s gRPC on %s (port %d, tls %s)", __version__, address, port, tls)
    return server, port
