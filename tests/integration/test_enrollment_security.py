"""Enrollment as an attacker tries it: forged hostnames, raced tokens, taken machine ids."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.spool import Spool
from agent.transport.client import DeliveryError, MachineFacts
from agent.transport.wire import StatusCode
from collector.errors import AuthError
from collector.model import Placement
from collector.store import MachineFacts as StoreFacts
from collector.store import Store
from tests.integration.harness import Running, agent_config

PLACE = Placement("Cao Bằng", "Hạ Lang", "Thanh Nhật", "", "workstation")

BIN = Path(sys.executable).parent
FORGED = "2025-01-01 00:00:00,000 INFO collector.server: enrolled agent FORGED"


def _run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120, env=env)


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


def test_token_race_one_use_token_enrolls_exactly_one_of_20_concurrent(store_url: str) -> None:
    """20 machines race one `--uses 1` token through the store (SQLite and a real PostgreSQL):
    exactly one enrolls, the others are told the token is used up."""
    store = Store(store_url)
    try:
        _, token = store.create_token(PLACE, ttl=3600, now=time.time(), max_uses=1)
        start = threading.Barrier(20)
        enrolled: list[str] = []
        refused: list[str] = []

        def enroll(i: int) -> None:
            start.wait()
            try:
                e = store.enroll(
                    token, StoreFacts(f"m-{i}", f"pc-{i}", "W", "10", "0.1"), time.time()
                )
                enrolled.append(e.agent.agent_id)
            except AuthError as err:
                refused.append(str(err))

        threads = [threading.Thread(target=enroll, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        print(f"{store.dialect}: {len(enrolled)} of 20 enrolled with a 1-use token")
        assert len(enrolled) == 1, enrolled
        assert len(refused) == 19 and all("has been used" in r for r in refused), set(refused)
        assert [t.uses for t in store.list_tokens()] == [1]
        assert [a.agent_id for a in store.list_agents()] == enrolled
    finally:
        store.close()


def test_token_options_refused_and_token_given_by_file_or_environment(
    collector: Running, tmp_path: Path
) -> None:
    config = tmp_path / "collector.yaml"
    config.write_text(f"store:\n  url: {collector.app.cfg.store.url}\n")
    create = [str(BIN / "canhgac-collector"), "--config", str(config), "token", "create"]
    create += ["--district", "Hạ Lang", "--role", "workstation"]
    for bad, said in (
        (["--uses", "0"], "--uses 0: at least 1"),
        (["--uses", "-3"], "--uses -3: at least 1"),
        (["--expires", "0s"], "--expires 0s: a token must live a while"),
        (["--expires", "-1"], "--expires"),
    ):
        out = _run(*create, *bad)
        assert (out.returncode, said in out.stderr) == (2, True), (bad, out.stderr)
    assert collector.app.store.list_tokens() == []

    enroll = [str(BIN / "canhgac-agent"), "enroll", "--collector", collector.address]
    token_file = tmp_path / "token"
    token_file.write_text(collector.token() + "\n")
    by_file = _run(*enroll[:1], "--state-dir", str(tmp_path / "a"), *enroll[1:],
                   "--token-file", str(token_file))  # fmt: skip
    assert by_file.returncode == 0, by_file.stderr
    env = {**os.environ, "CANHGAC_TOKEN": collector.token()}
    by_env = _run(*enroll[:1], "--state-dir", str(tmp_path / "b"), *enroll[1:], env=env)
    assert by_env.returncode == 0, by_env.stderr
    none = {k: v for k, v in os.environ.items() if k != "CANHGAC_TOKEN"}
    missing = _run(*enroll[:1], "--state-dir", str(tmp_path / "c"), *enroll[1:], env=none)
    assert missing.returncode == 2 and "--token-file PATH" in missing.stderr, missing.stderr
    empty = tmp_path / "empty"
    empty.write_text("\n")
    blank = _run(*enroll, "--token-file", str(empty))
    assert blank.returncode == 2 and f"--token-file {empty}: empty" in blank.stderr
    assert [(tmp_path / d / "credential.json").exists() for d in "abc"] == [True, True, False]
    assert [t.uses for t in collector.app.store.list_tokens()] == [1, 1]


def test_takeover_with_a_known_machine_id_gets_a_flagged_clone_not_the_victims_id(
    collector: Running, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The real agent CLI: a victim enrolls and reports; an attacker with a valid token for
    another commune and the victim's machine id (same host: the same /etc/machine-id) enrolls
    from a state dir without the victim's credential. The victim keeps its id, place and
    credential; the attacker gets another id, flagged as a possible clone, shown in the CLI,
    the log and /metrics. The victim re-enrolling with its credential keeps its id."""
    caplog.set_level(logging.INFO, logger="collector")
    config = tmp_path / "collector.yaml"
    config.write_text(f"store:\n  url: {collector.app.cfg.store.url}\n")
    agent_yaml = agent_config(tmp_path / "agent.yaml", {"ping_gateway": False, "count": 1})

    def agent(state: str, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [str(BIN / "canhgac-agent"), "--config", str(agent_yaml)]
        return _run(*argv, "--state-dir", str(tmp_path / state), *args)

    def enroll(state: str, token: str) -> str:
        out = agent(state, "enroll", "--collector", collector.address, "--token", token)
        assert out.returncode == 0, out.stderr
        credential = json.loads((tmp_path / state / "credential.json").read_text())
        return str(credential["agent_id"])

    victim = enroll("victim", collector.token("Thanh Nhật"))
    assert agent("victim", "once").returncode == 0
    attacker = enroll("attacker", collector.token("Đức Quang"))

    assert attacker != victim
    store = collector.app.store
    assert store.get_agent(attacker).clone_of == victim
    v = store.get_agent(victim)
    assert (v.clone_of, v.placement.commune) == (None, "Thanh Nhật")  # not moved
    after = agent("victim", "once")
    assert after.returncode == 0, after.stderr  # its credential still works
    assert store.report_seqs(victim) == [1, 2]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        f"agent {attacker}" in m and f"possible clone of agent {victim}" in m for m in warned
    )
    listed = _run(str(BIN / "canhgac-collector"), "--config", str(config), "agent", "list")
    assert f"clone of {victim}?" in next(x for x in listed.stdout.splitlines() if attacker in x)
    assert "clone" not in next(x for x in listed.stdout.splitlines() if victim in x)
    shown = _run(
        str(BIN / "canhgac-collector"), "--config", str(config), "agent", "show", attacker, "--json"
    )
    assert json.loads(shown.stdout)["possible_clone_of"] == victim
    with urllib.request.urlopen(f"http://127.0.0.1:{collector.app.http_port}/metrics") as r:
        metrics = r.read().decode()
    assert [
        (s.labels["agent_id"], s.labels["clone_of"], s.value)
        for fam in text_string_to_metric_families(metrics)
        for s in fam.samples
        if s.name == "canhgac_agent_clone_suspected"
    ] == [(attacker, victim, 1.0)]

    # The legitimate re-enrollment: the victim's state dir holds its credential, the proof.
    again = enroll("victim", collector.token("Vinh Quý"))
    assert again == victim
    assert store.get_agent(victim).placement.commune == "Vinh Quý"  # moved, per the token
    assert agent("victim", "once").returncode == 0
    assert store.report_seqs(victim) == [1, 2, 3]
    assert len(store.list_agents()) == 2


