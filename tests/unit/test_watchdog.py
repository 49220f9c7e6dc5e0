"""The server's deadline watchdog: calls past their deadline cancelled, none woken for nothing."""

from __future__ import annotations

import threading
import time
from typing import Any, cast

from collector.server import _Watchdog


class _Call:
    def __init__(self) -> None:
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        self.cancelled.set()


def _arm(w: _Watchdog, seconds: float, call: _Call) -> int:
    return w.arm(seconds, cast(Any, call))


def test_a_sooner_deadline_armed_after_a_later_one_fires_on_time() -> None:
    expired: list[None] = []
    w = _Watchdog(lambda: expired.append(None))
    late, soon = _Call(), _Call()
    _arm(w, 60, late)
    _arm(w, 0.2, soon)
    # Not woken for it, the watchdog would sleep until the 60 s deadline.
    assert soon.cancelled.wait(5)
    assert not late.cancelled.is_set()
    assert len(expired) == 1


def test_a_later_deadline_armed_while_it_waits_for_a_sooner_one_fires_too() -> None:
    w = _Watchdog(lambda: None)
    first, second = _Call(), _Call()
    _arm(w, 0.2, first)
    _arm(w, 0.4, second)
    assert first.cancelled.wait(5)
    assert second.cancelled.wait(5)


def test_disarmed_calls_are_not_cancelled_and_do_not_pile_up() -> None:
    w = _Watchdog(lambda: None)
    kept = _Call()
    keep = _arm(w, 0.5, kept)
    calls = [_Call() for _ in range(5000)]
    for call in calls:
        assert w.disarm(_arm(w, 0.3, call))
    assert len(w._heap) <= 2 * len(w._live) + 1025
    assert kept.cancelled.wait(5)
    assert not w.disarm(keep)  # the watchdog ended it
    time.sleep(0.2)
    assert not any(c.cancelled.is_set() for c in calls)
