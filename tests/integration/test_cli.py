"""The two command-line tools, run as a person runs them (real processes, real files)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from collector.cli import CONFIG_ENV
from collector.model import Placement, Report
from collector.store import MachineFacts, Store
from tests.integration.harness import (
    Running,
    agent_config,
    collector_config,
    start_collector,
    wait_until,
)
from tests.integration.test_alerts import SPOOL_RULE, _spooled

BIN = Path(sys.executable).parent


def run(*argv: str, **popen: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120, **popen)


def collector_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(str(BIN / "canhgac-collector"), "--config", str(config), *args)


def write_config(tmp_path: Path, sites: bool = True) -> Path:
    config = tmp_path / "collector.yaml"
    lines = [f"store:\n  url: sqlite:///{tmp_path / 'c.db'}"]
    if sites:
        repo = Path(__file__).resolve().parents[2]
        lines.append(f"sites_file: {repo / 'configs' / 'sites.example.yaml'}")
    config.write_text("\n".join(lines) + "\n")
    return config


def test_agent_once_print_reports_this_machine_as_json(tmp_path: Path) -> None:
    config = agent_config(tmp_path / "agent.yaml", {"ping_gateway": False})
    out = run(str(BIN / "canhgac-agent"), "--config", str(config), "once", "--print")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    hw = report["hardware"]
    assert hw["cpu"]["logical_cores"] >= 1
    assert hw["memory"]["total_bytes"] > 0
    assert hw["disks"], "at least one mounted filesystem"
    assert hw["host"]["hostname"]
    assert report["link"]["skipped"] == ["throughput: no collector connection in this run"]
    assert report["errors"] == []


def test_token_lifecycle_and_site_checks(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    made = collector_cli(
        config, "token", "create", "--district", "Hạ Lang", "--commune", "Vinh Quý",
        "--role", "meeting-room", "--expires", "2d", "--uses", "1",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("cgt.")
    token_id = token.split(".")[1]
    assert "Vinh Quý" in made.stderr
    listed = collector_cli(config, "token", "list")
    assert token_id in listed.stdout and "active" in listed.stdout
    assert token.split(".")[2] not in listed.stdout  # the secret is never shown again

    unknown = collector_cli(
        config, "token", "create", "--district", "Hạ Lang", "--commune", "Atlantis",
        "--role", "workstation",
    )  # fmt: skip
    assert unknown.returncode == 2
    assert "unknown commune 'Atlantis'" in unknown.stderr
    assert "Thanh Nhật" in unknown.stderr  # tells what is known

    bad_expiry = collector_cli(
        config, "token", "create", "--district", "Hạ Lang", "--role", "server", "--expires", "soon"
    )
    assert bad_expiry.returncode == 2
    assert "--expires" in bad_expiry.stderr

    assert collector_cli(config, "token", "revoke", token_id).returncode == 0
    assert "revoked" in collector_cli(config, "token", "list").stdout
    again = collector_cli(config, "token", "revoke", token_id)
    assert again.returncode == 1
    assert "no active token" in again.stderr


def test_agent_enroll_status_list_show_and_revoke(collector: Running, tmp_path: Path) -> None:
    state = tmp_path / "state"
    # The link probe pings the collector (loopback) and measures throughput from it.
    config = agent_config(tmp_path / "agent.yaml", {"ping_gateway": False, "count": 3})
    agent = [str(BIN / "canhgac-agent"), "--config", str(config), "--state-dir", str(state)]
    before = run(*agent, "status")
    assert before.returncode == 2  # CRITICAL, Nagios-style
    assert before.stdout.startswith("CRITICAL: not enrolled: ")
    assert "enrolled:   no" in before.stdout

    enrolled = run(*agent, "enroll", "--collector", collector.address, "--token", collector.token())
    assert enrolled.returncode == 0, enrolled.stderr
    assert "Thanh Nhật" in enrolled.stdout
    once = run(*agent, "once")
    assert once.returncode == 0, once.stderr
    status = run(*agent, "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[0] == "OK: collector reachable, 0 reports waiting"
    assert "reachable" in status.stdout and "NOT" not in status.stdout
    assert "last ack:   never" not in status.stdout
    as_json = json.loads(run(*agent, "status", "--json").stdout)
    assert (as_json["status"], as_json["collector"]["reachable"]) == ("OK", True)
    assert as_json["spool"]["reports_waiting"] == 0
    assert as_json["spool"]["oldest_waiting_at"] is None  # nothing waits: null, not "-"
    assert datetime.fromisoformat(as_json["spool"]["last_ack_at"]).tzinfo is not None

    config = tmp_path / "collector.yaml"
    config.write_text(f"store:\n  url: {collector.app.cfg.store.url}\n")
    agent_id = collector.app.store.list_agents()[0].agent_id
    listed = collector_cli(config, "agent", "list")
    assert agent_id in listed.stdout and " up " in listed.stdout
    shown = collector_cli(config, "agent", "show", agent_id, "--json")
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert detail["placement"]["commune"] == "Thanh Nhật"
    assert detail["snapshot"]["hardware"]["memory"]["total_bytes"] > 0
    link = detail["snapshot"]["link"]
    assert [(p["target"], p["received"]) for p in link["pings"]] == [("127.0.0.1", 3)]
    assert link["throughput"]["bytes"] == 1024 * 1024 and link["throughput"]["bits_per_second"] > 0

    # A credential the collector does not know (a store restored from an old backup, a
    # hand-edited file): refused, but not for good, so the report waits in the spool.
    cred_file = state / "credential.json"
    held = cred_file.read_text()
    cred = json.loads(held)
    cred_file.write_text(json.dumps({**cred, "secret": cred["agent_id"] + ".not-it"}))
    refused = run(*agent, "once")
    assert refused.returncode == 1
    assert "stays in the spool" in refused.stderr and "unknown credential" in refused.stderr
    cred_file.write_text(held)
    # Reachable, but the report is refused and waits: WARNING once it waited long enough.
    waiting = run(*agent, "status")
    assert waiting.returncode == 0 and "1 reports waiting" in waiting.stdout.splitlines()[0]
    behind = run(*agent, "status", "--warn-backlog", "0s")
    assert behind.returncode == 1, behind.stdout
    (first, *_) = behind.stdout.splitlines()
    assert first.startswith("WARNING: 1 reports waiting, the oldest collected ")
    assert first.endswith(" ago: deliveries are failing or behind")

    moved = tmp_path / "moved.yaml"
    moved.write_text('{"collector": {"address": "127.0.0.1:1"}, "probes": {"link": {}}}')
    down = run(str(BIN / "canhgac-agent"), "--config", str(moved), "--state-dir", str(state),
               "status", "-o", "json")  # fmt: skip
    assert down.returncode == 2
    verdict = json.loads(down.stdout)
    assert verdict["status"] == "CRITICAL" and verdict["collector"]["reachable"] is False
    assert verdict["reason"].startswith("collector unreachable: connection refused by 127.0.0.1:1")

    # Revoked: refused for good, said once, and `status` is CRITICAL with what to do.
    assert collector_cli(config, "agent", "revoke", agent_id).returncode == 0
    revoked = run(*agent, "once")
    assert revoked.returncode == 1
    (line,) = revoked.stderr.splitlines()
    assert (
        line.startswith("collected report ") and "; not delivered: revoked by the collector" in line
    )
    assert "re-enroll with a new token" in line
    after = run(*agent, "status")
    assert after.returncode == 2
    assert after.stdout.startswith("CRITICAL: revoked by the collector at ")


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "agent.yaml"
    bad.write_text("spool:\n  max_bytez: 1MiB\n")
    out = run(str(BIN / "canhgac-agent"), "--config", str(bad), "once", "--print")
    assert out.returncode == 2
    assert f"{bad}: spool.max_bytez: unknown key" in out.stderr
    assert "Traceback" not in out.stderr

    missing = run(str(BIN / "canhgac-agent"), "--state-dir", str(tmp_path / "none"), "run")
    assert missing.returncode == 1
    assert "not enrolled" in missing.stderr
    assert "Traceback" not in missing.stderr

    refused = run(
        str(BIN / "canhgac-agent"), "--state-dir", str(tmp_path / "s"), "enroll",
        "--collector", "127.0.0.1:1", "--token", "cgt.x.y",
    )  # fmt: skip
    assert refused.returncode == 1
    assert "canhgac-agent: connection refused by 127.0.0.1:1 (is the collector" in refused.stderr
    assert "UNAVAILABLE" not in refused.stderr and "ConnectionRefusedError" not in refused.stderr

    no_pack = collector_cli(write_config(tmp_path), "rules", "check")
    assert no_pack.returncode == 2
    assert no_pack.stderr == (
        "canhgac-collector: config error: rules.path: not set; name a pack: rules check PATH\n"
    )


def test_enrolling_the_same_machine_twice_keeps_one_agent(
    collector: Running, tmp_path: Path
) -> None:
    """The agent sends the credential it holds: the proof that keeps its id."""
    state = tmp_path / "state"
    ids = []
    for _ in range(2):
        out = run(
            str(BIN / "canhgac-agent"), "--state-dir", str(state), "enroll",
            "--collector", collector.address, "--token", collector.token(),
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        ids.append(json.loads((state / "credential.json").read_text())["agent_id"])
    assert ids[0] == ids[1]
    assert [a.agent_id for a in collector.app.store.list_agents()] == [ids[0]]


def test_meeting_add_list_status_and_cancel(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(
        config.read_text()
        + "meetings:\n  recurring:\n"
        + "    - {title: Giao ban tháng, at: '08:00', weekday: monday, nth: 1}\n"
    )
    added = collector_cli(
        config, "meeting", "add", "--title", "Họp đột xuất", "--at", "2099-12-15 14:00",
        "--rooms", "Thanh Nhật,An Lạc",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("meeting 1: 2099-12-15 14:00 Asia/Ho_Chi_Minh Họp đột xuất")
    listed = collector_cli(config, "meeting", "list", "--ahead", "40d")
    assert listed.returncode == 0, listed.stderr
    assert "Giao ban tháng" in listed.stdout  # within 40 days
    assert "T08:00:00+07:00 " in listed.stdout
    assert "Họp đột xuất" not in listed.stdout  # 2099 is further ahead
    status = collector_cli(config, "meeting", "status", "1", "-o", "json")
    assert status.returncode == 0, status.stderr
    summary = json.loads(status.stdout)
    assert summary["meeting"]["rooms"] == ["Thanh Nhật", "An Lạc"]
    assert (summary["verdict"], summary["expected"]) == ("no-go", 0)  # no room enrolled
    assert collector_cli(config, "meeting", "cancel", "1").returncode == 0
    again = collector_cli(config, "meeting", "cancel", "1")
    assert again.returncode == 1 and again.stderr.strip() == (
        "canhgac-collector: no meeting 1 to cancel"
    )
    bad = collector_cli(config, "meeting", "add", "--title", "x", "--at", "15/12/2099 14h")
    assert bad.returncode == 2 and "--at '15/12/2099 14h'" in bad.stderr


def _store_with_a_firing_alert(tmp_path: Path) -> tuple[Path, str]:
    """A real SQLite store where the real engine fired spool.full on one agent; its config."""
    (tmp_path / "rules.yaml").write_text(SPOOL_RULE)
    rules = {"path": str(tmp_path / "rules.yaml"), "evaluate_every": 3600, "hold": 0}
    running = start_collector(collector_config(tmp_path / "c.db", rules=rules))
    try:
        secret = running.enroll("m-1", "pc-01")
        assert running.client(secret).submit([_spooled(1, time.time(), 500)]).stored == [1]
        assert running.app.alerts is not None
        running.app.alerts.drain()
        running.app.alerts.tick().result(30)
        (agent_id,) = [a.agent_id for a in running.app.store.list_agents()]
    finally:
        running.app.stop(grace=0)
    return write_config(tmp_path, sites=False), agent_id


def test_alerts_list_show_and_ack(tmp_path: Path) -> None:
    config, agent_id = _store_with_a_firing_alert(tmp_path)
    listed = collector_cli(config, "alerts", "list")
    assert listed.returncode == 0, listed.stderr
    (row,) = [line.split() for line in listed.stdout.splitlines() if line.startswith("spool.full")]
    assert row[:4] == ["spool.full", agent_id, "firing", "low"] and "pc-01" in row

    acked = collector_cli(
        config, "alerts", "ack", "spool.full", agent_id, "--author", "an", "--note", "đang xử lý"
    )
    assert acked.returncode == 0, acked.stderr
    assert acked.stdout.strip() == f"alert spool.full on {agent_id} acknowledged by an"
    (acked_row,) = collector_cli(config, "alerts", "list").stdout.splitlines()[1:]
    assert acked_row.split()[-1] == "an"  # the ACK column
    shown = collector_cli(config, "alerts", "show", "spool.full", agent_id, "--json")
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert (detail["open"]["state"], detail["open"]["acked_by"]) == ("firing", "an")
    events = [(h["event"], h["detail"]) for h in detail["history"]]
    assert events[0][0] == "firing" and events[-1] == ("ack", "an: đang xử lý")

    for args, message in [
        (("show", "spool.full", "nobody"), "no alert spool.full on nobody (see `alerts list`)"),
        (
            ("ack", "nope", agent_id, "--author", "an"),
            f"no open alert nope on {agent_id} (see `alerts list`)",
        ),
    ]:
        out = collector_cli(config, "alerts", *args)
        assert (out.returncode, out.stderr) == (1, f"canhgac-collector: {message}\n"), args


def test_alerts_silence_add_list_expire(tmp_path: Path) -> None:
    config = write_config(tmp_path, sites=False)
    added = collector_cli(
        config, "alerts", "silence", "add", "--match", "host=pc-*", "--match", "rule=spool.*",
        "--for", "2h", "--author", "an", "--reason", "thay ổ cứng",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("silence ")
    silence_id = added.stdout.split()[1]
    listed = collector_cli(config, "alerts", "silence", "list")
    (row,) = [line for line in listed.stdout.splitlines() if line.startswith(silence_id)]
    assert '"host": "pc-*"' in row and '"rule": "spool.*"' in row and "thay ổ cứng" in row

    expired = collector_cli(config, "alerts", "silence", "expire", silence_id)
    assert expired.returncode == 0, expired.stderr
    assert silence_id not in collector_cli(config, "alerts", "silence", "list").stdout
    again = collector_cli(config, "alerts", "silence", "expire", silence_id)
    assert (again.returncode, again.stderr) == (
        1,
        f"canhgac-collector: no active silence {silence_id!r} (see `alerts silence list`)\n",
    )

    for bad, option in [
        (("--match", "colour=red", "--for", "2h"), "--match 'colour=red'"),
        (("--match", "host", "--for", "2h"), "--match 'host'"),
        (("--for", "2h"), "--match: at least one"),
        (("--match", "host=pc-1", "--for", "soon"), "--for: "),
    ]:
        out = collector_cli(
            config, "alerts", "silence", "add", *bad, "--author", "an", "--reason", "r"
        )
        assert out.returncode == 2, (bad, out.stderr)
        assert option in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert collector_cli(config, "alerts", "silence", "list").stdout.count("\n") == 1  # header


def test_alerts_maintenance_add_list_delete(tmp_path: Path) -> None:
    config = write_config(tmp_path, sites=False)
    window = ("--weekdays", "sat,sun", "--start", "22:00", "--duration", "6h")
    who = ("--author", "an", "--reason", "sao lưu cuối tuần")
    added = collector_cli(
        config, "alerts", "maintenance", "add", "--match", "commune=Thanh*", *window, *who
    )
    assert added.returncode == 0, added.stderr
    window_id = added.stdout.split()[2].rstrip(":")
    assert added.stdout.strip() == f"maintenance window {window_id}: sat,sun 22:00 for 6h"
    listed = collector_cli(config, "alerts", "maintenance", "list")
    (row,) = [line for line in listed.stdout.splitlines() if line.startswith(window_id)]
    assert row.split()[3:6] == ["sat,sun", "22:00", "6h"] and "Thanh*" in row

    deleted = collector_cli(config, "alerts", "maintenance", "delete", window_id)
    assert deleted.returncode == 0, deleted.stderr
    assert window_id not in collector_cli(config, "alerts", "maintenance", "list").stdout
    again = collector_cli(config, "alerts", "maintenance", "delete", window_id)
    assert (again.returncode, again.stderr) == (
        1,
        f"canhgac-collector: no maintenance window {window_id!r}\n",
    )

    for flag, value in [
        ("--start", "25:00"),
        ("--start", "10pm"),
        ("--weekdays", "fri,xyz"),
        ("--duration", "soon"),
    ]:
        args = dict(zip(window[::2], window[1::2], strict=True)) | {flag: value}
        out = collector_cli(
            config, "alerts", "maintenance", "add", "--match", "host=pc-1",
            *[x for kv in args.items() for x in kv], *who,
        )  # fmt: skip
        assert out.returncode == 2, (flag, value, out.stderr)
        assert flag in out.stderr and "Traceback" not in out.stderr, out.stderr
    bad_match = collector_cli(
        config, "alerts", "maintenance", "add", "--match", "x=1", *window, *who
    )
    assert bad_match.returncode == 2 and "--match 'x=1'" in bad_match.stderr


def _times(value: object, key: str = "") -> list[tuple[str, object]]:
    """Every (key, value) whose key names a time, anywhere in a JSON document."""
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in _times(v, k)]
    if isinstance(value, list):
        return [t for v in value for t in _times(v, key)]
    time_key = key.endswith(("_at", "_since")) or key in ("started", "fixed", "recorded")
    return [(key, value)] if time_key else []


def test_every_list_and_show_command_speaks_json(tmp_path: Path) -> None:
    """--json (or -o json) on each list and show command: times ISO 8601 with their zone,
    null for what is unknown; the text form says the same for people."""
    config, agent_id = _store_with_a_firing_alert(tmp_path)
    assert collector_cli(config, "token", "create", "--district", "Hạ Lang", "--role", "server")
    who = ("--author", "an", "--reason", "r")
    assert (
        collector_cli(
            config, "alerts", "silence", "add", "--match", "host=pc-*", "--for", "2h", *who
        ).returncode
        == 0
    )
    assert collector_cli(
        config, "alerts", "maintenance", "add", "--match", "host=pc-1", "--weekdays", "sun",
        "--start", "22:00", "--duration", "90m", *who,
    ).returncode == 0  # fmt: skip
    at = "2099-12-15 14:00"
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    assert store.mail.enqueue_mail(
        "cntt", ["cntt@halang.vn"], "firing", subject="s", text="t", html="h", now=time.time()
    )
    store.close()
    assert collector_cli(config, "meeting", "add", "--title", "Họp", "--at", at).returncode == 0
    commands = [
        ("token", "list"),
        ("agent", "list"),
        ("agent", "show", agent_id),
        ("alerts", "list"),
        ("alerts", "show", "spool.full", agent_id),
        ("alerts", "silence", "list"),
        ("alerts", "maintenance", "list"),
        ("notify", "outbox", "--all"),
        ("meeting", "list", "--ahead", "40000d"),
        ("meeting", "status", "1"),
    ]
    seen: dict[str, Any] = {}
    for command in commands:
        for flags in (("--json",), ("-o", "json")):
            out = collector_cli(config, *command, *flags)
            assert out.returncode == 0, (command, out.stderr)
            document = json.loads(out.stdout)
            assert document, command  # every store above has something to show
            seen[" ".join(command[:2])] = document
        text = collector_cli(config, *command)
        assert text.returncode == 0 and not text.stdout.lstrip().startswith(("[", "{")), command
        times = _times(document)
        assert times or command[1] == "maintenance", command  # weekly windows: HH:MM
        for key, value in times:
            if value is not None:
                assert isinstance(value, str), (command, key, value)
                assert datetime.fromisoformat(value).utcoffset() is not None, (command, key)
        assert "-" not in [v for _, v in times] and 0.0 not in [v for _, v in times], command

    (agent,) = seen["agent list"]
    assert agent["agent_id"] == agent_id and agent["hostname"] == "pc-01"
    assert agent["revoked_at"] is None and agent["possible_clone_of"] is None
    assert agent["commune"] == "Thanh Nhật" and agent["unit"] is None  # empty is null
    (token,) = [t for t in seen["token list"] if t["role"] == "server"]
    assert (token["max_uses"], token["revoked_at"], token["commune"]) == (None, None, None)
    (window,) = seen["alerts maintenance"]
    assert window["duration_seconds"] == 5400 and window["weekdays"] == ["sun"]
    (meeting,) = seen["meeting list"]
    assert meeting["starts_at"] == "2099-12-15T14:00:00+07:00"  # the config's timezone
    shown = seen["agent show"]
    assert isinstance(shown, dict) and shown["revoked_at"] is None
    assert datetime.fromisoformat(shown["enrolled_at"]).tzinfo is not None


def test_durations_on_the_command_line_as_in_the_configs(tmp_path: Path) -> None:
    """One parser (canhgac_common.units): `--interval 15s` like `interval: 15s` in a config."""
    agent = [str(BIN / "canhgac-agent"), "--state-dir", str(tmp_path / "none")]
    accepted = run(*agent, "run", "--interval", "15s")
    assert accepted.returncode == 1 and "not enrolled" in accepted.stderr  # parsed, went on
    refused = run(*agent, "run", "--interval", "soon")
    assert refused.returncode == 2
    assert "argument --interval: not a duration: 'soon' (use e.g. 30s" in refused.stderr
    assert run(*agent, "status", "--timeout", "1m30s").returncode == 2  # not enrolled: CRITICAL

    config = write_config(tmp_path, sites=False)
    window = ("--weekdays", "sun", "--start", "22:00", "--match", "host=pc-1")
    who = ("--author", "an", "--reason", "r")
    added = collector_cli(
        config, "alerts", "maintenance", "add", *window, "--duration", "90m", *who
    )
    assert added.stdout.strip().endswith("sun 22:00 for 1h30m"), added.stdout
    listed = collector_cli(config, "alerts", "maintenance", "list")
    assert " 1h30m " in listed.stdout  # written back the way it was typed


def test_a_collector_that_never_answers_is_named_with_the_wait(tmp_path: Path) -> None:
    """A port that accepts and then says nothing (a stalled collector, a black-holing
    middlebox): "no answer from HOST:PORT in 1 s", not a status code."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts, nobody reads
        port = silent.getsockname()[1]
        config = tmp_path / "agent.yaml"
        config.write_text('{"collector": {"timeout": "1s"}}')
        out = run(
            str(BIN / "canhgac-agent"), "--config", str(config), "--state-dir", str(tmp_path),
            "enroll", "--collector", f"127.0.0.1:{port}", "--token", "cgt.x.y",
        )  # fmt: skip
    assert out.returncode == 1
    assert out.stderr.strip() == f"canhgac-agent: no answer from 127.0.0.1:{port} in 1 s"


