"""Releases: the Ed25519 check, manifests, rollout choice, agent states, pacing, the MSI
command line, and the agent's Updater against an in-memory collector."""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import __version__
from agent.errors import AgentError
from agent.transport.client import DeliveryError
from agent.transport.wire import StatusCode
from agent.update import (
    REQUEST_FILE,
    UpdateConfig,
    Updater,
    msiexec_command,
    pause_before_next,
)
from canhgac_common.release import (
    Manifest,
    ManifestError,
    Package,
    compare_versions,
    ed25519_verify,
    manifest_bytes,
    parse_manifest,
    platform_of_file,
    public_key_bytes,
    sha256_file,
    verify_manifest,
)
from collector.model import AgentRecord, Placement, Release, ReleasePlace
from collector.releases import ReleaseBook, agent_bucket, agent_state, offered_version, targets

# ---- Ed25519 --------------------------------------------------------------------------------

# RFC 8032, 7.1, TEST 1 and TEST 2.
RFC = [
    (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e"
        "39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f"
        "3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
]


@pytest.mark.parametrize(("public", "message", "signature"), RFC)
def test_rfc8032_vectors_verify(public: str, message: str, signature: str) -> None:
    pk, msg, sig = bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)
    assert ed25519_verify(pk, msg, sig)
    assert not ed25519_verify(pk, msg + b"x", sig)
    assert not ed25519_verify(pk, msg, sig[:-1] + bytes([sig[-1] ^ 1]))


def _key() -> tuple[Ed25519PrivateKey, bytes]:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key, raw


def test_signatures_of_the_cryptography_library_verify_and_tampering_does_not() -> None:
    key, raw = _key()
    for n in (0, 1, 100, 5000):
        msg = os.urandom(n)
        sig = key.sign(msg)
        assert ed25519_verify(raw, msg, sig)
        if n:
            flipped = bytes([msg[0] ^ 0x80]) + msg[1:]
            assert not ed25519_verify(raw, flipped, sig)
    other = _key()[1]
    assert not ed25519_verify(other, b"m", key.sign(b"m"))


def test_malformed_signatures_and_keys_are_refused_not_raised() -> None:
    key, raw = _key()
    sig = key.sign(b"m")
    assert not ed25519_verify(raw, b"m", sig[:63])
    assert not ed25519_verify(raw[:31], b"m", sig)
    assert not ed25519_verify(b"\xff" * 32, b"m", sig)  # not a point
    # S + L: the same point, a non-canonical encoding (malleability) is refused.
    s = int.from_bytes(sig[32:], "little") + 2**252 + 27742317777372353535851937790883648493
    assert not ed25519_verify(raw, b"m", sig[:32] + s.to_bytes(32, "little"))


def test_public_keys_as_pem_or_base64_and_never_a_private_key() -> None:
    key, raw = _key()
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert public_key_bytes(pem.decode()) == raw
    assert public_key_bytes(base64.b64encode(raw).decode()) == raw
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ManifestError, match="private key"):
        public_key_bytes(private.decode())
    for bad in ("", "not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(ManifestError):
            public_key_bytes(bad)


# ---- manifests ------------------------------------------------------------------------------

SHA = "ab" * 32


def _manifest(version: str = "0.2.0", channel: str = "stable", size: int = 10) -> Manifest:
    pkg = Package("debian-amd64", f"canhgac-agent_{version}_amd64.deb", size, SHA)
    return Manifest(version, channel, 1700000000.0, {"debian-amd64": pkg})


def test_manifest_round_trip_and_signature() -> None:
    key, raw = _key()
    data = manifest_bytes(_manifest())
    assert parse_manifest(data) == _manifest()
    assert verify_manifest(data, key.sign(data), raw) == _manifest()
    with pytest.raises(ManifestError, match="signature"):
        verify_manifest(data.replace(b"0.2.0", b"0.2.1"), key.sign(data), raw)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda d: d.update(format=2), "manifest.format"),
        (lambda d: d.update(version="../x"), "manifest.version"),
        (lambda d: d.update(channel="Stable!"), "manifest.channel"),
        (lambda d: d.update(packages={}), "manifest.packages"),
        (lambda d: d["packages"].update(beos={}), "manifest.packages.beos"),
        (lambda d: d["packages"]["debian-amd64"].update(file="../../etc/passwd"), ".file"),
        (lambda d: d["packages"]["debian-amd64"].update(size=-1), ".size"),
        (lambda d: d["packages"]["debian-amd64"].update(sha256="XY"), ".sha256"),
    ],
)
def test_a_bad_manifest_names_its_key(change: object, key: str) -> None:
    doc = json.loads(manifest_bytes(_manifest()))
    change(doc)  # type: ignore[operator]
    with pytest.raises(ManifestError, match=key.replace(".", r"\.")):
        parse_manifest(json.dumps(doc).encode())
    with pytest.raises(ManifestError, match="not JSON"):
        parse_manifest(b"\xff garbage")


