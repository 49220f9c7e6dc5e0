"""The collector's heap keeper: frozen between full collections, unfrozen once an hour."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from collector.heap import FREEZE_EVERY, UNFREEZE_EVERY, HeapKeeper


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # leave the test process as it was


def test_frozen_cycles_are_collected_after_the_hourly_unfreeze() -> None:
    keeper = HeapKeeper(0.0)
    a, b = _Node(), _Node()
    a.other, b.other = b, a  # a reference cycle: only the cyclic collector frees it
    alive = weakref.ref(a)
    keeper.keep(FREEZE_EVERY)
    assert gc.get_freeze_count() > 0
    del a, b
    gc.collect()
    assert alive() is not None  # frozen: left out of collections
    keeper.keep(UNFREEZE_EVERY - 1)  # not yet an hour: frozen again
    assert gc.get_freeze_count() > 0
    keeper.keep(UNFREEZE_EVERY)
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert alive() is None
    keeper.keep(UNFREEZE_EVERY + FREEZE_EVERY)  # the next hour starts frozen
    assert gc.get_freeze_count() > 0
