"""The Linux self-update's root side with the real dpkg: packages built by dpkg-deb, installed,
confirmed, rolled back and refused by `canhgac-agent update apply` in a private dpkg root (a
dpkg database in tmp_path: the machine's own packages are never touched)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.transport.client import DeliveryError
from agent.transport.wire import StatusCode
from agent.update import PREVIOUS_DIR, REQUEST_FILE, RESULT_FILE, UpdateConfig, Updater
from agent.update_apply import INSTALLED_FILE, apply, dpkg_install_command
from canhgac_common.release import Manifest, Package, manifest_bytes, sha256_file

pytestmark = [
    pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb (Debian: dpkg)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="dpkg -i, even in a private root, as root"),
]

BIN = Path(sys.executable).parent
NAME = "canhgac-update-probe"


def _deb(tmp_path: Path, version: str, preinst: str = "") -> Path:
    stage = tmp_path / f"stage-{version}"
    (stage / "DEBIAN").mkdir(parents=True)
    if preinst:
        (stage / "DEBIAN/preinst").write_text(f"#!/bin/sh\n{preinst}\n")
        (stage / "DEBIAN/preinst").chmod(0o755)
    (stage / "usr/share" / NAME).mkdir(parents=True)
    (stage / "usr/share" / NAME / "version").write_text(version)
    (stage / "DEBIAN/control").write_text(
        f"Package: {NAME}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: Canh Gác tests <tests@example.invalid>\nDescription: update test\n"
    )
    out = tmp_path / f"{NAME}_{version}_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(stage), str(out)],
        check=True,
        capture_output=True,
    )
    return out


def _installed_version(root: Path) -> str:
    done = subprocess.run(
        ["dpkg-query", f"--root={root}", "-W", "-f=${Version}", NAME],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout if done.returncode == 0 else ""


class Collector:
    """The releases a collector holds, signed by `key`: GetRelease and Download as the real one
    answers them (NOT_FOUND for a release it does not hold); each Download call is recorded."""

    def __init__(self, key: Ed25519PrivateKey, *releases: tuple[Path, str]) -> None:
        self.releases: dict[str, tuple[bytes, bytes]] = {}
        self.packages: dict[str, bytes] = {}
        self.downloads: list[str] = []  # the sha256 of each call
        for package, version in releases:
            data = package.read_bytes()
            pkg = Package("debian-amd64", package.name, len(data), sha256_file(package))
            manifest = manifest_bytes(Manifest(version, "stable", 1.0, {pkg.platform: pkg}))
            self.releases[version] = (manifest, key.sign(manifest))
            self.packages[pkg.sha256] = data

    def get_release(self, version: str) -> tuple[bytes, bytes]:
        if version not in self.releases:
            raise DeliveryError(StatusCode.NOT_FOUND, f"no release {version} is rolled out")
        return self.releases[version]

    def download(self, sha256: str, offset: int, length: int) -> Iterator[tuple[int, int, bytes]]:
        self.downloads.append(sha256)
        data = self.packages[sha256]
        yield offset, len(data), data[offset : offset + length]


@pytest.fixture
def world(tmp_path: Path) -> dict[str, object]:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    root = tmp_path / "root"
    for d in ("var/lib/dpkg/updates", "var/lib/dpkg/info"):
        (root / d).mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text("")
    cfg = UpdateConfig(public_key=base64.b64encode(raw).decode(), report_within=600.0)
    return {"key": key, "root": root, "cfg": cfg, "state": tmp_path / "state"}


def _request(
    world: dict[str, object], package: Path, version: str, agent: str, *held: tuple[Path, str]
) -> Updater:
    """What the agent service does: download, verify, ask the helper (request.json). The
    collector holds the release of `version` and the `held` ones."""
    collector = Collector(world["key"], (package, version), *held)  # type: ignore[arg-type]
    updater = Updater(
        world["cfg"],  # type: ignore[arg-type]
        world["state"],  # type: ignore[arg-type]
        lambda: collector,
        platform="debian-amd64",
        version=agent,
        sleep=lambda _s: False,
    )
    assert updater.work(version) is True
    return updater


def _result(world: dict[str, object]) -> dict[str, object]:
    state = world["state"]
    assert isinstance(state, Path)
    found: dict[str, object] = json.loads((state / "update" / RESULT_FILE).read_text())
    return found


def test_install_confirm_update_and_roll_back_with_the_real_dpkg(
    world: dict[str, object], tmp_path: Path
) -> None:
    root, state, cfg = world["root"], world["state"], world["cfg"]
    assert isinstance(root, Path) and isinstance(state, Path) and isinstance(cfg, UpdateConfig)
    keep = tmp_path / "keep"
    v1, v2 = _deb(tmp_path, "0.1.0"), _deb(tmp_path, "0.2.0")

    # 0.1.0 through the real command line, as canhgac-agent-update.service runs it.
    agent = _request(world, v1, "0.1.0", agent="0.0.9")
    config = tmp_path / "agent.yaml"
    config.write_text(json.dumps({"update": {"public_key": cfg.public_key}}))
    done = subprocess.run(
        [
            str(BIN / "canhgac-agent"),
            "--config",
            str(config),
            "--state-dir",
            str(state),
            "update",
            "apply",
            "--keep-dir",
            str(keep),
            "--dpkg-root",
            str(root),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("install")
    assert _installed_version(root) == "0.1.0"
    assert not (state / "update" / REQUEST_FILE).exists()
    assert _result(world)["state"] == "installed"
    assert json.loads((keep / INSTALLED_FILE).read_text())["state"] == "pending"

    # The new version's first acked Submit writes its marker: the helper confirms it.
    Updater(cfg, state, lambda: agent, version="0.1.0").acked()  # type: ignore[arg-type,return-value]
    assert apply(cfg, state, keep, 1000.0, dpkg_root=root).kind == "confirm"
    assert apply(cfg, state, keep, 1001.0, dpkg_root=root).kind == "nothing"

    # 0.2.0 installed, then never reports: past its deadline it is rolled back to 0.1.0, whose
    # package the agent kept from the update that brought it (no release of it needed).
    asked = _request(world, v2, "0.2.0", agent="0.1.0")
    assert "rolled back to 0.1.0 unless 0.2.0 reports within 600 s" in asked.state().detail
    assert (state / "update" / PREVIOUS_DIR / v1.name).read_bytes() == v1.read_bytes()
    assert apply(cfg, state, keep, 2000.0, dpkg_root=root).kind == "install"
    assert _installed_version(root) == "0.2.0"
    assert apply(cfg, state, keep, 2000.0 + 599, dpkg_root=root).kind == "nothing"
    assert apply(cfg, state, keep, 2000.0 + 600, dpkg_root=root).kind == "roll-back"
    assert _installed_version(root) == "0.1.0"
    result = _result(world)
    assert (result["version"], result["state"]) == ("0.2.0", "rolled-back")
    assert apply(cfg, state, keep, 9999.0, dpkg_root=root).kind == "nothing"

    # The agent, started again on 0.1.0, reports the roll back and does not fetch 0.2.0 again.
    calls: list[int] = []

    class Counting(Collector):
        def get_release(self, version: str) -> tuple[bytes, bytes]:
            calls.append(1)
            return super().get_release(version)

    again = Updater(cfg, state, lambda: Counting(world["key"], (v2, "0.2.0")), version="0.1.0")  # type: ignore[arg-type]
    assert again.state().state == "rolled-back"
    assert "did not report" in again.state().detail
    assert calls == []


def test_an_older_signed_release_left_by_the_agent_account_is_refused(
    world: dict[str, object], tmp_path: Path
) -> None:
    """The agent refuses an older release itself; one who holds the agent account need not
    ask it, and leaves a validly signed old request for the root helper: refused there too."""
    root, state, cfg = world["root"], world["state"], world["cfg"]
    assert isinstance(root, Path) and isinstance(state, Path) and isinstance(cfg, UpdateConfig)
    keep = tmp_path / "keep"
    _request(world, _deb(tmp_path, "0.2.0"), "0.2.0", agent="0.0.9")
    assert apply(cfg, state, keep, 1.0, dpkg_root=root).kind == "install"
    assert _installed_version(root) == "0.2.0"
    _request(world, _deb(tmp_path, "0.1.0"), "0.1.0", agent="0.0.9")  # an agent that lies
    assert apply(cfg, state, keep, 2.0, dpkg_root=root).kind == "install"
    assert _installed_version(root) == "0.2.0"
    result = _result(world)
    assert (result["version"], result["state"]) == ("0.1.0", "refused")
    assert "not newer than the installed" in str(result["detail"])


def test_a_package_swapped_after_the_agent_checked_it_is_refused_by_the_helper(
    world: dict[str, object], tmp_path: Path
) -> None:
    root, state, cfg = world["root"], world["state"], world["cfg"]
    assert isinstance(root, Path) and isinstance(state, Path) and isinstance(cfg, UpdateConfig)
    v1 = _deb(tmp_path, "0.1.0")
    _request(world, v1, "0.1.0", agent="0.0.9")
    # What a compromised agent user could do to its own directory: another package.
    (state / "update" / v1.name).write_bytes(_deb(tmp_path, "6.6.6").read_bytes())
    assert apply(cfg, state, tmp_path / "keep", 1.0, dpkg_root=root).kind == "install"
    assert _installed_version(root) == ""
    result = _result(world)
    assert result["state"] == "refused"
    assert "does not match the signed manifest" in str(result["detail"])


def test_a_signed_package_dpkg_cannot_install_leaves_the_version_before(
    world: dict[str, object], tmp_path: Path
) -> None:
    root, state, cfg = world["root"], world["state"], world["cfg"]
    assert isinstance(root, Path) and isinstance(state, Path) and isinstance(cfg, UpdateConfig)
    keep = tmp_path / "keep"
    _request(world, _deb(tmp_path, "0.1.0"), "0.1.0", agent="0.0.9")
    assert apply(cfg, state, keep, 1.0, dpkg_root=root).kind == "install"
    # A well-formed package whose install fails (its preinst does, as a full disk would).
    broken = _deb(tmp_path, "0.2.0", preinst="echo 'cannot install' >&2; exit 1")
    _request(world, broken, "0.2.0", agent="0.1.0")
    assert apply(cfg, state, keep, 2.0, dpkg_root=root).kind == "install"
    assert _installed_version(root) == "0.1.0"
    result = _result(world)
    assert result["state"] == "rolled-back"
    assert "dpkg -i failed" in str(result["detail"])


def test_a_signed_file_that_is_no_package_is_refused_before_dpkg(
    world: dict[str, object], tmp_path: Path
) -> None:
    root, state, cfg = world["root"], world["state"], world["cfg"]
    assert isinstance(root, Path) and isinstance(state, Path) and isinstance(cfg, UpdateConfig)
    garbage = tmp_path / f"{NAME}_0.2.0_all.deb"
    garbage.write_bytes(b"!<arch>\nnot really a package")
    _request(world, garbage, "0.2.0", agent="0.1.0")
    assert apply(cfg, state, tmp_path / "keep", 1.0, dpkg_root=root).kind == "install"
    assert _installed_version(root) == ""
    result = _result(world)
    assert (result["version"], result["state"]) == ("0.2.0", "refused")
    assert "not a Debian package" in str(result["detail"])


def _by_hand(root: Path, package: Path) -> None:
    """An install that was no self-update (the first one, by the operator): nothing kept."""
    subprocess.run(dpkg_install_command(package, root), check=True, capture_output=True)


def test_the_first_self_update_rolls_back_to_the_running_release_fetched_for_it(
    world: dict[str, object], tmp_path: Path
) -> None:
    root, state, cfg = world["root"], world["state"], world["cfg"]
    assert isinstance(root, Path) and isinstance(state, Path) and isinstance(cfg, UpdateConfig)
    keep = tmp_path / "keep"
    v1, v2 = _deb(tmp_path, "0.1.0"), _deb(tmp_path, "0.1.1")
    _by_hand(root, v1)
    # The collector holds the signed 0.1.0 too: the agent fetches it before asking.
    asked = _request(world, v2, "0.1.1", "0.1.0", (v1, "0.1.0"))
    assert asked.state().state == "installing"
    assert "rolled back to 0.1.0 unless 0.1.1 reports within 600 s" in asked.state().detail
    assert (state / "update" / PREVIOUS_DIR / v1.name).read_bytes() == v1.read_bytes()
    assert apply(cfg, state, keep, 1000.0, dpkg_root=root).kind == "install"
    assert _installed_version(root) == "0.1.1"
    assert "rolled back to 0.1.0 unless 0.1.1 reports" in str(_result(world)["detail"])
    # 0.1.1 never reports: rolled back with the package the agent fetched.
    assert apply(cfg, state, keep, 1000.0 + 600, dpkg_root=root).kind == "roll-back"
    assert _installed_version(root) == "0.1.0"
    result = _result(world)
    assert (result["version"], result["state"]) == ("0.1.1", "rolled-back")
    assert "0.1.0 installed again" in str(result["detail"])
    again = Updater(cfg, state, lambda: Collector(world["key"]), version="0.1.0")  # type: ignore[arg-type]
    assert (again.state().target_version, again.state().state) == ("0.1.1", "rolled-back")


def test_the_package_to_roll_back_to_is_fetched_once_across_attempts(
    world: dict[str, object], tmp_path: Path
) -> None:
    state = world["state"]
    assert isinstance(state, Path)
    v1, v2 = _deb(tmp_path, "0.1.0"), _deb(tmp_path, "0.1.1")
    collector = Collector(world["key"], (v1, "0.1.0"), (v2, "0.1.1"))  # type: ignore[arg-type]
    updater = Updater(
        world["cfg"],  # type: ignore[arg-type]
        state,
        lambda: collector,
        platform="debian-amd64",
        version="0.1.0",
        sleep=lambda _s: False,
    )
    assert updater.work("0.1.1") is True
    assert updater.work("0.1.1") is True  # asked again (the helper had not run)
    assert collector.downloads == [sha256_file(v1), sha256_file(v2)]


def test_without_a_release_of_the_running_version_no_roll_back_is_possible_and_said(
    world: dict[str, object], tmp_path: Path
) -> None:
    root, state, cfg = world["root"], world["state"], world["cfg"]
    assert isinstance(root, Path) and isinstance(state, Path) and isinstance(cfg, UpdateConfig)
    keep = tmp_path / "keep"
    _by_hand(root, _deb(tmp_path, "0.1.0"))
    asked = _request(world, _deb(tmp_path, "0.1.1"), "0.1.1", "0.1.0")
    assert asked.state().state == "installing"
    assert asked.state().detail.endswith(
        "no roll back possible: the collector has no rolled-out release of the running 0.1.0 "
        "for debian-amd64"
    )
    assert not (state / "update" / PREVIOUS_DIR).exists()
    assert apply(cfg, state, keep, 1000.0, dpkg_root=root).kind == "install"
    assert _installed_version(root) == "0.1.1"
    result = _result(world)
    assert result["state"] == "installed"
    assert "no roll back possible" in str(result["detail"])
    assert apply(cfg, state, keep, 1000.0 + 600, dpkg_root=root).kind == "roll-back"
    assert _installed_version(root) == "0.1.1"
    result = _result(world)
    assert (result["version"], result["state"]) == ("0.1.1", "failed")
    assert "no package kept to roll back to" in str(result["detail"])
    assert apply(cfg, state, keep, 9999.0, dpkg_root=root).kind == "nothing"


def _tamper_package(previous: Path, tmp_path: Path) -> None:
    (package,) = previous.glob("*.deb")
    package.write_bytes(_deb(tmp_path, "6.6.6").read_bytes())


def _older_signed_release(previous: Path, tmp_path: Path, key: Ed25519PrivateKey) -> None:
    """The agent account leaves a validly signed older release as the one to roll back to, so
    that a roll back would install it."""
    old = _deb(tmp_path, "0.0.5")
    manifest, signature = Collector(key, (old, "0.0.5")).releases["0.0.5"]
    for f in previous.iterdir():
        f.unlink()
    shutil.copy(old, previous / old.name)
    (previous / "manifest.json").write_bytes(manifest)
    (previous / "manifest.sig").write_bytes(signature)


@pytest.mark.parametrize("change", ["tampered", "older"])
def test_a_package_to_roll_back_to_changed_after_the_agent_checked_it_stops_the_update(
    world: dict[str, object], tmp_path: Path, change: str
) -> None:
    """The agent verified it before asking: a change since is someone in its account, and the
    new version must not go on without the roll back announced. Refused, nothing installed,
    nothing kept of it."""
    root, state, cfg = world["root"], world["state"], world["cfg"]
    assert isinstance(root, Path) and isinstance(state, Path) and isinstance(cfg, UpdateConfig)
    keep = tmp_path / "keep"
    v1 = _deb(tmp_path, "0.1.0")
    _by_hand(root, v1)
    _request(world, _deb(tmp_path, "0.1.1"), "0.1.1", "0.1.0", (v1, "0.1.0"))
    previous = state / "update" / PREVIOUS_DIR
    if change == "tampered":
        _tamper_package(previous, tmp_path)
        why = "the package to roll back to: canhgac-update-probe_0.1.0_all.deb: sha256 or size"
    else:
        _older_signed_release(previous, tmp_path, world["key"])  # type: ignore[arg-type]
        why = "the package to roll back to: "
        why += f"{previous / 'manifest.json'}: the signed manifest is for 0.0.5, not 0.1.0"
    assert apply(cfg, state, keep, 1000.0, dpkg_root=root).kind == "install"
    assert _installed_version(root) == "0.1.0"
    result = _result(world)
    assert (result["version"], result["state"]) == ("0.1.1", "refused")
    assert str(result["detail"]).startswith(why)
    assert not [f for f in keep.iterdir() if "0.1.0" in f.name or "0.0.5" in f.name]
    assert not (keep / INSTALLED_FILE).exists()
