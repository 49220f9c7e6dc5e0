"""The agent's loop: run each probe on its own interval, spool the report, deliver the backlog."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from agent import __version__
from agent.central import Central
from agent.config import AgentConfig, DeliveryConfig
from agent.errors import SpoolError
from agent.model import ProbeError, Report, SpoolStats
from agent.probes.base import Probe
from agent.spool import Spool
from agent.transport.client import DeliveryError, SubmitResult
from agent.transport.encode import encode_report
from agent.update import Updater

__all__ = ["Backoff", "Runner", "Scheduled", "collect", "read_boot_id"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scheduled:
    probe: Probe
    interval: float


def read_boot_id() -> str:
    """The OS boot id on Linux; on other systems the boot time stands in for it."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        import psutil  # noqa: PLC0415

        return f"boot-{int(psutil.boot_time())}"


def collect(probes: Mapping[str, Probe], boot_id: str, now_ms: int) -> Report:
    """Run `probes` once; a failing probe becomes an error entry and the others carry on."""
    sections: dict[str, Any] = {}
    errors: list[ProbeError] = []
    for name, probe in probes.items():
        try:
            probe.prepare()  # Windows: every due probe's PowerShell in one process
        except Exception as e:  # collect still runs; it reads on its own then
            log.warning("probe %s could not prepare: %s", name, e)
    for name, probe in probes.items():
        try:
            sections[name] = probe.collect()
        except Exception as e:  # one probe's failure never stops the others
            log.warning("probe %s failed: %s", name, e)
            errors.append(ProbeError(probe=name, message=f"{type(e).__name__}: {e}"))
    return Report(
        collected_at_ms=now_ms,
        boot_id=boot_id,
        agent_version=__version__,
        errors=tuple(errors),
        **sections,
    )


class Backoff:
    """Exponential backoff with equal jitter: half fixed, half random, capped."""

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        self._initial, self._max = initial, maximum
        self._attempt = 0
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not crypto)

    def reset(self) -> None:
        self._attempt = 0

    def next(self) -> float:
        ceiling = min(self._max, self._initial * 2.0**self._attempt)
        self._attempt = min(self._attempt + 1, 32)
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)