def test_platform_by_file_suffix() -> None:
    assert platform_of_file("CanhGac-Agent-0.2.0.MSI") == "windows-x64"
    assert platform_of_file("canhgac-agent_0.2.0_amd64.deb") == "debian-amd64"
    with pytest.raises(ManifestError, match=r"setup\.exe"):
        platform_of_file("setup.exe")


# ---- rollout --------------------------------------------------------------------------------

HA_LANG = Placement("Cao Bằng", "Hạ Lang", "Thanh Nhật", "UBND", "workstation")
OTHER = Placement("Cao Bằng", "Hạ Lang", "Vinh Quý", "", "workstation")


def _release(
    version: str,
    *,
    channel: str = "stable",
    rolled_out_at: float | None = 100.0,
    share: int = 100,
    places: tuple[ReleasePlace, ...] = (),
    withdrawn_at: float | None = None,
) -> Release:
    return Release(
        version, channel, b"", b"", 1.0, rolled_out_at, share, places, 1800.0, withdrawn_at
    )


def test_share_is_stable_per_agent_and_grows_without_losing_anyone() -> None:
    ids = [f"agent{i:05d}" for i in range(2000)]
    assert [agent_bucket(i) for i in ids] == [agent_bucket(i) for i in ids]
    ten = {i for i in ids if targets(_release("2", share=10), i, HA_LANG)}
    fifty = {i for i in ids if targets(_release("2", share=50), i, HA_LANG)}
    assert 120 <= len(ten) <= 280  # about 10 % of 2000
    assert ten <= fifty
    assert not any(targets(_release("2", share=0), i, HA_LANG) for i in ids)
    assert all(targets(_release("2", share=100), i, HA_LANG) for i in ids)


def test_places_limit_the_rollout() -> None:
    commune = _release("2", places=(ReleasePlace(district="Hạ Lang", commune="Thanh Nhật"),))
    assert targets(commune, "a", HA_LANG)
    assert not targets(commune, "a", OTHER)
    unit = _release("2", places=(ReleasePlace(unit="UBND"),))
    assert targets(unit, "a", HA_LANG) and not targets(unit, "a", OTHER)
    assert not targets(_release("2", rolled_out_at=None), "a", HA_LANG)


