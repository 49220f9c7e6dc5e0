"""Signed self-update with real parts: a collector on loopback, releases added and rolled out
by the real CLI, the real agent service process downloading, verifying and refusing."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.model import Report, UpdateState
from agent.probes import PROBES
from agent.transport.client import DeliveryError
from agent.transport.encode import encode_report
from agent.transport.wire import StatusCode
from agent.update import UpdateConfig, Updater
from canhgac_common.release import sha256_file
from tests.integration.harness import Running, wait_until

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
ONLY_HARDWARE = {"probes": {name: {"enabled": False} for name in PROBES if name != "hardware"}}
VERSION = "9.9.9"


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "collector.yaml"
    if not config.exists():
        config.write_text(json.dumps({"store": {"url": f"sqlite:///{tmp_path / 'collector.db'}"}}))
    return subprocess.run(
        [str(BIN / "canhgac-collector"), "--lang", "en", "--config", str(config), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def _release(tmp_path: Path, size: int, version: str = VERSION, share: int = 100) -> Path:
    """A release key, a package of `size` random bytes, added and rolled out (to everyone)."""
    key = tmp_path / "release.key"
    if not key.exists():
        _ok(_cli(tmp_path, "release", "key", "--out", str(key)))
    package = tmp_path / "pkgs" / f"canhgac-agent_{version}_amd64.deb"
    package.parent.mkdir(exist_ok=True)
    package.write_bytes(os.urandom(size))
    _ok(_cli(tmp_path, "release", "add", str(package), "--sign", str(key), "--version", version))
    _ok(_cli(tmp_path, "release", "rollout", version, "--share", str(share)))
    return package


def _agent(tmp_path: Path, collector: Running, **update: object) -> list[str]:
    config = tmp_path / "agent.yaml"
    state = tmp_path / "agent-state"
    settings = {"public_key": str(tmp_path / "release.key.pub"), "link_retry": "1s", **update}
    config.write_text(json.dumps({**ONLY_HARDWARE, "update": settings}), encoding="utf-8")
    agent = [str(BIN / "canhgac-agent"), "--config", str(config), "--state-dir", str(state)]
    if not (state / "credential.json").exists():
        done = subprocess.run(
            [*agent, "enroll", "--collector", collector.address, "--token", collector.token()],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    return agent


@contextlib.contextmanager
def _running(agent: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*agent, "run", "--interval", "0.2"],
            stdout=subprocess.DEVNULL,
            stderr=out,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


def _update(collector: Running) -> dict[str, object]:
    (agent,) = collector.app.store.list_agents()
    found: dict[str, object] = collector.app.store.snapshot(agent.agent_id).get("update", {})
    return found


@pytest.fixture
def fast(collector: Running) -> Running:
    collector.app.releases.book.refresh = 0.0  # see the CLI's changes at once
    return collector


def test_the_agent_downloads_verifies_and_asks_the_root_helper_to_install(
    fast: Running, tmp_path: Path
) -> None:
    package = _release(tmp_path, 100_000)
    agent = _agent(tmp_path, fast, rate="1MiB")
    update_dir = tmp_path / "agent-state" / "update"
    with _running(agent, tmp_path / "agent.log"):
        wait_until((update_dir / "request.json").exists, 60, "the install request")
        wait_until(lambda: _update(fast).get("state") == "installing", 30, "installing reported")
    request = json.loads((update_dir / "request.json").read_text())
    assert request["version"] == VERSION
    kept = update_dir / request["file"]
    assert sha256_file(kept) == sha256_file(package) == request["sha256"]
    assert not list(update_dir.glob("*.part"))
    state = _update(fast)
    assert (state["target_version"], state["downloaded_bytes"], state["refused_total"]) == (
        VERSION,
        100_000,
        0,
    )
    assert state["channel"] == "stable"
    shown = json.loads(_ok(_cli(tmp_path, "release", "show", VERSION, "--json")))
    assert shown["agents_by_state"] == {"installing": 1}
    assert shown["agents"][0]["running"] == "0.1.0"
    # The collector holds no release of the running 0.1.0: the operator sees there is no way back.
    assert shown["agents"][0]["detail"].endswith(
        "no roll back possible: the collector has no rolled-out release of the running 0.1.0 "
        "for debian-amd64"
    )
    assert not (update_dir / "previous").exists()


def test_the_agent_fetches_the_running_release_to_roll_back_to(
    fast: Running, tmp_path: Path
) -> None:
    running = _release(tmp_path, 40_000, version="0.1.0", share=0)  # served, offered to none
    package = _release(tmp_path, 50_000)
    agent = _agent(tmp_path, fast, rate="1MiB")
    update_dir = tmp_path / "agent-state" / "update"
    with _running(agent, tmp_path / "agent.log"):
        wait_until((update_dir / "request.json").exists, 60, "the install request")
        wait_until(lambda: _update(fast).get("state") == "installing", 30, "installing reported")
    previous = update_dir / "previous"
    assert sha256_file(previous / running.name) == sha256_file(running)
    assert json.loads((previous / "manifest.json").read_text())["version"] == "0.1.0"
    assert sha256_file(update_dir / package.name) == sha256_file(package)
    shown = json.loads(_ok(_cli(tmp_path, "release", "show", VERSION, "--json")))
    assert shown["agents_by_state"] == {"installing": 1}
    assert "rolled back to 0.1.0 unless 9.9.9 reports within 1800 s" in shown["agents"][0]["detail"]
    assert _download_calls(fast) == 2  # each package in one call at 1 MiB/s


def test_a_tampered_manifest_is_refused_and_counted(fast: Running, tmp_path: Path) -> None:
    _release(tmp_path, 50_000)
    db = tmp_path / "collector.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        (manifest,) = conn.execute("SELECT manifest FROM releases").fetchone()
        forged = manifest.replace(b'"size":50000', b'"size":50001')
        assert forged != manifest
        conn.execute("UPDATE releases SET manifest = ?", (forged,))
        conn.commit()
    agent = _agent(tmp_path, fast, rate="1MiB")
    with _running(agent, tmp_path / "agent.log"):
        wait_until(lambda: _update(fast).get("state") == "refused", 60, "the refusal reported")
    state = _update(fast)
    assert state["refused_total"] == 1
    assert "signature does not verify" in str(state["detail"])
    update_dir = tmp_path / "agent-state" / "update"
    assert not (update_dir / "request.json").exists()
    assert not list(update_dir.glob("*.part"))
    shown = json.loads(_ok(_cli(tmp_path, "release", "show", VERSION, "--json")))
    assert shown["agents_by_state"] == {"refused": 1}
    # The count outlives a restart of the agent.
    assert json.loads((update_dir / "state.json").read_text())["refused_total"] == 1


def test_a_tampered_package_is_refused_counted_and_not_kept(fast: Running, tmp_path: Path) -> None:
    _release(tmp_path, 60_000)
    (served,) = (tmp_path / "releases").iterdir()
    served.write_bytes(os.urandom(60_000))  # same size, other bytes: only the hash tells
    agent = _agent(tmp_path, fast, rate="1MiB")
    with _running(agent, tmp_path / "agent.log"):
        wait_until(lambda: _update(fast).get("state") == "refused", 60, "the refusal reported")
    state = _update(fast)
    assert state["refused_total"] == 1
    assert "sha256 does not match" in str(state["detail"])
    update_dir = tmp_path / "agent-state" / "update"
    assert not (update_dir / "request.json").exists()
    assert [p.name for p in update_dir.iterdir() if p.suffix in (".part", ".deb")] == []


def _download_calls(collector: Running) -> int:
    for line in collector.app.exposition.render_own().decode().splitlines():
        if line.startswith("canhgac_collector_rpc_duration_seconds_count") and "Download" in line:
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def test_a_download_killed_midway_resumes_from_its_offset(fast: Running, tmp_path: Path) -> None:
    size, chunk = 128 * 1024, 8 * 1024
    package = _release(tmp_path, size)
    # 8 KiB/s: one chunk a second, so the kill lands midway whatever the machine's load.
    agent = _agent(tmp_path, fast, rate="8KiB", chunk="8KiB")
    update_dir = tmp_path / "agent-state" / "update"
    part = update_dir / f"{sha256_file(package)}.part"
    with _running(agent, tmp_path / "agent.log") as proc:
        wait_until(lambda: part.exists() and part.stat().st_size >= 4 * chunk, 90, "4 chunks")
        proc.kill()  # SIGKILL: no goodbye
        proc.wait(30)
    kept = part.stat().st_size
    assert 0 < kept < size
    with _running(agent, tmp_path / "agent.log"):
        wait_until((update_dir / "request.json").exists, 120, "the download to end")
    log = (tmp_path / "agent.log").read_text()
    assert f"resuming the download at byte {kept}" in log
    assert sha256_file(update_dir / package.name) == sha256_file(package)
    # From 0 again would be 16 calls after the restart on top of those before the kill;
    # resumed, the whole download is 16 calls, and at most one cut short by the kill.
    calls = _download_calls(fast)
    assert size // chunk <= calls <= size // chunk + 1, calls


def test_without_a_public_key_updates_are_refused_and_said_once(
    fast: Running, tmp_path: Path
) -> None:
    _release(tmp_path, 10_000)
    agent = _agent(tmp_path, fast, public_key=None)
    with _running(agent, tmp_path / "agent.log"):
        wait_until(lambda: _update(fast).get("state") == "refused", 60, "the refusal reported")
    assert "no update.public_key" in str(_update(fast)["detail"])
    log = (tmp_path / "agent.log").read_text()
    assert log.count("no update.public_key configured") == 1
    assert _update(fast)["refused_total"] == 0  # nothing was checked: nothing counted
    assert _download_calls(fast) == 0


def _submit(collector: Running, secret: str, channel: str = "") -> str:
    """One report through the real client; the release version its ack offers."""

    update = UpdateState(channel=channel) if channel else None
    report = Report(int(time.time() * 1000), "boot", "0.1.0", seq=1, update=update)
    with collector.client(secret) as c:
        return c.submit([encode_report(report)]).release_version


def test_the_ack_offers_by_channel_and_place_and_the_calls_refuse_what_is_not_offered(
    fast: Running, tmp_path: Path
) -> None:

    thanh_nhat = fast.enroll(machine="m1", commune="Thanh Nhật")
    vinh_quy = fast.enroll(machine="m2", commune="Vinh Quý")
    assert _submit(fast, thanh_nhat) == ""  # nothing rolled out yet
    package = _release(tmp_path, 70_000)  # to everyone, stable
    key = tmp_path / "release.key"
    pilot = tmp_path / "pkgs" / "canhgac-agent_9.9.10_amd64.deb"
    pilot.write_bytes(os.urandom(1000))
    _ok(_cli(tmp_path, "release", "add", str(pilot), "--sign", str(key), "--version", "9.9.10"))
    _ok(_cli(tmp_path, "release", "rollout", "9.9.10", "--commune", "Thanh Nhật"))
    assert _submit(fast, thanh_nhat) == "9.9.10"  # one commune first
    assert _submit(fast, vinh_quy) == VERSION
    assert _submit(fast, vinh_quy, channel="pilot") == ""  # no pilot release
    _ok(_cli(tmp_path, "release", "withdraw", "9.9.10"))
    assert _submit(fast, thanh_nhat, channel="stable") == VERSION
    with fast.client(thanh_nhat) as c:
        manifest, signature = c.get_release(VERSION)
        assert json.loads(manifest)["version"] == VERSION and len(signature) == 64
        with pytest.raises(DeliveryError) as e:
            c.get_release("9.9.10")  # withdrawn
        assert e.value.code is StatusCode.NOT_FOUND
        sha = sha256_file(package)
        # The collector caps a call at releases.download_max_bytes (1 MiB); from an offset.
        chunks = list(c.download(sha, 65_000, 0))
        assert b"".join(d for _, _, d in chunks) == package.read_bytes()[65_000:]
        assert {size for _, size, _ in chunks} == {70_000}
        with pytest.raises(DeliveryError) as e:
            list(c.download(sha, 70_001, 10))
        assert e.value.code is StatusCode.OUT_OF_RANGE
        with pytest.raises(DeliveryError) as e:
            list(c.download("0" * 64, 0, 10))
        assert e.value.code is StatusCode.NOT_FOUND
    with pytest.raises(DeliveryError) as e, fast.client(None) as anonymous:
        anonymous.get_release(VERSION)
    assert e.value.code is StatusCode.UNAUTHENTICATED


def test_release_show_counts_done_and_failed_agents(fast: Running, tmp_path: Path) -> None:

    updated = fast.enroll(machine="m1")
    silent = fast.enroll(machine="m2")
    _release(tmp_path, 1000)
    _ok(_cli(tmp_path, "release", "rollout", VERSION, "--report-within", "1s"))
    report = Report(
        int(time.time() * 1000), "boot", VERSION, seq=1, update=UpdateState(channel="stable")
    )
    with fast.client(updated) as c:
        c.submit([encode_report(report)])
    assert _submit(fast, silent) == VERSION

    def states() -> dict[str, int]:
        shown = json.loads(_ok(_cli(tmp_path, "release", "show", VERSION, "--json")))
        counts: dict[str, int] = shown["agents_by_state"]
        return counts

    wait_until(lambda: states() == {"done": 1, "failed": 1}, 30, "the silent agent failed")
    shown = json.loads(_ok(_cli(tmp_path, "release", "show", VERSION, "--json")))
    failed = next(a for a in shown["agents"] if a["state"] == "failed")
    assert "not reported within 1 s" in failed["detail"]


def test_the_updating_agent_maps_no_openssl(fast: Running, tmp_path: Path) -> None:
    # As test_wire's delivering agent: the signature check and the hashes are pure Python and
    # CPython's built-in SHA-2, so an update costs no OpenSSL in the service's memory.
    _release(tmp_path, 30_000)
    secret = fast.enroll()
    public = (tmp_path / "release.key.pub").read_text()
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from agent.transport.client import CollectorClient\n"
        "from agent.update import UpdateConfig, Updater\n"
        f"cfg = UpdateConfig(public_key={public!r}, rate=1 << 20)\n"
        f"with CollectorClient({fast.address!r}, secret={secret!r}) as c:\n"
        f"    u = Updater(cfg, Path({str(tmp_path / 'state')!r}), lambda: c,"
        " platform='debian-amd64')\n"
        f"    assert u.work({VERSION!r}) is True, u.state()\n"
        "heavy = ('grpc', 'asyncio', 'ssl', '_ssl', '_hashlib', 'hashlib', 'cryptography',"
        " 'pydantic')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=root, capture_output=True)
    assert out.stdout.decode().strip() == "[]", out.stderr.decode()


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
        pytest.skip(f"a small tmpfs needs mount as root: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_fails_the_download_keeps_its_part_and_it_resumes_with_space(
    fast: Running, tmp_path: Path
) -> None:
    package = _release(tmp_path, 300_000)
    secret = fast.enroll()
    cfg = UpdateConfig(public_key=(tmp_path / "release.key.pub").read_text(), rate=1 << 30)
    with _small_disk(tmp_path / "disk", "128k") as disk, fast.client(secret) as c:
        updater = Updater(cfg, disk, lambda: c, platform="debian-amd64")
        assert updater.work(VERSION) is False
        state = updater.state()
        assert state.state == "failed" and "No space left" in state.detail
        assert state.refused_total == 0  # the disk, not the package: nothing refused
        (part,) = (disk / "update").glob("*.part")
        kept = part.stat().st_size
        assert 0 < kept < 300_000
        subprocess.run(["mount", "-o", "remount,size=1m", str(disk)], check=True)
        assert updater.work(VERSION) is True
        assert sha256_file(disk / "update" / package.name) == sha256_file(package)
