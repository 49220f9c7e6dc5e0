"""CPU busy share from two cpu_times() reads, as psutil.cpu_percent accounts it."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["cpu_usage_ratio"]


def cpu_usage_ratio(before: Mapping[str, float] | None, after: Mapping[str, float]) -> float:
    """Busy share of CPU time between two psutil.cpu_times() reads, 0..1; 0.0 with no baseline.

    Same accounting as psutil.cpu_percent: idle and iowait are not busy, and guest time is
    already counted inside user/nice on Linux.
    """
    if before is None:
        return 0.0

    def total(times: Mapping[str, float]) -> float:
        return sum(times.values()) - times.get("guest", 0.0) - times.get("guest_nice", 0.0)

    def busy(times: Mapping[str, float]) -> float:
        return total(times) - times.get("idle", 0.0) - times.get("iowait", 0.0)

    elapsed = total(after) - total(before)
    if elapsed <= 0:
        return 0.0
    return min(1.0, max(0.0, (busy(after) - busy(before)) / elapsed))