def test_the_newest_release_reaching_an_agent_of_its_channel_is_offered() -> None:
    old = _release("1", rolled_out_at=10.0)
    pilot_commune = _release("2", rolled_out_at=20.0, places=(ReleasePlace(commune="Thanh Nhật"),))
    assert offered_version([old, pilot_commune], "a", HA_LANG, "stable", "0.9") == "2"
    assert offered_version([old, pilot_commune], "a", OTHER, "stable", "0.9") == "1"
    # Withdrawn: it reaches no one more; an agent still on "1" is offered "1" (nothing to do)...
    withdrawn = _release("2", rolled_out_at=20.0, withdrawn_at=30.0)
    assert offered_version([old, withdrawn], "a", HA_LANG, "stable", "0.9") == "1"
    assert offered_version([old, withdrawn], "a", HA_LANG, "stable", "1") == ""
    # ...and one that runs "2" is never offered the older "1", which it would refuse.
    assert offered_version([old, withdrawn], "a", HA_LANG, "stable", "2") == ""
    # Version order, not the order of the rollouts: "10" is newer than "9" rolled out after it.
    ten, nine = _release("10", rolled_out_at=50.0), _release("9", rolled_out_at=60.0)
    assert offered_version([ten, nine], "a", HA_LANG, "stable", "1") == "10"
    pilot = _release("3", channel="pilot", rolled_out_at=40.0)
    assert offered_version([old, pilot], "a", HA_LANG, "stable", "0.9") == "1"
    assert offered_version([old, pilot], "a", HA_LANG, "pilot", "0.9") == "3"
    assert offered_version([], "a", HA_LANG, "stable", "0.9") == ""


def _agent(version: str = "0.1.0") -> AgentRecord:
    return AgentRecord("a", "m", "host", "Linux", "6", version, HA_LANG, 0.0, None, None, None, 0)


def test_agent_state_done_pending_failed() -> None:
    r = _release("0.2.0", rolled_out_at=100.0)
    upd = {"agent_version": "0.1.0", "target_version": "0.2.0", "state": "downloading"}
    assert agent_state(r, _agent(), {"update": upd}, 200.0).state == "downloading"
    assert agent_state(r, _agent(), None, 200.0).state == "pending"
    late = agent_state(r, _agent(), {"update": upd}, 100.0 + 1801)
    assert (late.state, "not reported within" in late.detail) == ("failed", True)
    refused = {**upd, "state": "refused", "detail": "bad signature"}
    assert agent_state(r, _agent(), {"update": refused}, 200.0).detail == "bad signature"
    done = {"agent_version": "0.2.0", "target_version": "0.2.0", "state": ""}
    assert agent_state(r, _agent(), {"update": done}, 9e9).state == "done"
    past = {**done, "agent_version": "0.3.0"}  # updated past it since
    assert agent_state(r, _agent(), {"update": past}, 9e9).state == "done"
    # An old target's state says nothing about this release.
    other = {**upd, "target_version": "0.1.5", "state": "refused"}
    assert agent_state(r, _agent(), {"update": other}, 200.0).state == "pending"


def test_release_book_reloads_at_most_every_refresh_and_caches_answers() -> None:
    loads: list[int] = []
    now = [0.0]

    def load() -> list[Release]:
        loads.append(1)
        return [_release("2")]

    book = ReleaseBook(load, refresh=10.0, clock=lambda: now[0])
    for _ in range(100):
        assert book.offered(_agent()) == "2"
    assert len(loads) == 1
    now[0] = 11.0
    book.note("a", "pilot", "0.1.0")
    assert book.offered(_agent()) == ""
    assert len(loads) == 2
    book.note("a", "stable", "2")  # it runs the release now: nothing more to offer
    assert book.offered(_agent()) == ""
    book.note("a", "stable", "1")
    assert book.offered(_agent()) == "2"


# ---- pacing and the Windows command ------------------------------------------------------------


def test_pause_keeps_the_average_rate() -> None:
    assert pause_before_next(64 * 1024, 0.0, 64 * 1024) == 1.0
    assert pause_before_next(64 * 1024, 2.0, 64 * 1024) == 0.0
    assert pause_before_next(3 * 1024, 1.0, 1024) == 2.0


