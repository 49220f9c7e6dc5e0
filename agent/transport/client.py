"""The agent's gRPC edge: channel, credentials, deadlines, gzip, and which errors are transient."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from google.protobuf.message import DecodeError, Message

from agent import __version__
from agent.config import TlsConfig
from agent.errors import AgentError
from agent.model import ClockOffset
from agent.transport.wire import Channel, ClientCertError, RpcError, StatusCode
from canhgac_common import refusal
from canhgac_proto.v1 import collector_pb2 as pb

__all__ = [
    "CollectorClient",
    "DeliveryError",
    "EnrollResult",
    "MachineFacts",
    "SubmitResult",
    "clock_offset",
]

# Worth retrying later with backoff; anything else needs a person (revoked credential, bug).
TRANSIENT = frozenset(
    {
        StatusCode.UNAVAILABLE,
        StatusCode.DEADLINE_EXCEEDED,
        StatusCode.RESOURCE_EXHAUSTED,
        StatusCode.ABORTED,
        StatusCode.INTERNAL,
    }
)


class DeliveryError(AgentError):
    def __init__(self, code: StatusCode, details: str, *, local: bool = False) -> None:
        # A network failure says what happened; a refusal says what the collector answered.
        super().__init__(details if local else f"collector said {code.name}: {details}")
        self.code = code
        self.details = details
        self.transient = code in TRANSIENT
        # The collector is overloaded or the batch too big: send smaller batches.
        self.overloaded = code is StatusCode.RESOURCE_EXHAUSTED
        # Why the collector refused the credential (canhgac_common.refusal), when it did.
        self.refusal = (
            refusal.reason(details) if code is StatusCode.UNAUTHENTICATED and not local else None
        )
        # Revoked or retired: no retry can succeed, only a new enrollment.
        self.final = self.refusal in refusal.FINAL


@dataclass(frozen=True)
class MachineFacts:
    machine_id: str
    hostname: str
    os_name: str
    os_version: str
    agent_version: str


@dataclass(frozen=True)
class EnrollResult:
    agent_id: str
    secret: str
    report_interval_seconds: int
    district: str
    commune: str
    unit: str
    role: str


@dataclass(frozen=True)
class SubmitResult:
    stored: list[int]
    rejected: list[tuple[int, str]]
    # Probe names the collector asked to run at once (e.g. before a meeting).
    fresh_checks: tuple[str, ...] = ()
    # The central settings this agent should run ("" = none: its file only).
    settings_hash: str = ""
    # The release version the collector wants this agent to run ("" = none offered).
    release_version: str = ""


def clock_offset(sent_at: float, received_at: float, collector_time_ms: int) -> ClockOffset:
    """Collector minus agent clock, assuming the collector stamped the ack mid-call (NTP-style).

    The error is at most half the call's duration, reported as the uncertainty.
    """
    midpoint = (sent_at + received_at) / 2
    return ClockOffset(
        known=True,
        offset_seconds=collector_time_ms / 1000.0 - midpoint,
        uncertainty_seconds=max(0.0, received_at - sent_at) / 2,
    )


def _channel(address: str, tls: TlsConfig, gzip: bool) -> Channel:
    root: bytes | None = None
    if tls.enabled and tls.ca_file is not None:
        try:
            root = Path(tls.ca_file).read_bytes()
        except OSError as e:
            raise AgentError(f"collector.tls.ca_file: cannot read {tls.ca_file}: {e}") from None
    client_cert: tuple[str, str] | None = None
    if (tls.cert_file is None) != (tls.key_file is None):
        raise AgentError("collector.tls.cert_file and collector.tls.key_file go together")
    if tls.enabled and tls.cert_file is not None and tls.key_file is not None:
        client_cert = (str(tls.cert_file), str(tls.key_file))
        try:
            Path(tls.cert_file).read_bytes()
            Path(tls.key_file).read_bytes()
        except OSError as e:
            key = "cert_file" if e.filename == str(tls.cert_file) else "key_file"
            why = f"cannot read {e.filename}: {e.strerror}"
            raise AgentError(f"collector.tls.{key}: {why}") from None
    try:
        return Channel(
            address,
            tls=tls.enabled,
            root_certificates=root,
            server_name=tls.server_name,
            client_cert=client_cert,
            gzip=gzip,
            user_agent=f"canhgac-agent/{__version__}",
        )
    except ValueError as e:
        raise AgentError(str(e)) from None
    except ClientCertError as e:
        raise AgentError(
            f"collector.tls.cert_file/key_file: {tls.cert_file}, {tls.key_file}: {e}"
        ) from None
    except OSError as e:  # an unreadable or invalid pinned CA
        raise AgentError(f"collector.tls.ca_file: {tls.ca_file}: {e}") from None


_Answer = TypeVar("_Answer", bound=Message)


def _answer(kind: type[_Answer], data: bytes) -> _Answer:
    """The collector's answer decoded; one that does not decode is a transient error of the
    call (a proxy or a broken collector), not an exception the runner has never heard of."""
    try:
        return kind.FromString(data)
    except DecodeError as e:
        raise DeliveryError(
            StatusCode.INTERNAL, f"undecodable {kind.DESCRIPTOR.name} from the collector: {e}"
        ) from None


def _path(method: str) -> str:
    return f"/{pb.DESCRIPTOR.services_by_name['Collector'].full_name}/{method}"


class CollectorClient:
    """One channel to the collector; every call has a deadline and carries the credential."""

    def __init__(
        self,
        address: str,
        tls: TlsConfig | None = None,
        timeout: float = 20.0,
        gzip: bool = True,
        secret: str | None = None,
    ) -> None:
        self.address = address
        self._timeout = timeout
        self._metadata = (("authorization", f"Bearer {secret}"),) if secret else ()
        self._channel = _channel(address, tls or TlsConfig(), gzip)
        self._clock_offset: ClockOffset = ClockOffset()

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> CollectorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reachable(self, timeout: float = 5.0) -> bool:
        return self._channel.ready(timeout)

    def unreachable(self, timeout: float = 5.0) -> str | None:
        """None when the collector can be reached, else what happened, for a person."""
        return self._channel.why_not_ready(timeout)

    def enroll(
        self, token: str, facts: MachineFacts, previous_credential: str = ""
    ) -> EnrollResult:
        """`previous_credential`: the one this machine held, the proof that keeps its agent id."""
        req = pb.EnrollRequest(
            token=token,
            previous_credential=previous_credential,
            machine=pb.MachineFacts(
                machine_id=facts.machine_id,
                hostname=facts.hostname,
                os_name=facts.os_name,
                os_version=facts.os_version,
                agent_version=facts.agent_version,
            ),
        )
        try:
            answer = self._channel.unary(
                _path("Enroll"), req.SerializeToString(), timeout=self._timeout
            )
        except RpcError as e:
            raise DeliveryError(e.code, e.details, local=e.local) from None
        resp = _answer(pb.EnrollResponse, answer)
        p = resp.placement
        return EnrollResult(
            agent_id=resp.agent_id,
            secret=resp.credential,
            report_interval_seconds=resp.settings.report_interval_seconds,
            district=p.district,
            commune=p.commune,
            unit=p.unit,
            role=p.role,
        )

    def submit(self, payloads: Sequence[bytes]) -> SubmitResult:
        """Send already-encoded reports (from the spool) as one batch."""
        req = pb.SubmitRequest()
        for payload in payloads:
            req.reports.add().ParseFromString(payload)
        sent_at = time.time()
        try:
            answer = self._channel.unary(
                _path("Submit"),
                req.SerializeToString(),
                timeout=self._timeout,
                metadata=self._metadata,
            )
        except RpcError as e:
            raise DeliveryError(e.code, e.details, local=e.local) from None
        resp = _answer(pb.SubmitResponse, answer)
        if resp.collector_time_ms:
            self._clock_offset = clock_offset(sent_at, time.time(), resp.collector_time_ms)
        return SubmitResult(
            stored=list(resp.stored_seqs),
            rejected=[(r.seq, r.reason) for r in resp.rejected],
            fresh_checks=tuple(resp.fresh_checks),
            settings_hash=resp.settings_hash,
            release_version=resp.release_version,
        )

    def get_settings(self) -> tuple[str, Any]:
        """The central settings the collector holds for this agent: (hash, document)."""
        try:
            answer = self._channel.unary(
                _path("GetSettings"),
                pb.GetSettingsRequest().SerializeToString(),
                timeout=self._timeout,
                metadata=self._metadata,
            )
        except RpcError as e:
            raise DeliveryError(e.code, e.details, local=e.local) from None
        resp = _answer(pb.GetSettingsResponse, answer)
        try:
            document = json.loads(resp.document) if resp.document else {}
        except ValueError as e:
            raise DeliveryError(
                StatusCode.INTERNAL, f"central settings {resp.hash}: not JSON: {e}"
            ) from None
        return resp.hash, document

    def get_release(self, version: str) -> tuple[bytes, bytes]:
        """The signed manifest of `version` and its signature, as the collector holds them."""
        try:
            answer = self._channel.unary(
                _path("GetRelease"),
                pb.GetReleaseRequest(version=version).SerializeToString(),
                timeout=self._timeout,
                metadata=self._metadata,
            )
        except RpcError as e:
            raise DeliveryError(e.code, e.details, local=e.local) from None
        resp = _answer(pb.GetReleaseResponse, answer)
        return resp.manifest, resp.signature

    def download(self, sha256: str, offset: int, length: int) -> Iterator[tuple[int, int, bytes]]:
        """(offset, package size, bytes) of the package from `offset`, at most `length` bytes.
        Packages are compressed already: the call is sent uncompressed."""
        request = pb.DownloadRequest(sha256=sha256, offset=offset, length=length)
        try:
            for message in self._channel.stream(
                _path("Download"),
                [request.SerializeToString()],
                timeout=self._timeout,
                metadata=self._metadata,
                compress=False,
            ):
                chunk = _answer(pb.DownloadChunk, message)
                yield chunk.offset, chunk.size, chunk.data
        except RpcError as e:
            raise DeliveryError(e.code, e.details, local=e.local) from None

    def clock_offset(self) -> ClockOffset:
        """Offset measured on the last Submit that carried the collector's time."""
        return self._clock_offset

    def upload(self, nbytes: int) -> tuple[int, float]:
        """Bytes the collector received and seconds taken to send `nbytes` with `Upload`."""
        chunk = os.urandom(min(nbytes, 64 * 1024)) if nbytes else b""  # gzip cannot shrink it

        def chunks() -> Iterator[bytes]:
            left = nbytes
            while left > 0:
                n = min(left, len(chunk))
                yield pb.ThroughputChunk(data=chunk[:n]).SerializeToString()
                left -= n

        start = time.monotonic()
        try:
            (reply,) = self._channel.stream(
                _path("Upload"),
                chunks(),
                timeout=self._timeout,
                metadata=self._metadata,
                compress=False,
            )
        except RpcError as e:
            raise DeliveryError(e.code, e.details, local=e.local) from None
        except ValueError:  # not exactly one reply
            raise DeliveryError(StatusCode.INTERNAL, "Upload: not one reply") from None
        return _answer(pb.UploadResult, reply).bytes, time.monotonic() - start

    def throughput(self, nbytes: int) -> tuple[int, float]:
        """Bytes received and seconds taken for a `Throughput` stream of `nbytes`."""
        start = time.monotonic()
        received = 0
        try:
            for message in self._channel.stream(
                _path("Throughput"),
                [pb.ThroughputRequest(bytes=nbytes).SerializeToString()],
                timeout=self._timeout,
                metadata=self._metadata,
            ):
                received += len(_answer(pb.ThroughputChunk, message).data)
        except RpcError as e:
            raise DeliveryError(e.code, e.details, local=e.local) from None
        return received, time.monotonic() - start
