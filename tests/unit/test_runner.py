"""The agent's loop pieces: per-probe failure isolation, backoff, and spool -> submit -> ack."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import __version__
from agent.config import DeliveryConfig
from agent.errors import ProbeFailed
from agent.model import Cpu, Hardware, Host, Memory, ProbeError
from agent.probes.base import Probe
from agent.runner import Backoff, Runner, Scheduled, collect
from agent.spool import Spool
from agent.transport.client import DeliveryError, SubmitResult
from agent.transport.wire import StatusCode
from canhgac_proto.v1 import collector_pb2 as pb

T0 = 1_700_000_000.0

HARDWARE = Hardware(
    host=Host(
        hostname="PC-UBND-HẠ-LANG",
        os_name="Debian GNU/Linux 12 (bookworm)",
        os_version="12",
        os_build="6.1.0-26-amd64",
        arch="x86_64",
    ),
    cpu=Cpu(
        model="Intel Celeron J4125",
        physical_cores=4,
        logical_cores=4,
        usage_ratio=0.1,
        load1=0.2,
        load5=0.3,
        load15=0.4,
    ),
    memory=Memory(
        total_bytes=8 * 2**30,
        available_bytes=4 * 2**30,
        used_bytes=4 * 2**30,
        swap_total_bytes=0,
        swap_used_bytes=0,
    ),
)


class FixedHardwareProbe(Probe):
    """A probe whose observation is given: the real interface, fed a known value."""

    name = "hardware"

    def __init__(self, hardware: Hardware = HARDWARE) -> None:
        self.hardware = hardware
        self.calls = 0

    def collect(self) -> Hardware:
        self.calls += 1
        return self.hardware


class BrokenProbe(Probe):
    name = "antivirus"

    def __init__(self, error: Exception) -> None:
        self.error = error

    def collect(self) -> object:
        raise self.error


# --- collect() --------------------------------------------------------------------------------


def test_collect_isolates_a_failing_probe() -> None:
    good = FixedHardwareProbe()
    report = collect(
        {"antivirus": BrokenProbe(ProbeFailed("Get-MpComputerStatus timed out")), "hardware": good},
        boot_id="boot-1",
        now_ms=1234,
    )
    assert good.calls == 1  # ran although the probe before it failed
    assert report.hardware == HARDWARE
    assert report.errors == (
        ProbeError(probe="antivirus", message="ProbeFailed: Get-MpComputerStatus timed out"),
    )
    assert report.collected_at_ms == 1234
    assert report.boot_id == "boot-1"
    assert report.agent_version == __version__
    assert report.seq == 0  # the spool assigns it


def test_collect_reports_any_exception_type() -> None:
    report = collect({"hardware": BrokenProbe(KeyError("Win32_Battery"))}, boot_id="b", now_ms=1)
    assert report.hardware is None
    assert report.errors == (ProbeError(probe="hardware", message="KeyError: 'Win32_Battery'"),)


def test_collect_with_all_probes_working_has_no_errors() -> None:
    report = collect({"hardware": FixedHardwareProbe()}, boot_id="b", now_ms=1)
    assert report.errors == ()
    assert report.hardware == HARDWARE


# --- Backoff ----------------------------------------------------------------------------------


def test_backoff_grows_and_is_capped_with_jitter() -> None:
    backoff = Backoff(initial=2.0, maximum=30.0, rng=random.Random(7))
    ceilings = [2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]
    delays = [backoff.next() for _ in ceilings]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= 30.0
    # Jitter: the capped delays are not all the same number.
    assert len(set(delays[4:])) > 1


def test_backoff_stays_capped_after_many_failures() -> None:
    backoff = Backoff(initial=1.0, maximum=300.0, rng=random.Random(1))
    delays = [backoff.next() for _ in range(200)]
    assert all(150.0 <= d <= 300.0 for d in delays[10:])
    assert all(0.0 < d <= 300.0 for d in delays)


def test_backoff_is_reproducible_with_a_seed() -> None:
    a = Backoff(2.0, 60.0, random.Random(42))
    b = Backoff(2.0, 60.0, random.Random(42))
    assert [a.next() for _ in range(6)] == [b.next() for _ in range(6)]


def test_backoff_reset_starts_over() -> None:
    backoff = Backoff(initial=2.0, maximum=60.0, rng=random.Random(3))
    for _ in range(5):
        backoff.next()
    assert backoff.next() >= 16.0  # ceiling 32 by now
    backoff.reset()
    assert 1.0 <= backoff.next() <= 2.0
    assert 2.0 <= backoff.next() <= 4.0


# --- Runner: spool -> submit -> ack -----------------------------------------------------------


class Collector:
    """A `submit` function standing in for the collector: records each batch it is given and
    answers with the next queued outcome (a SubmitResult builder or a DeliveryError)."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.outcomes: list[DeliveryError | str] = []

    def __call__(self, payloads: list[bytes]) -> SubmitResult:
        seqs = [pb.Report.FromString(p).seq for p in payloads]
        self.batches.append(seqs)
        outcome = self.outcomes.pop(0) if self.outcomes else "store"
        if isinstance(outcome, DeliveryError):
            raise outcome
        if outcome == "reject-last":
            return SubmitResult(stored=seqs[:-1], rejected=[(seqs[-1], "boot_id too long")])
        return SubmitResult(stored=seqs, rejected=[])


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    s = Spool(tmp_path / "spool.db", max_bytes=1 << 30, max_age=1e9, clock=lambda: T0)
    yield s
    s.close()


