"""Ping a named target within a time budget: resolution, probe count, loss, RTT and jitter."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable
from dataclasses import dataclass

from agent.model import PingResult
from agent.platform import icmp

__all__ = ["PingPlan", "Pinger", "ping_result", "ping_target"]

Pinger = Callable[[str, int, float, float], icmp.PingRun]
"""`icmp.ping`'s shape: (address, count, interval, timeout) -> one run's RTTs."""


@dataclass(frozen=True)
class PingPlan:
    count: int
    interval: float
    timeout: float


def ping_target(
    target: str, pinger: Pinger, plan: PingPlan, budget: float, *, sequential: bool
) -> PingResult:
    """Resolve and ping `target` with as many probes of `plan` as fit in `budget` seconds."""
    try:
        address = socket.gethostbyname(target)
    except OSError as e:
        return PingResult(target, "", "", 0, 0, 1.0, error=f"cannot resolve: {e}")
    # Never let one target eat the budget: fewer probes rather than a blocked cycle.
    # IcmpSendEcho waits for each reply in turn, so there a lost probe costs a whole timeout.
    if sequential:
        fit = int(budget / (plan.interval + plan.timeout))
    else:
        fit = int((budget - plan.timeout) / plan.interval) + 1
    count = max(1, min(plan.count, fit))
    try:
        run = pinger(address, count, plan.interval, plan.timeout)
    except OSError as e:
        return PingResult(target, address, "", 0, 0, 1.0, error=str(e))
    return ping_result(target, address, run)


def ping_result(target: str, address: str, run: icmp.PingRun) -> PingResult:
    """Loss, RTT min/avg/max and jitter (mean |difference| of consecutive RTTs) of one run."""
    rtts = [r for r in run.rtts if r is not None]
    sent = len(run.rtts)
    loss = (sent - len(rtts)) / sent if sent else 1.0
    if not rtts:
        return PingResult(target, address, run.method, sent, 0, loss)
    diffs = [abs(b - a) for a, b in itertools.pairwise(rtts)]
    return PingResult(
        target,
        address,
        run.method,
        sent,
        len(rtts),
        loss,
        min(rtts),
        sum(rtts) / len(rtts),
        max(rtts),
        sum(diffs) / len(diffs) if diffs else 0.0,
    )
