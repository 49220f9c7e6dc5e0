"""Disk health parsers on real smartctl JSON (this VM's and public recordings) and on the
Windows Storage document; the probe with its OS boundary replayed."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import ProbeFailed
from agent.model import DiskHealth, DriveHealth
from agent.platform.command import Completed
from agent.platform.windows import PerScript
from agent.probes.disk_health import (
    POWERSHELL_SCRIPT,
    DiskHealthProbe,
    parse_smartctl,
    parse_smartctl_scan,
    parse_windows_disks,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "disk_health"


def _text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8-sig")


def test_failing_hdd_from_a_public_recording() -> None:
    drive = parse_smartctl(_text("scrutiny_smart-fail2_trimmed.json"), "/dev/sdc")
    assert drive == DriveHealth(
        device="/dev/sdc",
        health="failing",
        source="smartctl",
        model="Hitachi HDS721050DLE630",
        serial="MSK423Y20S3HBC",
        media="hdd",
        protocol="ATA",
        raw_health="failed",
        reallocated_sectors=1975,
        pending_sectors=8,
        uncorrected_errors=-1,  # this drive has no attribute 187
        wear_percent=-1,
        power_on_hours=65592,
        temperature_celsius=25.0,
    )


def test_healthy_nvme_ssd_from_a_public_recording() -> None:
    drive = parse_smartctl(_text("scrutiny_smart-nvme.json"), "/dev/nvme0")
    assert (drive.health, drive.media, drive.protocol) == ("ok", "ssd", "NVMe")
    assert (drive.wear_percent, drive.uncorrected_errors) == (0, 0)
    assert (drive.power_on_hours, drive.temperature_celsius) == (2401, 36.0)
    # NVMe has no sector attributes: unknown, not 0.
    assert (drive.reallocated_sectors, drive.pending_sectors) == (-1, -1)


def test_this_vms_virtio_disk_has_no_smart() -> None:
    # Recorded here: smartctl 7.3 as root on /dev/vda (virtio) says it cannot tell the type.
    drive = parse_smartctl(_text("vm_vda_all.json"), "/dev/vda")
    assert (drive.health, drive.raw_health) == ("unknown", "")
    assert drive.error == "/dev/vda: Unable to detect device type"
    denied = parse_smartctl(_text("vm_vda_sat.json"), "/dev/vda")
    assert denied.health == "unknown"
    assert "Operation not permitted" in denied.error


def test_this_vms_scan_finds_no_drive() -> None:
    assert parse_smartctl_scan(_text("vm_scan_open.json")) == []
    scan = '{"devices":[{"name":"/dev/sda","type":"sat"},{"name":"/dev/nvme0","type":"nvme"}]}'
    assert parse_smartctl_scan(scan) == [("/dev/sda", "sat"), ("/dev/nvme0", "nvme")]


def test_worn_ata_ssd_and_nvme_critical_warning() -> None:
    # Synthetic, from the shapes of the recordings: a Samsung-style life-left attribute at 3.
    worn = (
        '{"smart_status":{"passed":true},"rotation_rate":0,"device":{"protocol":"ATA"},'
        '"ata_smart_attributes":{"table":[{"id":177,"name":"Wear_Leveling_Count","value":3,'
        '"raw":{"value":3100}},{"id":5,"name":"Reallocated_Sector_Ct","value":100,'
        '"raw":{"value":0}}]}}'
    )
    drive = parse_smartctl(worn, "/dev/sda")
    assert (drive.media, drive.wear_percent, drive.health) == ("ssd", 97, "ok")
    read_only = (
        '{"smart_status":{"passed":true},"device":{"protocol":"NVMe"},'
        '"nvme_smart_health_information_log":{"critical_warning":8,"percentage_used":104}}'
    )
    assert parse_smartctl(read_only, "/dev/nvme0").health == "failing"


def test_not_json_is_a_probe_failure() -> None:
    with pytest.raises(ProbeFailed, match="not JSON"):
        parse_smartctl("smartctl 6.6 2016-05-31 r4324\n", "/dev/sda")


def test_windows_storage_document() -> None:
    health = parse_windows_disks(_text("windows_physicaldisk.json"))
    ssd, hdd, usb = health.drives
    assert (ssd.health, ssd.media, ssd.protocol, ssd.wear_percent) == ("ok", "ssd", "SATA", 97)
    assert (ssd.power_on_hours, ssd.temperature_celsius, ssd.source) == (21034, 41.0, "storage")
    # Numbers instead of words (CIM without the Storage module's formatting).
    assert (hdd.health, hdd.media, hdd.protocol) == ("failing", "hdd", "SATA")
    assert hdd.raw_health == "Unhealthy, Predictive Failure"
    assert (hdd.uncorrected_errors, hdd.temperature_celsius) == (12, None)
    # A USB stick without reliability counters: health from HealthStatus, counts unknown.
    assert (usb.health, usb.media, usb.wear_percent, usb.power_on_hours) == (
        "ok",
        "unknown",
        -1,
        -1,
    )


def test_probe_on_linux_runs_scan_then_each_drive() -> None:
    calls: list[list[str]] = []
    answers = {
        "--scan-open": '{"devices":[{"name":"/dev/sdc","type":"sat"}]}',
        "/dev/sdc": _text("scrutiny_smart-fail2_trimmed.json"),
    }

    def run(argv: list[str], timeout: float) -> Completed:
        calls.append(argv)
        key = "--scan-open" if "--scan-open" in argv else argv[-1]
        return Completed(216 if key == "/dev/sdc" else 0, answers[key], "")

    section = DiskHealthProbe(run=run, system=lambda: "Linux").collect()
    assert calls == [
        ["smartctl", "--scan-open", "--json"],
        ["smartctl", "--json", "--all", "--device", "sat", "/dev/sdc"],
    ]
    assert [d.health for d in section.drives] == ["failing"]


def test_probe_on_this_vm_says_why_there_is_nothing() -> None:
    def run(argv: list[str], timeout: float) -> Completed:
        return Completed(0, _text("vm_scan_open.json"), "")

    assert DiskHealthProbe(run=run, system=lambda: "Linux").collect() == DiskHealth(
        notes=("smartctl --scan-open found no drive with SMART",)
    )


def test_probe_on_windows_uses_one_powershell_run() -> None:
    scripts: list[str] = []

    def run_powershell(script: str, timeout: float) -> str:
        scripts.append(script)
        return _text("windows_physicaldisk.json")

    section = DiskHealthProbe(
        powershell=PerScript(run_powershell), system=lambda: "Windows"
    ).collect()
    assert scripts == [POWERSHELL_SCRIPT]
    assert len(section.drives) == 3


def test_one_drive_that_hangs_leaves_the_others() -> None:
    def run(argv: list[str], timeout: float) -> Completed:
        if "--scan-open" in argv:
            return Completed(0, '{"devices":[{"name":"/dev/sda"},{"name":"/dev/nvme0"}]}', "")
        if argv[-1] == "/dev/sda":
            raise ProbeFailed("smartctl did not finish within 30 s")
        return Completed(0, _text("scrutiny_smart-nvme.json"), "")

    sda, nvme = DiskHealthProbe(run=run, system=lambda: "Linux").collect().drives
    assert (sda.health, sda.error) == ("unknown", "smartctl did not finish within 30 s")
    assert nvme.health == "ok"