def test_msiexec_command_is_silent_without_reboot_and_logged() -> None:
    argv = msiexec_command(
        Path(r"C:\ProgramData\CanhGac\agent\update\CanhGac-Agent-0.2.0.msi"),
        Path(r"C:\ProgramData\CanhGac\agent\update\install-0.2.0.log"),
        {"COLLECTOR": "10.0.0.1:4317"},
    )
    assert argv[:3] == [
        "msiexec.exe",
        "/i",
        r"C:\ProgramData\CanhGac\agent\update\CanhGac-Agent-0.2.0.msi",
    ]
    assert "/qn" in argv and "/norestart" in argv
    assert argv[argv.index("/l*v") + 1].endswith("install-0.2.0.log")
    assert argv[-1] == "COLLECTOR=10.0.0.1:4317"


# ---- the Updater against an in-memory collector -------------------------------------------------


class Collector:
    """Serves one release from memory, under any version but the running one (none of which it
    holds: no roll back package), and records each Download call."""

    def __init__(self, key: Ed25519PrivateKey, package: bytes, **manifest: object) -> None:
        from canhgac_common.release import sha256_hasher  # noqa: PLC0415

        self.package = package
        self.sha = sha256_hasher()
        self.sha.update(package)
        fields = {"version": "0.2.0", "channel": "stable", **manifest}
        pkg = Package("debian-amd64", "canhgac-agent.deb", len(package), self.sha.hexdigest())
        self.manifest = manifest_bytes(
            Manifest(str(fields["version"]), str(fields["channel"]), 1.0, {pkg.platform: pkg})
        )
        self.signature = key.sign(self.manifest)
        self.calls: list[tuple[int, int]] = []
        self.cut_after: int | None = None

    def get_release(self, version: str) -> tuple[bytes, bytes]:
        if version == __version__:
            raise DeliveryError(StatusCode.NOT_FOUND, f"no release {version} is rolled out")
        return self.manifest, self.signature

    def download(self, sha256: str, offset: int, length: int) -> Iterator[tuple[int, int, bytes]]:
        self.calls.append((offset, length))
        if self.cut_after is not None and len(self.calls) > self.cut_after:
            raise DeliveryError(StatusCode.UNAVAILABLE, "cut", local=True)
        yield offset, len(self.package), self.package[offset : offset + length]


def _updater(
    tmp_path: Path, collector: Collector, raw: bytes, **cfg: object
) -> tuple[Updater, list[float]]:
    pauses: list[float] = []

    def sleep(seconds: float) -> bool:
        pauses.append(seconds)
        return False

    config = UpdateConfig(public_key=base64.b64encode(raw).decode(), **cfg)  # type: ignore[arg-type]
    updater = Updater(
        config, tmp_path, lambda: collector, platform="debian-amd64", sleep=sleep, clock=lambda: 0.0
    )
    return updater, pauses


def test_download_in_chunks_paced_to_the_rate_then_the_install_request(tmp_path: Path) -> None:
    key, raw = _key()
    collector = Collector(key, os.urandom(100_000))
    updater, pauses = _updater(tmp_path, collector, raw, chunk=16384, rate=8192)
    assert updater.work("0.2.0") is True
    assert [length for _, length in collector.calls] == [16384] * 6 + [100_000 - 6 * 16384]
    assert [offset for offset, _ in collector.calls] == [i * 16384 for i in range(7)]
    # The clock never moves here: each pause is what keeps bytes/s at the rate.
    assert pauses == [16384 * (i + 1) / 8192 for i in range(6)]
    request = json.loads((tmp_path / "update" / REQUEST_FILE).read_text())
    assert request["sha256"] == collector.sha.hexdigest()
    assert sha256_file(tmp_path / "update" / "canhgac-agent.deb") == collector.sha.hexdigest()
    state = updater.state()
    assert (state.state, state.downloaded_bytes, state.refused_total) == (
        "installing",
        100_000,
        0,
    )
    assert state.detail.endswith(
        "no roll back possible: the collector has no rolled-out release of the running 0.1.0 "
        "for debian-amd64"
    )


