"""Field events with real processes: a reinstall, a lost or corrupt spool, a cloned image, a
full disk, a poisoned report and a link that drops packets. Nothing accepted is lost silently."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from agent.probes import PROBES
from agent.transport.client import DeliveryError
from canhgac_proto.v1 import collector_pb2 as pb
from collector.model import SEQ_BITS, Placement
from tests.integration.harness import (
    Running,
    collector_config,
    free_port,
    start_collector,
    stored_seqs,
    wait_until,
)
from tests.integration.netns import Lab, require_tool

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
# Only the hardware probe: the others would look for clamd, a gateway, a camera.
# These tests are about delivery: one small, fast probe (every other one off, new ones too).
ONLY_HARDWARE = {"probes": {name: {"enabled": False} for name in PROBES if name != "hardware"}}


def _config(path: Path, **extra: object) -> Path:
    path.write_text(json.dumps({**ONLY_HARDWARE, **extra}), encoding="utf-8")  # JSON is YAML
    return path


def _agent(config: Path, state: Path) -> list[str]:
    return [str(BIN / "canhgac-agent"), "--config", str(config), "--state-dir", str(state)]


def _enroll(agent: list[str], address: str, token: str) -> None:
    done = subprocess.run(
        [*agent, "enroll", "--collector", address, "--token", token],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _run(agent: list[str], seconds: float, *, wrap: tuple[str, ...] = ()) -> str:
    """The agent service for `seconds` once it runs (reports every 0.1 s), stopped by SIGTERM;
    its log. The clock starts at its "reporting to" line, so a slow start on a loaded machine
    does not shorten the run."""
    proc = subprocess.Popen(
        [*wrap, *agent, "run", "--interval", "0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stderr is not None
    lines: list[str] = []
    running = threading.Event()

    def read(stream: IO[str]) -> None:
        for line in stream:
            lines.append(line)
            if " reporting to " in line:
                running.set()

    reader = threading.Thread(target=read, args=(proc.stderr,), daemon=True)
    reader.start()
    running.wait(60)
    time.sleep(seconds)
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    reader.join(10)
    err = "".join(lines)
    assert running.is_set(), err
    assert proc.returncode == 0, err
    return err


def _status(agent: list[str]) -> str:
    return subprocess.run([*agent, "status"], capture_output=True, text=True, check=False).stdout


def _agent_id(collector: Running) -> str:
    (agent,) = collector.app.store.list_agents()
    return agent.agent_id


def _clone_marks(collector: Running, agent_id: str) -> tuple[float | None, int]:
    """(clone_suspected_at, seq_conflicts) straight from the agents table."""
    with collector.app.store.engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT clone_suspected_at, seq_conflicts FROM agents WHERE agent_id = ?", (agent_id,)
        ).one()
    return row[0], int(row[1])


def _flush(agent: list[str]) -> None:
    """One more cycle that delivers what is left."""
    done = subprocess.run([*agent, "once"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


# --- 1. reinstall, lost spool, clone ---------------------------------------------------------


def test_reinstall_keeping_the_credential_loses_no_report(
    collector: Running, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    agent = _agent(_config(tmp_path / "agent.yaml"), state)
    _enroll(agent, collector.address, collector.token())
    _run(agent, 1.5)
    agent_id = _agent_id(collector)
    before = len(collector.app.store.report_seqs(agent_id))
    assert before > 3
    # Reinstalled: program data wiped but for the credential (kept by the installer).
    for f in state.iterdir():
        if f.name != "credential.json":
            f.unlink()
    _run(agent, 1.5)
    _flush(agent)
    after = collector.app.store.report_seqs(agent_id)
    collected_again = int(_status(agent).split("last seq ")[1].split()[0])
    assert collected_again > 3
    # Every report of the new installation is stored, after the old ones: none acked as a
    # duplicate of the old spool's seqs (on the code before spool ids, all of them were).
    assert len(after) == before + collected_again
    assert after == sorted(after) and after[-1] >> SEQ_BITS == 1
    spools = collector.app.store.spools(agent_id)
    assert [(s["ordinal"], s["reports"]) for s in spools] == [
        (0, before),
        (1, collected_again),
    ]
    assert collector.app.store.get_agent(agent_id).last_seq == after[-1]
    print(f"reinstall: {before} reports before, {collected_again} after, 0 lost")


def test_reinstall_wiping_everything_then_a_replacing_token_loses_no_report(
    collector: Running, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    agent = _agent(_config(tmp_path / "agent.yaml"), state)
    _enroll(agent, collector.address, collector.token())
    _run(agent, 1.5)
    agent_id = _agent_id(collector)
    before = len(collector.app.store.report_seqs(agent_id))
    shutil.rmtree(state)  # re-imaged: credential, spool and marker gone
    place = Placement("Cao Bằng", "Hạ Lang", "Thanh Nhật", "", "workstation")
    _, token = collector.app.store.create_token(place, 3600, time.time(), 1, replaces=agent_id)
    _enroll(agent, collector.address, token)  # the operator's answer: same machine, same agent
    _run(agent, 1.5)
    _flush(agent)
    assert _agent_id(collector) == agent_id
    after = collector.app.store.report_seqs(agent_id)
    collected_again = int(_status(agent).split("last seq ")[1].split()[0])
    assert collected_again > 3
    assert len(after) == before + collected_again  # every new report stored, none a duplicate
    print(f"reinstall (wiped, re-enrolled): {before} reports before, {collected_again} after")


@pytest.mark.parametrize("damage", ["corrupt", "zero-byte", "deleted"])
def test_spool_lost_is_replaced_and_the_reset_reaches_the_collector(
    collector: Running, tmp_path: Path, damage: str
) -> None:
    state = tmp_path / "state"
    agent = _agent(_config(tmp_path / "agent.yaml"), state)
    _enroll(agent, collector.address, collector.token())
    _run(agent, 1.0)
    agent_id = _agent_id(collector)
    before = len(collector.app.store.report_seqs(agent_id))
    spool = state / "spool.db"
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{spool}{suffix}")
    if damage == "corrupt":
        spool.write_bytes(b"not a database, the disk ate it " * 200)
    elif damage == "zero-byte":
        spool.write_bytes(b"")
    else:
        spool.unlink()
    log = _run(agent, 1.0)
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "a fresh spool is started" in errors[0], log
    assert (damage == "corrupt") == any(state.glob("spool.db.corrupt-*"))
    _flush(agent)
    assert len(collector.app.store.report_seqs(agent_id)) > before + 3
    spool_stats = collector.app.store.snapshot(agent_id)["spool"]
    assert spool_stats["resets_total"] == 1
    assert len(collector.app.store.spools(agent_id)) == 2


def test_clone_on_a_machine_of_another_name_keeps_both_and_is_marked(
    collector: Running, tmp_path: Path
) -> None:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("a host name of its own needs unshare --uts as root")
    config = _config(tmp_path / "agent.yaml")
    original = tmp_path / "original"
    _enroll(_agent(config, original), collector.address, collector.token())
    _run(_agent(config, original), 1.0)
    clone = tmp_path / "clone"
    shutil.copytree(original, clone)  # the image, state dir and credential with it
    agent_id = _agent_id(collector)
    assert _clone_marks(collector, agent_id) == (None, 0)
    renamed = ("unshare", "--uts", "sh", "-c", 'hostname pc-clone-02 && exec "$0" "$@"')
    runs = [
        threading.Thread(target=_run, args=(_agent(config, original), 2.0)),
        threading.Thread(target=_run, args=(_agent(config, clone), 2.0), kwargs={"wrap": renamed}),
    ]
    for t in runs:
        t.start()
    for t in runs:
        t.join()
    assert _clone_marks(collector, agent_id)[0] is not None
    # Both machines' reports are kept: the clone numbers under a spool id of its own.
    spools = collector.app.store.spools(agent_id)
    assert len(spools) == 2 and all(s["reports"] > 5 for s in spools)


def test_clone_with_the_same_name_is_marked_and_its_conflicts_counted(
    collector: Running, tmp_path: Path
) -> None:
    config = _config(tmp_path / "agent.yaml")
    original = tmp_path / "original"
    _enroll(_agent(config, original), collector.address, collector.token())
    _run(_agent(config, original), 1.0)
    clone = tmp_path / "clone"
    shutil.copytree(original, clone)
    runs = [
        threading.Thread(target=_run, args=(_agent(config, state), 2.0))
        for state in (original, clone)
    ]
    for t in runs:
        t.start()
    for t in runs:
        t.join()
    suspected, conflicts = _clone_marks(collector, _agent_id(collector))
    assert suspected is not None and conflicts > 0
    print(f"clone with one name: {conflicts} reports refused as conflicting duplicates")


# --- 3. disk full ------------------------------------------------------------------------------


@contextlib.contextmanager
def _small_disk(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        reason = f"a small tmpfs needs mount as root: {done.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(disk: Path) -> Path:
    """Fills `disk` to the last byte: halving the writes once a big one no longer fits."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f:
        chunk = 65536
        while chunk:
            try:
                f.write(b"\0" * chunk)
            except OSError:
                chunk //= 2
    return filler


