"""The antivirus probe against a real clamd started by the test, offline, on a socket in tmp."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from agent.platform.clamd import (
    DATABASE_HEADER_BYTES,
    ClamdClient,
    eicar,
    parse_database_header,
)
from agent.probes.antivirus import AntivirusOptions, AntivirusProbe
from tests.integration.clamav import (
    DAILY_VERSION,
    build_daily_cud,
    need_clamav,
    running_clamd,
    write_hdb,
)

pytestmark = pytest.mark.timeout(600)


def _engine() -> str:
    out = subprocess.run(
        [shutil.which("clamd", path="/usr/sbin:/usr/bin") or "clamd", "--version"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    match = re.match(r"ClamAV (\S+?)(?:/|$)", out.strip())
    assert match, out
    return match.group(1)


def _probe(socket: str, database_dir: Path) -> AntivirusProbe:
    options = AntivirusOptions.model_validate(
        {"clamd": {"socket": socket, "database_dir": str(database_dir), "timeout": "30s"}}
    )
    return AntivirusProbe(options, system=lambda: "Linux", process_names=set)


def test_healthy_clamd_with_daily_database_then_stopped(tmp_path: Path) -> None:
    need_clamav()
    db = tmp_path / "db"
    cud = build_daily_cud(db, tmp_path / "build")
    built_at = parse_database_header(cud.read_bytes()[:DATABASE_HEADER_BYTES])
    assert abs(built_at - time.time()) < 3600  # sigtool stamps the build time
    with running_clamd(tmp_path, db) as (address, proc):
        probe = _probe(address.path, db)
        av = probe.collect()
        assert av.clamd is not None
        clamd = av.clamd
        assert clamd.status == "running"
        assert clamd.engine_version == _engine()
        assert clamd.version_reply.startswith(f"ClamAV {_engine()}/{DAILY_VERSION}/")
        assert clamd.database_version == DAILY_VERSION
        # VERSION's date is the header's build time, printed by clamd in local time.
        assert clamd.database_date == built_at
        assert clamd.database_built_at == built_at
        assert av.signature_updated_at == built_at
        assert [(p.name, p.state, p.signatures) for p in av.products] == [
            ("ClamAV", "on", "up_to_date")
        ]
        assert (clamd.self_test, clamd.self_test_detail) == (
            "detected",
            "Canhgac.Test.EICAR.UNOFFICIAL",
        )
        proc.terminate()
        proc.wait(timeout=30)
        stopped = probe.collect()  # the very next cycle
    assert stopped.clamd is not None
    assert stopped.clamd.status == "not_running"
    assert stopped.products[0].state == "not_running"
    assert stopped.clamd.reason


def test_bare_version_without_daily_database(tmp_path: Path) -> None:
    need_clamav()
    db = tmp_path / "db"
    db.mkdir()
    write_hdb(db / "canhgac.hdb", eicar(), "Canhgac.Test.EICAR")
    with running_clamd(tmp_path, db) as (address, _):
        assert ClamdClient(address).version() == f"ClamAV {_engine()}"
        av = _probe(address.path, db).collect()
    assert av.clamd is not None
    assert (av.clamd.database_version, av.clamd.database_date) == (0, 0.0)
    assert av.clamd.self_test == "detected"
    assert av.signature_updated_at == 0.0  # nothing says how old the signatures are
    assert av.products[0].signatures == "unknown"


def test_clamd_that_detects_nothing_fails_the_self_test(tmp_path: Path) -> None:
    # Debian's clamd has no built-in EICAR signature: without one in a database it says OK.
    need_clamav()
    db = tmp_path / "db"
    db.mkdir()
    write_hdb(db / "other.hdb", b"not the test string", "Canhgac.Test.Other")
    with running_clamd(tmp_path, db) as (address, _):
        av = _probe(address.path, db).collect()
    assert av.clamd is not None
    assert av.clamd.status == "running"
    assert av.products[0].state == "on"
    assert av.clamd.self_test == "missed"