def test_the_collector_cli_finds_its_config_or_says_where_it_looked(tmp_path: Path) -> None:
    """No --config: $CANHGAC_CONFIG, else /etc/canhgac/collector.yaml; never the built-in
    defaults, which would create an empty store that nobody looks at."""
    env = {k: v for k, v in os.environ.items() if k != CONFIG_ENV}
    cli = str(BIN / "canhgac-collector")
    if Path("/etc/canhgac/collector.yaml").exists():
        pytest.skip("this machine has /etc/canhgac/collector.yaml: the default is found")
    lost = run(cli, "agent", "list", cwd=tmp_path, env=env)
    assert lost.returncode == 2
    assert lost.stderr == (
        "canhgac-collector: config error: no config: --config not given, CANHGAC_CONFIG not set,"
        " and /etc/canhgac/collector.yaml does not exist (start from"
        " configs/collector.example.yaml)\n"
    )
    assert list(tmp_path.iterdir()) == [] and not Path("/var/lib/canhgac/canhgac.db").exists()

    config = write_config(tmp_path, sites=False)
    found = run(cli, "agent", "list", "--json", cwd=tmp_path, env={**env, CONFIG_ENV: str(config)})
    assert (found.returncode, found.stdout.strip()) == (0, "[]"), found.stderr
    assert (tmp_path / "c.db").exists()  # the store the config names, and only that one

    missing = run(cli, "agent", "list", env={**env, CONFIG_ENV: str(tmp_path / "nope.yaml")})
    assert missing.returncode == 2
    assert f"{tmp_path / 'nope.yaml'}: cannot read config: No such file" in missing.stderr


