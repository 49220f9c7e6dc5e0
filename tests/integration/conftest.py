"""Fixtures for integration tests (helpers live in harness.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import Running, collector_config, start_collector
from tests.integration.netns import Lab, require_net_admin
from tests.integration.postgres import fresh_database, postgres_server


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Running]:
    running = start_collector(collector_config(tmp_path / "collector.db"))
    yield running
    running.app.stop(grace=0)


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """One PostgreSQL server for the session (a fresh database per test: `store_url`)."""
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on the embedded default and on a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    server: str = request.getfixturevalue("postgres")
    return fresh_database(server)


@pytest.fixture
def lab() -> Iterator[Lab]:
    """Namespaces for network tests, deleted at teardown even when the test fails."""
    require_net_admin()
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()
