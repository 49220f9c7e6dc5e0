"""Keeps the collector's long-lived objects out of Python's full garbage collections.

A collector carrying 10,000 agents holds hundreds of thousands of long-lived objects (the
alert engine's open alerts and per-rule verdicts, gRPC and SQLAlchemy state). Every full
(generation 2) collection walks all of them: measured 80–210 ms with the GIL held, every
≈ 10 s, and they found no garbage (`gc.callbacks`: 0 objects collected in steady state) —
yet every Submit in flight waited behind each one (p99 63 ms → 36 ms without them in
`bench/sustained.py`). So the heap is frozen (`gc.freeze`) once start-up is done and then at
regular intervals: what lived through an interval is left out of later collections, which then
walk only what is new.

Frozen objects are still freed by reference counting; only cyclic garbage among them would
stay. Once an hour they are unfrozen, so the next full collection looks at everything and
frees any such cycles: one pause an hour instead of several a minute.
"""

from __future__ import annotations

import gc

__all__ = ["FREEZE_EVERY", "UNFREEZE_EVERY", "HeapKeeper"]

FREEZE_EVERY = 20.0  # seconds between freezes (the collector's timer calls `keep` this often)
UNFREEZE_EVERY = 3600.0


class HeapKeeper:
    """`keep(now)`, called every FREEZE_EVERY seconds: freezes the heap, or unfreezes it when
    the last unfreeze is UNFREEZE_EVERY seconds old."""

    def __init__(self, now: float) -> None:
        self._unfrozen_at = now

    def keep(self, now: float) -> None:
        if now - self._unfrozen_at >= UNFREEZE_EVERY:
            gc.unfreeze()
            self._unfrozen_at = now
        else:
            gc.freeze()
