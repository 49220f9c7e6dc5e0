"""Enrollment as an attacker tries it: forged hostnames, raced tokens, taken machine ids."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from agent.spool import Spool
from agent.transport.client import DeliveryError, MachineFacts
from agent.transport.wire import StatusCode
from tests.integration.harness import Running

FORGED = "2025-01-01 00:00:00,000 INFO collector.server: enrolled agent FORGED"


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_log_injection_hostname_is_escaped_bounded_and_stored_bounded(
    collector: Running, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hostname = "ubnd-thanhnhat-01\n" + FORGED + "\n" + "x" * (1 << 20)
    caplog.set_level(logging.INFO, logger="collector")
    with collector.client(None) as c:
        # Refused (bad token): the refusal's log line names the hostname.
        with pytest.raises(DeliveryError) as refused:
            c.enroll("cgt.nope.nope", MachineFacts("m-1", hostname, "Linux", "6.1", "0.1"))
        assert refused.value.code is StatusCode.UNAUTHENTICATED
        # Accepted: the enrollment's log line names it too.
        ok = c.enroll(collector.token(), MachineFacts("m-1", hostname, "Linux", "6.1", "0.1"))
        # A machine id longer than its column: a clear refusal, not a store error.
        with pytest.raises(DeliveryError) as too_long:
            c.enroll(collector.token(), MachineFacts("m" * 65, "h", "Linux", "6.1", "0.1"))
        assert too_long.value.code is StatusCode.INVALID_ARGUMENT
        assert "machine_id of 65 characters exceeds 64" in str(too_long.value)

    records = [r for r in caplog.records if r.name.startswith("collector")]
    logged = [r.getMessage() for r in records if "ubnd-thanhnhat-01" in r.getMessage()]
    assert len(logged) == 2, logged  # one refusal, one enrollment
    for line in logged:
        assert "\n" not in line and len(line) < 1000, (len(line), line[:300])
    assert "ubnd-thanhnhat-01\\n" + FORGED in logged[0]  # the newline is shown, not obeyed
    assert not any(line.startswith(FORGED) for line in caplog.text.splitlines())
    assert sum(len(r.getMessage()) for r in records) < 10_000

    # What is stored (and shown in tables and metric labels) is bounded and on one line.
    stored = collector.app.store.get_agent(ok.agent_id).hostname
    assert len(stored) == 255 and "\n" not in stored
    assert stored.startswith("ubnd-thanhnhat-01\ufffd2025-01-01")

    db = Path(collector.app.cfg.store.url.removeprefix("sqlite:///"))
    modes = {p.name: _mode(p) for p in (db, db.with_name(db.name + "-wal"))}
    assert modes == {db.name: 0o600, db.name + "-wal": 0o600}
    spool = Spool(tmp_path / "state" / "spool.db", 1 << 20, 3600)
    try:
        assert _mode(spool.path) == 0o600
    finally:
        spool.close()