def test_store_stats_and_prune_dry_run_then_prune(tmp_path: Path) -> None:
    config = write_config(tmp_path, sites=False)
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    now = time.time()
    place = Placement("Cao Bằng", "Hạ Lang", "Đức Quang", "", "server")
    _, token = store.create_token(place, 1e9, now - 50 * 86400)
    facts = MachineFacts("m", "pc-1", "Linux", "12", "0.1.0")
    agent = store.enroll(token, facts, now - 50 * 86400).agent.agent_id
    for seq, age in enumerate((40, 35, 2, 1), start=1):  # days since the collector received it
        at = now - age * 86400
        store.ingest(agent, [Report(seq, "b", at - 5, "0.1.0")], now=at)
    store.close()

    stats = collector_cli(config, "store", "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    tables = {t["name"]: t for t in json.loads(stats.stdout)["tables"]}
    assert tables["reports"]["rows"] == 4
    oldest = datetime.fromisoformat(tables["reports"]["oldest"]).timestamp()
    assert abs(oldest - (now - 40 * 86400)) < 1
    assert tables["reports"]["bytes"] > 0 and tables["rollups"]["rows"] == 0
    shown = collector_cli(config, "store", "stats")
    assert shown.returncode == 0 and "reports" in shown.stdout
    assert "cơ sở dữ liệu / database" in shown.stdout

    dry = collector_cli(config, "store", "prune", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert planned["dry_run"] is True
    assert planned["rows"]["reports to roll up"] == 4
    assert planned["rows"]["reports"] == 2  # past the 30 days of raw retention
    assert planned["rows"]["reports to pack"] == 2  # past `retention.pack` (1 hour)
    assert json.loads(collector_cli(config, "store", "stats", "--json").stdout)["tables"] == list(
        tables.values()
    )  # a dry run changes nothing

    pruned = collector_cli(config, "store", "prune")
    assert pruned.returncode == 0, pruned.stderr
    assert "đã xử lý / processed" in pruned.stdout
    listed = json.loads(collector_cli(config, "store", "stats", "--json").stdout)["tables"]
    after = {t["name"]: t for t in listed}
    assert after["reports"]["rows"] == 0 and after["rollups"]["rows"] > 0
    assert after["report_blocks"]["rows"] == 2  # a day apart: two windows
    stats_after = json.loads(collector_cli(config, "store", "stats", "--json").stdout)
    assert stats_after["packed_reports"] == 2
    assert "báo cáo đã nén / packed reports: 2" in collector_cli(config, "store", "stats").stdout
    again = json.loads(collector_cli(config, "store", "prune", "--dry-run", "--json").stdout)
    assert again["rows"]["reports"] == 0 and again["rows"]["reports to roll up"] == 0
    assert again["rows"]["reports to pack"] == 0


def test_meeting_add_refuses_unknown_rooms_and_the_past(tmp_path: Path) -> None:
    config = write_config(tmp_path)  # the sites file knows Hạ Lang's communes
    meeting = ("meeting", "add", "--title", "Họp")
    typo = collector_cli(config, *meeting, "--at", "2099-12-15 14:00", "--rooms", "Thanh Nhat")
    assert typo.returncode == 2
    assert "--rooms: unknown 'Thanh Nhat': name districts, communes" in typo.stderr
    assert "Thanh Nhật" in typo.stderr  # what it could have been
    past = collector_cli(config, *meeting, "--at", "2020-01-01 08:00")
    assert past.returncode == 2
    assert "--at '2020-01-01 08:00': in the past (Asia/Ho_Chi_Minh)" in past.stderr
    assert collector_cli(config, "meeting", "list", "--ahead", "40000d").stdout.count("\n") == 1
    # Typed in NFD (a combining dot below and hook above): the same commune.
    nfd = unicodedata.normalize("NFD", "thanh nhật")
    ok = collector_cli(config, *meeting, "--at", "2099-12-15 14:00", "--rooms", nfd)
    assert ok.returncode == 0, ok.stderr
    shown = json.loads(collector_cli(config, "meeting", "status", "1", "--json").stdout)
    assert shown["meeting"]["rooms"] == ["thanh nhật"]
    assert shown["meeting"]["rooms"][0] == unicodedata.normalize("NFC", "thanh nhật")


def test_names_typed_in_nfd_are_the_names_in_the_sites_file(tmp_path: Path) -> None:
    """A name that looks the same is the same: NFC at the command line and in every file."""
    nfd = unicodedata.normalize("NFD", "Thanh Nhật")
    assert nfd != "Thanh Nhật"
    config = write_config(tmp_path)
    made = collector_cli(
        config, "token", "create", "--district", unicodedata.normalize("NFD", "Hạ Lang"),
        "--commune", nfd, "--role", "workstation",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    (token,) = json.loads(collector_cli(config, "token", "list", "--json").stdout)
    assert (token["district"], token["commune"]) == ("Hạ Lang", "Thanh Nhật")

    # A sites file and a config written by an editor that saved NFD.
    repo = Path(__file__).resolve().parents[2]
    example = (repo / "configs" / "sites.example.yaml").read_text(encoding="utf-8")
    (tmp_path / "sites.yaml").write_text(unicodedata.normalize("NFD", example), encoding="utf-8")
    nfd_config = tmp_path / "nfd.yaml"
    nfd_config.write_text(
        f"store:\n  url: sqlite:///{tmp_path / 'c.db'}\nsites_file: {tmp_path / 'sites.yaml'}\n"
        + unicodedata.normalize("NFD", "timezone: Asia/Ho_Chi_Minh\n")
    )
    again = collector_cli(
        nfd_config, "token", "create", "--district", "Hạ Lang", "--commune", "Thanh Nhật",
        "--role", "workstation",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr


def test_a_maintenance_window_longer_than_its_recurrence_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, sites=False)
    base = ("alerts", "maintenance", "add", "--match", "host=pc-1", "--start", "22:00")
    who = ("--author", "an", "--reason", "r")
    for days, duration, most in [
        ("sat,sun", "25h", "1d"),
        ("sun", "8d", "1w"),
        ("mon,thu", "4d", "3d"),
    ]:
        out = collector_cli(config, *base, "--weekdays", days, "--duration", duration, *who)
        assert out.returncode == 2, (days, duration, out.stdout)
        assert f"at most {most}, the time until it opens again" in out.stderr, out.stderr
    assert (
        collector_cli(config, *base, "--weekdays", "sat,sun", "--duration", "1d", *who).returncode
        == 0
    )
    assert (
        collector_cli(config, *base, "--weekdays", "mon,thu", "--duration", "3d", *who).returncode
        == 0
    )


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return int(s.getsockname()[1])


def _serve_config(tmp_path: Path, grpc_port: int, http_port: int) -> Path:
    config = write_config(tmp_path)
    config.write_text(
        config.read_text()
        + f"grpc_listen: 127.0.0.1:{grpc_port}\nhttp_listen: 127.0.0.1:{http_port}\n"
    )
    return config


def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    """`agent list | head`: the reader goes away; the command stops without a traceback."""
    config = write_config(tmp_path)
    assert collector_cli(config, "token", "create", "--district", "Hạ Lang", "--role", "server")
    agent = [str(BIN / "canhgac-agent"), "--state-dir", str(tmp_path / "none"), "status"]
    for argv in ([str(BIN / "canhgac-collector"), "--config", str(config), "token", "list"], agent):
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # before the command writes a byte: its first write fails
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 141, (argv, err)  # as a shell reports SIGPIPE
        assert err == "", (argv, err)
    piped = run("sh", "-c", f"'{BIN}/canhgac-collector' --config '{config}' token list | head -1")
    assert piped.returncode == 0 and piped.stdout.startswith("ID ") and piped.stderr == ""


def test_serve_on_a_busy_port_says_so_and_how_to_choose_another(tmp_path: Path) -> None:
    """Our one line, and nothing of grpc's core (`E1203 … add_port.cc:83] Failed to add port`),
    in English and in Vietnamese. Before failing on the HTTP port, the collector has logged
    that gRPC listens: that line is ours too, and true."""
    env = {k: v for k, v in os.environ.items() if k != "GRPC_VERBOSITY"}
    ours = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+[+-]\d\d:\d\d INFO collector\.server: ")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = taken.getsockname()[1]
        for grpc_port, http_port, key in [(busy, _free_port(), "grpc_listen"),
                                          (_free_port(), busy, "http_listen")]:  # fmt: skip
            config = _serve_config(tmp_path, grpc_port, http_port)
            out = run(str(BIN / "canhgac-collector"), "--config", str(config), "serve", env=env)
            assert out.returncode == 2, out.stderr
            *logged, line = out.stderr.splitlines()
            assert [x for x in logged if not ours.match(x)] == [], out.stderr
            assert logged == ([] if key == "grpc_listen" else logged[:1])
            assert line == (
                f"canhgac-collector: config error: {key} 127.0.0.1:{busy}: cannot listen: the "
                "port is in use (another collector still running, or another program): stop "
                f"it, or choose a free port with {key}: HOST:PORT in the config"
            )
            vi = run(
                str(BIN / "canhgac-collector"), "--lang", "vi", "--config", str(config), "serve",
                env=env,
            )  # fmt: skip
            assert vi.returncode == 2
            assert vi.stderr.splitlines()[-1] == (
                f"canhgac-collector: lỗi cấu hình: {key} 127.0.0.1:{busy}: không mở được cổng: "
                "cổng đang bị chiếm (một máy chủ thu thập khác vẫn chạy, hoặc chương trình "
                f"khác): hãy dừng nó, hoặc chọn cổng trống bằng {key}: HOST:PORT trong cấu hình"
            )
            if key == "grpc_listen":
                assert vi.stderr.count("\n") == 1, vi.stderr


def test_scrapers_that_hang_up_mid_answer_leave_no_traceback(tmp_path: Path) -> None:
    """A scraper that disconnects (a timeout, Ctrl-C on curl) while /metrics is written."""
    grpc_port, http_port = _free_port(), _free_port()
    config = _serve_config(tmp_path, grpc_port, http_port)
    serve = subprocess.Popen(
        [str(BIN / "canhgac-collector"), "--config", str(config), "serve"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert serve.stdout is not None
        assert serve.stdout.readline().startswith("canhgac-collector ")  # listening
        fleet = run(
            sys.executable, "-m", "bench.fleet", "--collector", f"127.0.0.1:{grpc_port}",
            "--config", str(config), "--agents", "40", "--rounds", "1",
        )  # fmt: skip
        assert fleet.returncode == 0, fleet.stderr
        request = b"GET /metrics HTTP/1.1\r\nHost: c\r\nAccept-Encoding: identity\r\n\r\n"
        for i in range(30):
            client = socket.socket()
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the answer stalls
            client.connect(("127.0.0.1", http_port))
            client.sendall(request)
            if i % 2:
                client.recv(100)  # part of the answer, then gone
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()  # a reset, as a killed scraper's kernel sends
        with socket.create_connection(("127.0.0.1", http_port)) as still:
            still.sendall(request)
            head = still.recv(100)
        assert head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200"), head
    finally:
        serve.send_signal(signal.SIGTERM)
        _, err = serve.communicate(timeout=60)
    assert serve.returncode == 0, err
    assert "Traceback" not in err and "Error" not in err, err


REPO = Path(__file__).resolve().parents[2]


def _run_local(var_root: Path, demo: bool) -> tuple[subprocess.Popen[str], list[str], Path]:
    """scripts/run-local.sh (`make run`, `make demo`) in its own session, as a terminal runs
    it, its output read all along (as a terminal does); returns once it says it is running,
    with its output so far and the collector config it wrote."""
    grpc_port, http_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "VAR_ROOT": str(var_root),
        "GRPC_PORT": str(grpc_port),
        "HTTP_PORT": str(http_port),
        "DEMO": "1" if demo else "0",
    }
    proc = subprocess.Popen(
        [str(REPO / "scripts" / "run-local.sh")], cwd=REPO, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(proc.stdout or ()), name=f"run-local-{proc.pid}", daemon=True
    )
    reader.start()
    wait_until(
        lambda: any("Canh Gác is running." in line for line in lines) or proc.poll() is not None,
        120,
        "run-local.sh to start",
    )
    assert proc.poll() is None, "".join(lines)
    return proc, lines, (var_root / "demo" if demo else var_root) / "collector.yaml"


def _ctrl_c(proc: subprocess.Popen[str], lines: list[str]) -> str:
    """SIGINT to the whole process group, as Ctrl-C in a terminal sends it; then nothing of
    the group may be left."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        # Its last line may still be in the pipe: read to the end before looking at them.
        for reader in threading.enumerate():
            if reader.name == f"run-local-{proc.pid}":
                reader.join(30)
        return "".join(lines)
    except subprocess.TimeoutExpired:
        pass
    left = run("ps", "-o", "pid,args", "-g", str(proc.pid)).stdout
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError(f"left running after Ctrl-C:\n{left}\n{''.join(lines)}")


def test_make_demo_stops_on_one_ctrl_c_and_leaves_make_run_no_ghosts(tmp_path: Path) -> None:
    demo, demo_lines, demo_config = _run_local(tmp_path, demo=True)
    try:
        wait_until(lambda: "enrolled" in (tmp_path / "demo" / "fleet.log").read_text()
                   if (tmp_path / "demo" / "fleet.log").exists() else False,
                   90, "the fleet simulator to enroll")  # fmt: skip
        listed = collector_cli(demo_config, "agent", "list", "--json")
        assert len(json.loads(listed.stdout)) > 40, listed.stderr  # the simulated district
    finally:
        out = _ctrl_c(demo, demo_lines)
    assert "stopped collector, agent and fleet simulator" in out, out

    plain, plain_lines, config = _run_local(tmp_path, demo=False)
    try:
        agents = json.loads(collector_cli(config, "agent", "list", "--json").stdout)
        assert [a["commune"] for a in agents] == ["Thanh Nhật"]  # this machine only
    finally:
        _ctrl_c(plain, plain_lines)


def test_make_run_on_a_busy_port_says_so_and_how_to_choose_another(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = taken.getsockname()[1]
        out = run(
            str(REPO / "scripts" / "run-local.sh"), cwd=REPO,
            env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}",
                 "VAR_ROOT": str(tmp_path), "GRPC_PORT": str(busy)},
        )  # fmt: skip
    assert out.returncode == 1
    assert f"port {busy} on 127.0.0.1 is in use" in out.stderr
    assert "make run GRPC_PORT=14317 HTTP_PORT=19108" in out.stderr
    assert not (tmp_path / "canhgac.db").exists()  # nothing started


def test_argparse_errors_and_help_are_vietnamese_first(tmp_path: Path) -> None:
    """argparse's own words, not only ours: the usage line, "error:", a required argument, an
    unknown one, an invalid choice — Vietnamese by default, English with --lang en."""
    plain = {k: v for k, v in os.environ.items() if not k.startswith(("LANG", "LC_"))}
    collector = str(BIN / "canhgac-collector")
    missing = run(collector, "agent", "retire", env=plain)
    assert missing.returncode == 2
    assert missing.stderr.splitlines() == [
        "cách dùng: canhgac-collector agent retire [-h] [--reason TEXT] agent_id",
        "canhgac-collector agent retire: lỗi: thiếu các đối số bắt buộc: agent_id",
    ]
    unknown = run(str(BIN / "canhgac-agent"), "status", "--bogus", env=plain)
    assert unknown.returncode == 2
    assert unknown.stderr.splitlines()[-1] == (
        "canhgac-agent: lỗi: không nhận ra các đối số: --bogus"
    )
    choice = run(str(BIN / "canhgac-agent"), "--lang", "fr", "status", env=plain)
    assert choice.returncode == 2 and "Traceback" not in choice.stderr
    assert choice.stderr.splitlines()[-1] == (
        "canhgac-agent: lỗi: đối số --lang: lựa chọn không hợp lệ: 'fr' (chọn một trong 'vi', 'en')"
    )
    helped = run(collector, "agent", "retire", "--help", env=plain)
    assert "-h, --help     hiện trợ giúp này rồi thoát" in helped.stdout
    assert helped.stdout.startswith("cách dùng: ") and "đối số vị trí:" in helped.stdout
    english = run(collector, "--lang", "en", "agent", "retire", env=plain)
    assert english.stderr.splitlines()[-1] == (
        "canhgac-collector agent retire: error: the following arguments are required: agent_id"
    )


def test_config_and_store_errors_are_vietnamese_first_naming_file_and_key(
    tmp_path: Path,
) -> None:
    """What the libraries raise (config keys, values, YAML, the sites file, the store) in the
    CLI's language; the file, the key path and the values stay as written."""
    plain = {k: v for k, v in os.environ.items() if not k.startswith(("LANG", "LC_"))}
    bad = tmp_path / "collector.yaml"
    bad.write_text(
        f"store:\n  url: sqlite:///{tmp_path / 'c.db'}\nreport_interval: 15x\n"
        "limits:\n  workerz: 4\n  workers: 0\n",
        encoding="utf-8",
    )
    out = run(str(BIN / "canhgac-collector"), "--config", str(bad), "agent", "list", env=plain)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "canhgac-collector: lỗi cấu hình:",
        f"{bad}: report_interval: không phải khoảng thời gian: '15x' (dùng ví dụ 30s, 15m, 2h, 7d)",
        f"{bad}: limits.workers: phải ít nhất là 1, không phải 0",
        f"{bad}: limits.workerz: khoá không hợp lệ",
    ]
    english = run(str(BIN / "canhgac-collector"), "--config", str(bad), "agent", "list")
    assert f"{bad}: limits.workerz: unknown key" in english.stderr.splitlines()
    assert f"{bad}: limits.workers: must be at least 1, not 0" in english.stderr.splitlines()

    agent_bad = tmp_path / "agent.yaml"
    agent_bad.write_text("spool:\n  max_bytez: 1MiB\ndelivery:\n  gzip: 'yes'\n")
    out = run(str(BIN / "canhgac-agent"), "--config", str(agent_bad), "once", "--print", env=plain)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "canhgac-agent: lỗi cấu hình:",
        f"{agent_bad}: spool.max_bytez: khoá không hợp lệ",
        f"{agent_bad}: delivery.gzip: khoá không hợp lệ",
    ]
    broken = tmp_path / "broken.yaml"
    broken.write_text("store: [\n")
    out = run(str(BIN / "canhgac-collector"), "--config", str(broken), "agent", "list", env=plain)
    assert out.stderr.startswith(f"canhgac-collector: lỗi cấu hình: {broken}: dòng 2: YAML không")

    config = write_config(tmp_path)
    vi = [str(BIN / "canhgac-collector"), "--config", str(config)]
    place = run(
        *vi,
        "token",
        "create",
        "--district",
        "Hạ Lang",
        "--commune",
        "Thanh Nhat",
        "--role",
        "workstation",
        env=plain,
    )
    assert place.returncode == 2
    assert "không có xã 'Thanh Nhat' trong Hạ Lang (đã biết: " in place.stderr
    missing = run(*vi, "agent", "retire", "a-nobody", env=plain)
    assert missing.returncode == 1
    assert (
        missing.stderr == "canhgac-collector: không có agent 'a-nobody' (xem `agent list --all`)\n"
    )


def test_vietnamese_first_english_by_option_or_locale(tmp_path: Path) -> None:
    """Both binaries speak Vietnamese unless told otherwise (gettext catalogs)."""
    plain = {k: v for k, v in os.environ.items() if not k.startswith(("LANG", "LC_"))}
    config = write_config(tmp_path, sites=False)
    collector = [str(BIN / "canhgac-collector"), "--config", str(config)]
    agent = [str(BIN / "canhgac-agent"), "--state-dir", str(tmp_path / "none")]

    helped = run(*collector, "--help", env={**plain, "LANG": "C.UTF-8"})
    assert "Máy chủ thu thập Canh Gác" in helped.stdout
    assert "chạy máy chủ gRPC và HTTP cho đến khi dừng" in helped.stdout
    listed = run(*collector, "token", "list", env=plain)
    assert listed.stdout.split() == ["MÃ", "TRẠNG", "THÁI", "HUYỆN", "XÃ", "ĐƠN", "VỊ", "VAI",
                                     "TRÒ", "LẦN", "DÙNG", "HẾT", "HẠN"]  # fmt: skip
    assert run(*collector, "token", "list", "--json", env=plain).stdout.strip() == "[]"
    status = run(*agent, "status", env=plain)
    assert status.returncode == 2
    assert status.stdout.splitlines()[0].startswith("CRITICAL: chưa đăng ký: ")
    assert "hàng đợi:  trống (agent chưa chạy lần nào)" in status.stdout
    bad = run(*collector, "alerts", "maintenance", "add", "--match", "host=a", "--weekdays",
              "sun", "--start", "9pm", "--duration", "1h", "--author", "a", "--reason", "r",
              env=plain)  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr == (
        "canhgac-collector: lỗi cấu hình: --start '9pm': dùng dạng HH:MM "
        "(giờ địa phương của máy chủ thu thập)\n"
    )

    refused = run(*agent, "enroll", "--collector", "127.0.0.1:1", "--token", "cgt.x.y", env=plain)
    assert refused.stderr == (
        "canhgac-agent: 127.0.0.1:1 từ chối kết nối (máy chủ thu thập có đang chạy, đúng cổng"
        " này không?)\n"
    )

    for english in ({**plain, "LANG": "en_US.UTF-8"}, plain):
        flag = () if "LANG" in english else ("--lang", "en")
        status = run(*agent[:1], *flag, *agent[1:], "status", env=english)
        assert status.stdout.splitlines()[0].startswith("CRITICAL: not enrolled: "), flag
        helped = run(*collector[:1], *flag, *collector[1:], "--help", env=english)
        assert "run the gRPC and HTTP servers until stopped" in helped.stdout, flag
