"""A bounded transfer to or from the collector, timed: the path's throughput."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from agent.model import ThroughputResult
from agent.settings import Duration, Section, Size, option

__all__ = ["ThroughputOptions", "Transfers", "measure_throughput"]


class ThroughputOptions(Section):
    enabled: bool = True
    # Measured on its own schedule: a bounded download every `every`, never every cycle.
    every: Duration = option(default=6 * 3600.0, gt=0)
    bytes: Size = option(default=1024 * 1024, gt=0, le=64 * 1024 * 1024)


class Transfers(Protocol):
    """The part of `agent.probes.base.CollectorLink` a measurement uses."""

    @property
    def throughput(self) -> Callable[[int], tuple[int, float]]: ...
    @property
    def upload(self) -> Callable[[int], tuple[int, float]] | None: ...


def measure_throughput(
    collector: Transfers, nbytes: int, *, upload: bool = False
) -> ThroughputResult:
    """Download (or upload) `nbytes` from (to) the collector; a failed measurement is a result
    with its reason."""
    transfer = collector.upload if upload and collector.upload else collector.throughput
    try:
        received, seconds = transfer(nbytes)
    except Exception as e:  # a failed measurement is a result, reported with its reason
        return ThroughputResult(0, 0.0, 0.0, f"{type(e).__name__}: {e}")
    bps = received * 8 / seconds if seconds > 0 else 0.0
    return ThroughputResult(received, seconds, bps)