def _runner(spool: Spool, submit: Collector | None, batch_size: int = 4) -> Runner:
    return Runner(
        {"hardware": Scheduled(FixedHardwareProbe(), 15.0)},
        spool,
        submit,
        DeliveryConfig(batch_size=batch_size),
        boot_id="boot-1",
        clock=lambda: 0.0,
        wall_clock=lambda: T0,
    )


def _pending(spool: Spool) -> list[int]:
    return [seq for seq, _ in spool.pending(1000)]


def test_collect_due_spools_an_encoded_report(spool: Spool) -> None:
    runner = _runner(spool, Collector())
    assert runner.collect_due(["hardware"]) == 1
    assert runner.collect_due(["hardware"]) == 2
    (seq, payload), _ = spool.pending(10)
    report = pb.Report.FromString(payload)
    assert report.seq == seq == 1
    assert report.boot_id == "boot-1"
    assert report.collected_at_ms == int(T0 * 1000)
    assert report.hardware.host.hostname == "PC-UBND-HẠ-LANG"
    assert report.hardware.memory.total_bytes == 8 * 2**30


def test_deliver_batch_acks_what_was_stored(spool: Spool) -> None:
    submit = Collector()
    runner = _runner(spool, submit, batch_size=4)
    for _ in range(6):
        runner.collect_due(["hardware"])
    assert runner.deliver_batch() is True  # more is waiting
    assert _pending(spool) == [5, 6]
    assert runner.deliver_batch() is False
    assert _pending(spool) == []
    assert submit.batches == [[1, 2, 3, 4], [5, 6]]
    assert spool.status().last_ack_at == T0
    assert runner.deliver_batch() is False
    assert len(submit.batches) == 2  # nothing sent when the spool is empty


def test_rejected_reports_are_removed_and_counted(spool: Spool) -> None:
    submit = Collector()
    submit.outcomes = ["reject-last"]
    runner = _runner(spool, submit)
    for _ in range(3):
        runner.collect_due(["hardware"])
    assert runner.deliver_batch() is False
    assert _pending(spool) == []
    status = spool.status()
    assert status.rejected_total == 1
    assert status.dropped_total == 0


def test_unavailable_leaves_everything_in_the_spool(spool: Spool) -> None:
    submit = Collector()
    submit.outcomes = [DeliveryError(StatusCode.UNAVAILABLE, "connection refused")]
    runner = _runner(spool, submit)
    for _ in range(3):
        runner.collect_due(["hardware"])
    assert runner.deliver_batch() is None
    assert _pending(spool) == [1, 2, 3]
    assert spool.status().last_ack_at is None
    # The same reports go again, in order, once the collector is back.
    assert runner.deliver_batch() is False
    assert submit.batches == [[1, 2, 3], [1, 2, 3]]
    assert _pending(spool) == []


def test_resource_exhausted_halves_the_batch(spool: Spool) -> None:
    submit = Collector()
    submit.outcomes = [
        DeliveryError(StatusCode.RESOURCE_EXHAUSTED, "message too large"),
        DeliveryError(StatusCode.RESOURCE_EXHAUSTED, "message too large"),
    ]
    runner = _runner(spool, submit, batch_size=8)
    for _ in range(20):
        runner.collect_due(["hardware"])
    assert runner.deliver_batch() is None
    assert runner.deliver_batch() is None
    assert runner.deliver_batch() is True
    assert [len(b) for b in submit.batches] == [8, 4, 2]
    assert _pending(spool)[0] == 3  # seqs 1 and 2 were delivered and acked
    # Success grows the batch back, up to the configured size.
    runner.deliver_batch()
    runner.deliver_batch()
    runner.deliver_batch()
    assert [len(b) for b in submit.batches] == [8, 4, 2, 4, 8, 6]
    assert _pending(spool) == []


def test_batch_never_shrinks_below_one(spool: Spool) -> None:
    submit = Collector()
    submit.outcomes = [DeliveryError(StatusCode.RESOURCE_EXHAUSTED, "busy")] * 4
    runner = _runner(spool, submit, batch_size=2)
    for _ in range(3):
        runner.collect_due(["hardware"])
    for _ in range(4):
        assert runner.deliver_batch() is None
    assert runner.deliver_batch() is True
    assert [len(b) for b in submit.batches] == [2, 1, 1, 1, 1]


