"""Fixtures for integration tests (helpers live in harness.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import Running, collector_config, start_collector


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Running]:
    running = start_collector(collector_config(tmp_path / "collector.db"))
    yield running
    running.app.stop(grace=0)