class Runner:
    """Collection on the calling thread, delivery on a thread of its own: whatever the network
    does (refused, dropped packets, a collector that stalls), reports are collected on
    schedule and spooled, and delivery catches up. Both sleep on Events, so a stop request
    ends them at once (a call in flight ends at its deadline)."""

    def __init__(
        self,
        schedule: Mapping[str, Scheduled],
        spool: Spool,
        submit: Callable[[list[bytes]], SubmitResult] | None,
        delivery: DeliveryConfig,
        *,
        boot_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        central: Central | None = None,
        rebuild: Callable[[AgentConfig], Mapping[str, Scheduled]] | None = None,
        on_refused: Callable[[DeliveryError], None] | None = None,
        updater: Updater | None = None,
    ) -> None:
        """`central` and `rebuild` (the schedule a config gives): settings pushed by the
        collector are applied between two cycles, without a restart. `on_refused` is called
        once when the collector refuses the credential for good (revoked, retired); delivery
        then stops, collection goes on into the bounded spool. `updater`: self-update, told
        of each ack and the release it offers."""
        self._updater = updater
        self._schedule = dict(schedule)
        self._central = central
        self._rebuild = rebuild
        # Set by the delivery thread when pushed settings changed the schedule.
        self._rescheduled = False
        self._on_refused = on_refused
        self.refused: DeliveryError | None = None
        self._spool = spool
        self._submit = submit
        self._delivery = delivery
        self._boot_id = boot_id or read_boot_id()
        self._clock = clock
        self._wall = wall_clock
        self._backoff = Backoff(delivery.backoff_initial, delivery.backoff_max)
        self._batch = delivery.batch_size
        # Probes the collector asked for on an ack, run at the next turn of the collection loop.
        self._fresh: set[str] = set()
        self._fresh_lock = threading.Lock()
        # Set by a stop request and by what the other loop has for one: a new report (for
        # delivery), a fresh check asked for (for collection).
        self._wake_collection = threading.Event()
        self._wake_delivery = threading.Event()
        self._spool_failing = False

    @property
    def schedule(self) -> Mapping[str, Scheduled]:
        with self._fresh_lock:
            return dict(self._schedule)

    def reconfigure(self, schedule: Mapping[str, Scheduled], delivery: DeliveryConfig) -> None:
        """Run `schedule` from the next turn of the collection loop (a probe new to it at
        once), and deliver with `delivery`."""
        with self._fresh_lock:
            self._schedule = dict(schedule)
            self._rescheduled = True
        self._delivery = delivery
        self._backoff = Backoff(delivery.backoff_initial, delivery.backoff_max)
        self._batch = min(self._batch, delivery.batch_size)
        self._wake_collection.set()

    def _settings_offered(self, wanted: str) -> None:
        if self._central is None or self._rebuild is None:
            return
        try:
            config = self._central.offer(wanted)
        except DeliveryError as e:
            log.warning(
                "central settings %s not fetched, asked again on the next ack: %s", wanted, e
            )
            return
        if config is not None:
            logging.getLogger().setLevel(config.log_level.upper())
            self._spool.set_bounds(config.spool.max_bytes, config.spool.max_age)
            self.reconfigure(self._rebuild(config), config.delivery)

    def collect_due(self, names: list[str]) -> int | None:
        """Collect the named probes into one report and spool it; returns its seq, or None
        when the spool could not take it (a full disk): counted, and the agent carries on."""
        with self._fresh_lock:
            probes = {n: self._schedule[n].probe for n in names if n in self._schedule}
        report = collect(probes, self._boot_id, int(self._wall() * 1000))
        if self._central is not None:
            report = replace(report, settings=self._central.state)
        spool_id = self._spool.spool_id

        if self._updater is not None:
            report = replace(report, update=self._updater.state())

        def encode(seq: int, stats: SpoolStats) -> bytes:
            return encode_report(replace(report, seq=seq, spool_id=spool_id, spool=stats))

        try:
            seq = self._spool.append(report.collected_at_ms, encode)
        except SpoolError as e:
            # Said once per failing spell, not once per cycle: a full disk stays full for hours.
            if not self._spool_failing:
                log.error("report not spooled, counted as lost until the spool takes it: %s", e)
            self._spool_failing = True
            return None
        if self._spool_failing:
            log.warning(
                "spooling again after %d reports lost", self._spool.status().unspooled_total
            )
            self._spool_failing = False
        log.debug("collected seq %d (%s)", seq, ", ".join(names))
        self._wake_delivery.set()
        return seq

    def deliver_batch(self) -> bool | None:
        """Send the oldest batch. True: more is waiting; False: spool empty; None: failed."""
        if self._submit is None:
            return False
        batch = self._spool.pending(self._batch)
        if not batch:
            return False
        try:
            result = self._submit([payload for _, payload in batch])
        except DeliveryError as e:
            if e.final:
                self.refused = e
                if self._on_refused is not None:
                    self._on_refused(e)
                else:
                    log.error("delivery stopped: the collector refused this agent: %s", e)
                return None
            if e.overloaded:
                self._batch = max(1, self._batch // 2)
            level = logging.WARNING if e.transient else logging.ERROR
            log.log(level, "delivery of %d reports failed: %s", len(batch), e)
            return None
        requested = [n for n in result.fresh_checks if n in self._schedule]
        if requested:
            log.info("collector asked for a fresh check: %s", ", ".join(requested))
            with self._fresh_lock:
                self._fresh.update(requested)
            self._wake_collection.set()
        for seq, reason in result.rejected:
            log.error("collector rejected report %d for good: %s", seq, reason)
        self._spool.ack(result.stored + [s for s, _ in result.rejected], len(result.rejected))
        if self._updater is not None:
            self._updater.acked()
            self._updater.offer(result.release_version)
        self._batch = min(self._delivery.batch_size, self._batch * 2)
        self._settings_offered(result.settings_hash)
        return self._spool.status().depth > 0

    def run(self, stop: threading.Event) -> None:
        """Collect and deliver until `stop` is set; returns once both loops have ended."""
        loops = [threading.Thread(target=self._relay_stop, args=(stop,), daemon=True)]
        if self._submit is not None:
            loops.append(
                threading.Thread(
                    target=self._deliver_loop, args=(stop,), name="delivery", daemon=True
                )
            )
        for loop in loops:
            loop.start()
        try:
            self._collect_loop(stop)
        finally:
            stop.set()
            for loop in loops:
                loop.join()

    def _relay_stop(self, stop: threading.Event) -> None:
        stop.wait()
        self._wake_collection.set()
        self._wake_delivery.set()

    def _collect_loop(self, stop: threading.Event) -> None:
        now = self._clock()
        next_due = dict.fromkeys(self._schedule, now)
        old = {n: s.interval for n, s in self._schedule.items()}
        while not stop.is_set():
            with self._fresh_lock:
                if self._rescheduled:
                    self._rescheduled = False
                    # Probes kept keep their slot; a new one (or one with a new interval) runs now.
                    next_due = {
                        n: next_due[n] if n in next_due and s.interval == old[n] else now
                        for n, s in self._schedule.items()
                    }
                old = {n: s.interval for n, s in self._schedule.items()}
                for n in self._fresh:
                    if n in next_due:
                        next_due[n] = now
                self._fresh.clear()
            now = self._clock()
            due = [n for n, t in next_due.items() if t <= now]
            if due:
                self.collect_due(due)
                for n in due:
                    interval = old[n]
                    # Skip missed slots (after a suspend) instead of bursting to catch up.
                    next_due[n] += interval * max(1, int((now - next_due[n]) // interval) + 1)
            wake = min(next_due.values(), default=float("inf"))
            self._wake_collection.wait(min(max(0.0, wake - self._clock()), _LONGEST_SLEEP))
            self._wake_collection.clear()
            now = self._clock()

    def _deliver_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            # Cleared before looking at the spool: a report spooled meanwhile sets it again.
            self._wake_delivery.clear()
            more = self.deliver_batch()
            if self.refused is not None:
                return  # for good: retrying would only hammer the collector
            if more is None:
                stop.wait(self._backoff.next())
                continue
            self._backoff.reset()
            if more:
                stop.wait(self._delivery.pace)
            else:
                self._wake_delivery.wait(_LONGEST_SLEEP)


# threading's waits take any timeout, but one past a few days overflows some platforms' timers.
_LONGEST_SLEEP = 86400.0