def test_other_errors_do_not_shrink_the_batch(spool: Spool) -> None:
    submit = Collector()
    submit.outcomes = [DeliveryError(StatusCode.UNAUTHENTICATED, "credential revoked")]
    runner = _runner(spool, submit, batch_size=4)
    for _ in range(5):
        runner.collect_due(["hardware"])
    assert runner.deliver_batch() is None
    assert runner.deliver_batch() is True
    assert [len(b) for b in submit.batches] == [4, 4]


def test_a_refusal_for_good_stops_delivery_and_keeps_the_reports(spool: Spool) -> None:
    """Revoked (the details' first word): `on_refused` once, no retry; the reports stay."""
    submit = Collector()
    submit.outcomes = [DeliveryError(StatusCode.UNAUTHENTICATED, "revoked: agent a1 was revoked")]
    told: list[DeliveryError] = []
    runner = Runner(
        {"hardware": Scheduled(FixedHardwareProbe(), 15.0)},
        spool,
        submit,
        DeliveryConfig(backoff_initial=0.001, backoff_max=0.001),
        boot_id="boot-1",
        on_refused=told.append,
    )
    stop = threading.Event()
    loop = threading.Thread(target=runner._deliver_loop, args=(stop,))
    runner.collect_due(["hardware"])
    loop.start()
    loop.join(30)  # ends by itself: nothing left to try
    assert not loop.is_alive()
    stop.set()
    assert [e.refusal for e in told] == ["revoked"] and runner.refused is told[0]
    assert len(submit.batches) == 1
    assert _pending(spool) == [1]


def test_no_submit_means_nothing_to_deliver(spool: Spool) -> None:
    runner = _runner(spool, None)
    runner.collect_due(["hardware"])
    assert runner.deliver_batch() is False
    assert _pending(spool) == [1]


def test_delivery_error_transient_flag() -> None:
    assert DeliveryError(StatusCode.UNAVAILABLE, "x").transient
    assert DeliveryError(StatusCode.RESOURCE_EXHAUSTED, "x").transient
    assert not DeliveryError(StatusCode.UNAUTHENTICATED, "x").transient
    assert not DeliveryError(StatusCode.INVALID_ARGUMENT, "x").transient


# --- Runner.run: the service loop ---------------------------------------------------------------


class CountingBrokenProbe(BrokenProbe):
    def __init__(self) -> None:
        super().__init__(ProbeFailed("WMI namespace root/SecurityCenter2 not found"))
        self.calls = 0

    def collect(self) -> object:
        self.calls += 1
        return super().collect()


def test_run_keeps_each_probe_on_its_interval_and_a_failure_stops_nothing(
    spool: Spool,
) -> None:
    fast, broken = FixedHardwareProbe(), CountingBrokenProbe()
    sink = Collector()
    runner = Runner(
        {"hardware": Scheduled(fast, 0.05), "antivirus": Scheduled(broken, 0.25)},
        spool,
        sink,
        DeliveryConfig(batch_size=50, pace=0.0),
        boot_id="boot-1",
    )
    stop = threading.Event()
    loop = threading.Thread(target=runner.run, args=(stop,))
    loop.start()
    time.sleep(1.2)
    stop.set()
    loop.join(5)
    assert not loop.is_alive(), "stop request must end the loop promptly"
    assert broken.calls >= 2  # kept being scheduled despite failing every time
    assert fast.calls >= 2 * broken.calls  # its own, shorter interval
    delivered = [seq for batch in sink.batches for seq in batch]
    assert delivered == sorted(delivered)
    assert len(delivered) >= fast.calls - 1  # at most the last report is still in flight


def test_a_fresh_check_asked_on_an_ack_runs_that_probe_at_once(spool: Spool) -> None:
    hourly, fast = CountingBrokenProbe(), FixedHardwareProbe()
    asked = threading.Event()

    def submit(payloads: list[bytes]) -> SubmitResult:
        seqs = [pb.Report.FromString(p).seq for p in payloads]
        if asked.is_set():
            return SubmitResult(stored=seqs, rejected=[])
        asked.set()
        # Names the agent does not run are ignored, not an error.
        return SubmitResult(stored=seqs, rejected=[], fresh_checks=("antivirus", "no_such"))

    runner = Runner(
        {"hardware": Scheduled(fast, 0.05), "antivirus": Scheduled(hourly, 3600.0)},
        spool,
        submit,
        DeliveryConfig(batch_size=50, pace=0.0),
        boot_id="boot-1",
    )
    stop = threading.Event()
    loop = threading.Thread(target=runner.run, args=(stop,))
    loop.start()
    for _ in range(100):  # bounded: at most ~5 s
        if hourly.calls >= 2:
            break
        time.sleep(0.05)
    stop.set()
    loop.join(5)
    assert asked.is_set()
    assert hourly.calls == 2  # once at start, once on request; its hour was not up