def test_takeover_is_allowed_only_by_a_token_that_replaces_the_agent(
    collector: Running, tmp_path: Path
) -> None:
    """The operator's way for a machine that lost its credential (reinstalled): a token made
    with `--replaces AGENT` keeps that agent's id, for that agent's machine id only."""
    victim = collector.enroll(machine="m-victim")
    victim_id = victim.split(".")[0]
    config = tmp_path / "collector.yaml"
    config.write_text(f"store:\n  url: {collector.app.cfg.store.url}\n")
    made = _run(
        str(BIN / "canhgac-collector"), "--config", str(config), "token", "create",
        "--district", "Hạ Lang", "--commune", "Thanh Nhật", "--role", "workstation",
        "--replaces", victim_id,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert f"1 uses, re-enrolls agent {victim_id}" in made.stderr
    token = made.stdout.strip()
    nobody = _run(
        str(BIN / "canhgac-collector"), "--config", str(config), "token", "create",
        "--district", "Hạ Lang", "--role", "workstation", "--replaces", "0000",
    )  # fmt: skip
    assert nobody.returncode == 1 and "no active agent '0000' to replace" in nobody.stderr
    with collector.client(None) as c:
        with pytest.raises(DeliveryError) as other:
            c.enroll(token, MachineFacts("m-attacker", "pc", "Linux", "6.1", "0.1"))
        assert other.value.code is StatusCode.UNAUTHENTICATED
        assert f"re-enrolls agent {victim_id}, which is not this machine's" in str(other.value)
        replaced = c.enroll(token, MachineFacts("m-victim", "pc", "Linux", "6.1", "0.1"))
    assert replaced.agent_id == victim_id
    assert collector.client(replaced.secret).submit([]).stored == []
    with pytest.raises(DeliveryError):
        collector.client(victim).submit([])  # the lost credential is replaced
    assert [a.agent_id for a in collector.app.store.list_agents()] == [victim_id]
