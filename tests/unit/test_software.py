"""Software inventory parsers (dpkg recorded on this VM; rpm and Windows written from their
documented shapes) and the probe's rule of when the whole list goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import ProbeFailed
from agent.model import InstalledProgram
from agent.platform.command import Completed
from agent.platform.windows import PerScript
from agent.probes.software import (
    DPKG_FORMAT,
    POWERSHELL_SCRIPT,
    RPM_FORMAT,
    SoftwareOptions,
    SoftwareProbe,
    inventory_hash,
    parse_dpkg,
    parse_rpm,
    parse_windows_programs,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "software"


def _text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8-sig")


def test_dpkg_recorded() -> None:
    programs = parse_dpkg(_text("dpkg_debian12_head.txt"))
    assert len(programs) == 60
    assert programs[0] == InstalledProgram(
        name="adduser",
        version="3.134",
        publisher="Debian Adduser Developers",
        installed_at=1747699200.0,
        origin="dpkg",
    )


def test_dpkg_skips_removed_packages() -> None:
    text = "rc \tfoo\t1.0\tX <x@y>\t0\nii \tbar\t2.0\tY\t1700000000\n"
    assert [p.name for p in parse_dpkg(text)] == ["bar"]


def test_rpm_without_keys_and_none_vendor() -> None:
    programs = parse_rpm(_text("rpm_written.txt"))
    assert [p.name for p in programs] == ["bash", "firefox", "libreoffice-core"]
    assert programs[2].publisher == ""
    assert programs[1].installed_at == 1714003200.0


def test_windows_both_views_and_users() -> None:
    programs = parse_windows_programs(_text("windows_uninstall.json"))
    assert [p.origin for p in programs] == [
        "hklm64",
        "hklm64",
        "hklm32",
        "hklm32",
        "hkcu",
        "hklm64",
    ]
    assert programs[0].name == "VNPT-CA Plugin"
    assert programs[0].installed_at == 1710201600.0  # 2024-03-12
    assert programs[2].installed_at == 1705276800.0  # "15/01/2024"
    assert programs[3].installed_at == 0.0  # no InstallDate
    assert programs[5].name == "Phần mềm Quản lý văn bản (VNPT-iOffice)"


def test_hash_does_not_depend_on_order_or_install_date() -> None:
    a = InstalledProgram("a", "1", installed_at=1.0, origin="dpkg")
    b = InstalledProgram("b", "2", origin="dpkg")
    assert inventory_hash([a, b]) == inventory_hash([b, InstalledProgram("a", "1", origin="dpkg")])
    assert inventory_hash([a, b]) != inventory_hash([a, InstalledProgram("b", "3", origin="dpkg")])


class _Machine:
    """dpkg-query answering from the recording; `extra` lines are "installed" later."""

    def __init__(self) -> None:
        self.extra = ""
        self.now = 1000.0

    def run(self, argv: list[str], timeout: float) -> Completed:
        assert argv == ["dpkg-query", "--show", "--showformat", DPKG_FORMAT]
        return Completed(0, _text("dpkg_debian12_head.txt") + self.extra, "")


def test_full_list_at_start_on_change_and_every_full_every() -> None:
    machine = _Machine()
    probe = SoftwareProbe(
        SoftwareOptions(full_every=3600.0),
        run=machine.run,
        which=lambda name: "/usr/bin/dpkg-query" if name == "dpkg-query" else None,
        system=lambda: "Linux",
        clock=lambda: machine.now,
    )
    first = probe.collect()
    assert (first.complete, first.count, len(first.programs), first.source) == (
        True,
        60,
        60,
        "dpkg",
    )
    machine.now += 60
    second = probe.collect()
    assert (second.complete, second.programs, second.hash) == (False, (), first.hash)
    machine.extra = "ii \tvgca-sign-service\t1.2\tBan Co yeu\t1700000000\n"
    machine.now += 60
    changed = probe.collect()
    assert (changed.complete, changed.count) == (True, 61)
    assert changed.hash != first.hash
    machine.now += 3600
    assert probe.collect().complete is True  # unchanged, but full_every has passed


def test_no_package_database_is_a_probe_failure() -> None:
    probe = SoftwareProbe(which=lambda name: None, system=lambda: "Linux")
    with pytest.raises(ProbeFailed, match="neither dpkg-query nor rpm"):
        probe.collect()


def test_windows_uses_one_powershell_run_and_rpm_when_no_dpkg() -> None:
    scripts: list[str] = []

    def run_powershell(script: str, timeout: float) -> str:
        scripts.append(script)
        return _text("windows_uninstall.json")

    windows = SoftwareProbe(
        powershell=PerScript(run_powershell), system=lambda: "Windows"
    ).collect()
    assert scripts == [POWERSHELL_SCRIPT]
    assert (windows.source, windows.count, windows.complete) == ("windows_registry", 6, True)

    def rpm(argv: list[str], timeout: float) -> Completed:
        assert argv == ["rpm", "--query", "--all", "--queryformat", RPM_FORMAT]
        return Completed(0, _text("rpm_written.txt"), "")

    fedora = SoftwareProbe(
        run=rpm,
        which=lambda name: "/usr/bin/rpm" if name == "rpm" else None,
        system=lambda: "Linux",
    ).collect()
    assert (fedora.source, fedora.count) == ("rpm", 3)