def test_a_cut_link_keeps_the_partial_file_and_the_next_try_resumes(tmp_path: Path) -> None:
    key, raw = _key()
    collector = Collector(key, os.urandom(50_000))
    collector.cut_after = 2
    updater, _ = _updater(tmp_path, collector, raw, chunk=8192)
    assert updater.work("0.2.0") is None  # the link: tried again later
    part = tmp_path / "update" / f"{collector.sha.hexdigest()}.part"
    assert part.stat().st_size == 2 * 8192
    collector.cut_after, collector.calls = None, []
    assert updater.work("0.2.0") is True
    assert collector.calls[0][0] == 2 * 8192  # from where it stopped, not from 0


def test_refusals_are_counted_and_kept(tmp_path: Path) -> None:
    key, raw = _key()
    wrong_channel = Collector(key, b"x" * 5000, channel="pilot")
    updater, _ = _updater(tmp_path, wrong_channel, raw)
    assert updater.work("0.2.0") is False
    assert "channel pilot" in updater.state().detail
    other_version = Collector(key, b"x" * 5000, version="0.3.0")
    updater, _ = _updater(tmp_path, other_version, raw)
    assert updater.work("0.2.0") is False
    assert updater.state().refused_total == 2  # read back from state.json, plus this one
    stranger = Collector(Ed25519PrivateKey.generate(), b"x" * 5000)
    updater, _ = _updater(tmp_path, stranger, raw)
    assert updater.work("0.2.0") is False
    assert (updater.state().state, updater.state().refused_total) == ("refused", 3)
    assert not list((tmp_path / "update").glob("*.part"))


def test_an_older_release_is_refused_before_its_download(tmp_path: Path) -> None:
    """A collector (or whoever holds it) replaying an old signed release gets nothing in."""
    key, raw = _key()
    older = Collector(key, b"x" * 5000, version="0.0.9")
    updater, _ = _updater(tmp_path, older, raw)  # runs 0.1.0
    assert updater.work("0.0.9") is False
    state = updater.state()
    assert (state.state, state.refused_total) == ("refused", 1)
    assert "not newer than the running 0.1.0" in state.detail
    assert older.calls == []  # not a byte downloaded


# Pairs where dpkg's order is easy to get wrong: zeros, "~" before the end, letters before
# punctuation, revisions, more parts than the other side.
VERSION_PAIRS = [
    ("0.1.0", "0.1.1"), ("0.10.0", "0.9.9"), ("1.0~rc1", "1.0"), ("1.0~rc1", "1.0~rc2"),
    ("1.0~~", "1.0~"), ("1.0-1", "1.0-2"), ("1.0-10", "1.0-9"), ("01.2", "1.2"), ("1.0a", "1.0"),
    ("1.0+b1", "1.0"), ("1.0.0", "1.0"), ("1.0a", "1.0+"), ("1.0", "1.0"), ("2", "10"),
    ("1.0-1~bpo1", "1.0-1"), ("0.1.0+git.3", "0.1.0+git.20"),
]  # fmt: skip


def _dpkg_order(a: str, b: str) -> int:
    def holds(op: str) -> bool:
        done = subprocess.run(["dpkg", "--compare-versions", a, op, b], check=False, timeout=30)
        assert done.returncode in (0, 1), (a, op, b)
        return done.returncode == 0

    return -1 if holds("lt") else 0 if holds("eq") else 1


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg")
def test_version_order_is_dpkgs() -> None:
    rng = random.Random(20261203)
    chars = "0123456789.+~ab"

    def draw(start: str) -> str:
        upstream = start + "".join(rng.choices(chars, k=rng.randint(0, 6)))
        revision = "-" + "".join(rng.choices(chars, k=rng.randint(1, 3)))
        return upstream + revision * rng.randint(0, 1)

    drawn = []
    for _ in range(150):
        a = draw(rng.choice("0123456789"))
        # The same version, one sharing its start (where the order is decided late), any other.
        b = rng.choice([a, draw(a[: rng.randint(1, len(a))].rstrip("-")), draw("1")])
        drawn.append((a, b))
    for a, b in VERSION_PAIRS + drawn:
        want = _dpkg_order(a, b)
        got = compare_versions(a, b)
        assert (got > 0) - (got < 0) == want, (a, b, got, want)


