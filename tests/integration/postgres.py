"""A throwaway PostgreSQL server for tests: initdb in a temp dir, loopback only, stopped after."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.harness import free_port

__all__ = ["fresh_database", "postgres_server"]


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a cluster in a new temp dir; yields the server URL without a database name.

    PostgreSQL refuses to run as root, so when the tests run as root the cluster belongs to
    the `postgres` system user (Debian's package creates it). The dir is made with mkdtemp
    rather than under pytest's tmp root, which that user cannot enter.
    """
    bindir = _bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is missing: scripts/install-test-deps.sh should install it")
        pytest.skip("PostgreSQL server not installed (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="canhgac-pg-"))
    data = base / "pgdata"
    sockets = base / "sockets"
    data.mkdir()
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        for p in (base, data, sockets):
            os.chown(p, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    run = [*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]
    subprocess.run([*run, "-E", "UTF8", "--no-locale"], check=True, capture_output=True)
    port = free_port()
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={sockets}"
    options += " -c fsync=off -c full_page_writes=off"  # throwaway data: speed over durability
    subprocess.run(
        [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l",
         str(base / "server.log"), "start"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


def fresh_database(server_url: str) -> str:
    """A new empty database on the server; returns its SQLAlchemy URL."""
    import psycopg  # noqa: PLC0415

    name = f"t_{uuid.uuid4().hex[:12]}"
    dsn = server_url.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url}/{name}"
