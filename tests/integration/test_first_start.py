"""First start of an installed agent: it enrolls with the token the installer left in its state
dir, deletes the token, and reports (how the .deb's docs and the MSI's TOKEN property work)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.integration.harness import Running, stored_seqs, wait_until

BIN = Path(sys.executable).parent


def test_run_enrolls_with_the_left_token_deletes_it_and_reports(
    collector: Running, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    token = state / "enroll.token"
    token.write_text(collector.token() + "\n")
    config = tmp_path / "agent.yaml"
    config.write_text(
        json.dumps(
            {
                "state_dir": str(state),
                "collector": {"address": collector.address},
                "probes": {"link": {"enabled": False}},
            }
        )
    )
    agent = subprocess.Popen(
        [str(BIN / "canhgac-agent"), "--config", str(config), "run", "--interval", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        db = Path(collector.app.cfg.store.url.removeprefix("sqlite:///"))
        wait_until(lambda: sum(map(len, stored_seqs(db).values())) >= 2, 60, "two reports")
    finally:
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=30)
    assert agent.returncode == 0, err
    assert not token.exists()
    assert (state / "credential.json").stat().st_mode & 0o777 == 0o600
    assert "enroll.token deleted" in err
    [agent_record] = collector.app.store.list_agents()
    assert list(stored_seqs(db)) == [agent_record.agent_id]


def test_a_left_token_without_collector_address_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "enroll.token").write_text("cgt.x.y")
    done = subprocess.run(
        [str(BIN / "canhgac-agent"), "--state-dir", str(tmp_path), "run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "enroll.token is waiting to enroll, but collector.address is not set" in done.stderr
    assert (tmp_path / "enroll.token").exists()