def test_disk_full_agent_keeps_running_counts_and_recovers(tmp_path: Path) -> None:
    port = free_port()
    cfg = collector_config(tmp_path / "collector.db")
    collector = start_collector(cfg, port)
    with _small_disk(tmp_path / "disk", "4m") as state:
        agent = _agent(_config(tmp_path / "agent.yaml"), state)
        _enroll(agent, collector.address, collector.token())
        agent_id = _agent_id(collector)
        log = tmp_path / "agent.log"  # on the big disk: the agent's stderr must not fail too
        with log.open("w") as stderr:
            run = [*agent, "run", "--interval", "0.1"]
            proc = subprocess.Popen(run, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            wait_until((state / "spool.db").exists, 30, "the agent's spool")
            filler = _fill(state)
            # The collector goes away: the spool must grow, and the disk has no room for it.
            # How soon depends on the room SQLite finds in pages and WAL it already holds.
            collector.app.stop(grace=0)
            wait_until(lambda: "not spooled" in log.read_text(), 120, "a report not spooled")
            time.sleep(1.0)
            assert proc.poll() is None, "a full disk must not stop the agent"
            filler.unlink()
            collector = start_collector(cfg, port)
            wait_until(
                lambda: (
                    collector.app.store.snapshot(agent_id)
                    .get("spool", {})
                    .get("unspooled_total", 0)
                    > 0
                ),
                60,
                "the count of reports not spooled to reach the collector",
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            collector.app.stop(grace=0)
        err = log.read_text()
        assert proc.returncode == 0, err
        lost = collector.app.store.snapshot(agent_id)["spool"]["unspooled_total"]
        assert sum(" ERROR " in line and "not spooled" in line for line in err.splitlines()) == 1
        seqs = stored_seqs(tmp_path / "collector.db")[agent_id]
        assert seqs == list(range(1, len(seqs) + 1))  # what was spooled all arrived, once
        print(f"disk full: {lost} reports not spooled, counted; the agent ran on and recovered")


def _readyz(collector: Running) -> int:
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{collector.app.http_port}/readyz", timeout=10
        ) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return e.code


def _report(seq: int, size: int = 0) -> bytes:
    r = pb.Report(seq=seq, boot_id="b", collected_at_ms=int(time.time() * 1000))
    r.hardware.host.hostname = "x" * size
    return r.SerializeToString()


def test_disk_full_collector_is_not_ready_while_writes_fail(tmp_path: Path) -> None:
    with _small_disk(tmp_path / "disk", "8m") as disk:
        collector = start_collector(collector_config(disk / "store.db"))
        try:
            secret = collector.enroll()
            with collector.client(secret) as client:
                assert client.submit([_report(1)]).stored == [1]
                assert _readyz(collector) == 200
                filler = _fill(disk)
                seq, failed = 2, False
                for _ in range(200):  # bounded: the WAL reuses its space before it must grow
                    try:
                        client.submit([_report(s, 4000) for s in range(seq, seq + 20)])
                    except DeliveryError as e:
                        assert e.transient  # UNAVAILABLE: the agent keeps the batch
                        failed = True
                        break
                    seq += 20
                assert failed, "the store never ran out of space"
                assert _readyz(collector) == 503
                filler.unlink()
                assert client.submit([_report(seq)]).stored == [seq]
                assert _readyz(collector) == 200
        finally:
            collector.app.stop(grace=0)


# --- 5. a poisoned report --------------------------------------------------------------------


def test_poison_report_costs_no_other_agent_its_ack(store_url: str, tmp_path: Path) -> None:
    collector = start_collector(collector_config(tmp_path / "unused.db", store={"url": store_url}))
    try:
        poisoner = collector.client(collector.enroll(machine="poison"))
        others = [collector.client(collector.enroll(machine=f"m{i}")) for i in range(6)]
        oks, failures = [0], [0]
        stop = threading.Event()

        def steady(i: int) -> None:
            seq = 1
            while not stop.is_set() and seq <= 400:  # bounded
                try:
                    others[i].submit([_report(seq)])
                    oks[0] += 1
                except DeliveryError:
                    failures[0] += 1
                seq += 1

        threads = [threading.Thread(target=steady, args=(i,)) for i in range(len(others))]
        for t in threads:
            t.start()
        refused = []
        for i in range(40):
            for seq in (2**63 + i, 2**64 - 1 - i, 2**63 - 1 - i, (1 << SEQ_BITS) + i):
                result = poisoner.submit([_report(seq), _report(i + 1)])
                refused += [s for s, _ in result.rejected]
                assert result.stored == [i + 1]
        stop.set()
        for t in threads:
            t.join()
        assert failures[0] == 0 and oks[0] > 0
        assert len(refused) == 160
        # Nothing out of range reached the store, so no agent's snapshot froze on it.
        poison_id = next(
            a.agent_id for a in collector.app.store.list_agents() if a.machine_id == "poison"
        )
        assert collector.app.store.report_seqs(poison_id) == list(range(1, 41))
        print(f"poison: other agents {oks[0]}/{oks[0] + failures[0]} Submits acked")
    finally:
        for c in [poisoner, *others]:
            c.close()
        collector.app.stop(grace=0)


# --- 2. a link that drops packets --------------------------------------------------------------


def test_outage_schedule_kept_while_the_link_drops_packets(lab: Lab, tmp_path: Path) -> None:
    require_tool("nft")
    district, commune = lab.ns(), lab.ns()
    lab.link(district, "d0", "10.91.0.1/24", commune, "c0", "10.91.0.2/24")
    db = tmp_path / "collector.db"
    config = tmp_path / "collector.yaml"
    config.write_text(
        f"grpc_listen: 10.91.0.1:50051\nhttp_listen: 127.0.0.1:0\n"
        f"store:\n  url: sqlite:///{db}\nlog_level: warning\n"
    )
    # The token first: it creates the store, so the collector starting after it finds the
    # schema made (two processes creating one SQLite store at once race on its tables).
    made = subprocess.run(
        [
            *(str(BIN / "canhgac-collector"), "--config", str(config), "token", "create"),
            *("--district", "Hạ Lang", "--commune", "An Lạc", "--role", "workstation"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    server = lab.start(district, str(BIN / "canhgac-collector"), "--config", str(config), "serve")
    token = made.stdout.strip()
    interval, cut = 1.0, 24.0
    agent_config = _config(
        tmp_path / "agent.yaml",
        collector={"timeout": "10s"},
        delivery={"backoff_initial": "1s", "backoff_max": "4s"},
    )
    agent = _agent(agent_config, tmp_path / "state")
    enroll = [*agent, "enroll", "--collector", "10.91.0.1:50051", "--token", token]
    deadline = time.monotonic() + 90
    while True:  # the collector in its namespace may still be starting (bounded: 90 s)
        try:
            lab.exec(commune, *enroll)
            break
        except AssertionError:
            if server.poll() is not None:
                raise AssertionError(f"the collector exited: {server.communicate()[1]}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    proc = lab.start(commune, *agent, "run", "--interval", str(interval))
    time.sleep(4)
    # The commune's uplink goes dark: packets to the district vanish, nothing is refused.
    lab.exec(district, "nft", "add", "table", "inet", "cut")
    lab.exec(
        district,
        "nft",
        "add",
        "chain",
        "inet",
        "cut",
        "in",
        "{ type filter hook input priority 0; }",
    )
    lab.exec(
        district, "nft", "add", "rule", "inet", "cut", "in", "ip", "saddr", "10.91.0.2", "drop"
    )
    cut_from = time.time()
    time.sleep(cut)
    cut_to = time.time()
    lab.exec(district, "nft", "flush", "ruleset")

    def delivered() -> list[int]:
        return stored_seqs(db).get(next(iter(stored_seqs(db)), ""), [])

    time.sleep(2)
    wait_until(
        lambda: len(delivered()) >= 4 + cut / interval, 90, "the backlog to arrive after the cut"
    )
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    seqs = delivered()
    assert seqs == list(range(1, len(seqs) + 1))  # all, once, no gap
    with contextlib.closing(sqlite3.connect(db)) as conn:
        times = [t for (t,) in conn.execute("SELECT collected_at FROM reports ORDER BY seq")]
    assert times == sorted(times)  # in order
    during = [t for t in times if cut_from <= t < cut_to]
    scheduled = cut / interval
    print(f"outage: {len(during)} reports collected during a {cut:.0f} s cut, {scheduled:.0f} due")
    # On the code before delivery had its own thread, each attempt held collection for its
    # 10 s deadline: about 3 reports in this cut.
    assert scheduled - 2 <= len(during) <= scheduled + 1