def test_a_collector_sending_other_offsets_is_refused(tmp_path: Path) -> None:
    key, raw = _key()
    collector = Collector(key, os.urandom(20_000))

    def skewed(sha256: str, offset: int, length: int) -> Iterator[tuple[int, int, bytes]]:
        yield offset + 1, len(collector.package), b"zz"

    collector.download = skewed  # type: ignore[method-assign]
    updater, _ = _updater(tmp_path, collector, raw)
    assert updater.work("0.2.0") is False
    assert "expected 0 of 20000" in updater.state().detail


def test_no_package_for_this_platform_or_a_full_disk_is_failed(tmp_path: Path) -> None:
    key, raw = _key()
    collector = Collector(key, os.urandom(1000))
    config = UpdateConfig(public_key=base64.b64encode(raw).decode())
    windows = Updater(config, tmp_path, lambda: collector, platform="windows-x64")
    assert windows.work("0.2.0") is False
    assert (windows.state().state, windows.state().refused_total) == ("failed", 0)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the state dir should be")
    stuck = Updater(config, blocked, lambda: collector, platform="debian-amd64")
    assert stuck.work("0.2.0") is False
    assert stuck.state().state == "failed"


def test_an_unreadable_public_key_refuses_naming_the_key(tmp_path: Path) -> None:
    key, _raw = _key()
    collector = Collector(key, b"x" * 100)
    config = UpdateConfig(public_key=str(tmp_path / "missing.pub"))
    updater = Updater(config, tmp_path, lambda: collector)
    assert updater.work("0.2.0") is False
    assert "update.public_key: cannot read" in updater.state().detail
    assert collector.calls == []
    with pytest.raises(AgentError):
        from agent.update import load_public_key  # noqa: PLC0415

        load_public_key("bm90IGEga2V5")


def test_a_running_release_without_this_platform_s_package_leaves_no_roll_back(
    tmp_path: Path,
) -> None:
    key, raw = _key()
    collector = Collector(key, os.urandom(3000))
    windows_only = Package("windows-x64", "canhgac-agent.msi", 10, "0" * 64)
    running = manifest_bytes(Manifest(__version__, "stable", 1.0, {"windows-x64": windows_only}))
    new = collector.get_release

    def get_release(version: str) -> tuple[bytes, bytes]:
        return (running, key.sign(running)) if version == __version__ else new(version)

    collector.get_release = get_release  # type: ignore[method-assign]
    updater, _ = _updater(tmp_path, collector, raw)
    assert updater.work("0.2.0") is True
    assert updater.state().detail.endswith(
        f"no roll back possible: the collector has no rolled-out release of the running "
        f"{__version__} for debian-amd64"
    )
    assert len(collector.calls) == 1  # the new package only
    assert not (tmp_path / "update" / "previous").exists()


def test_what_the_helper_did_after_the_agent_started_is_reported_at_the_next_report(
    tmp_path: Path,
) -> None:
    """The installer starts the service of the version put back before the helper writes
    result.json: the agent that started must still say "rolled-back", not stay silent."""
    key, raw = _key()
    updater, _ = _updater(tmp_path, Collector(key, b"x"), raw)
    assert updater.state().state == ""
    result = tmp_path / "update" / "result.json"
    result.parent.mkdir(exist_ok=True)
    result.write_text(json.dumps({"version": "0.2.0", "state": "rolled-back", "detail": "late"}))
    state = updater.state()
    assert (state.target_version, state.state, state.detail) == ("0.2.0", "rolled-back", "late")
    # Read once: what the agent does next (a new offer) is not overwritten by the old record.
    updater.offer(__version__)
    assert updater.state().state == ""
    # The same version it rolled back is not tried again until another one is offered.
    updater.offer("0.2.0")
    assert updater._tried["0.2.0"] == float("inf")
