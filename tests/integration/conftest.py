"""Fixtures for integration tests (helpers live in harness.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import Running, collector_config, start_collector
from tests.integration.netns import Lab, require_net_admin


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Running]:
    running = start_collector(collector_config(tmp_path / "collector.db"))
    yield running
    running.app.stop(grace=0)


@pytest.fixture
def lab() -> Iterator[Lab]:
    """Namespaces for network tests, deleted at teardown even when the test fails."""
    require_net_admin()
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()
