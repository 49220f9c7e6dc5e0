"""Hardware probe: parsers against recorded fixtures, the probe end to end, run_powershell."""

from __future__ import annotations

import copy
import json
import logging
import socket
import stat
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import psutil
import pytest

from agent.errors import ProbeFailed
from agent.model import Disk, Hardware, NetInterface, Temperature
from agent.platform.cpu import cpu_usage_ratio
from agent.platform.windows import UTF8_PREFIX, PerScript, run_powershell
from agent.probes.hardware import (
    POWERSHELL_SCRIPT,
    THERMAL_SCRIPT,
    HardwareProbe,
    RawNicAddress,
    RawNicStats,
    RawPartition,
    RawSample,
    RawUsage,
    clean_identity_value,
    is_real_partition,
    parse_cpu_model,
    parse_disks,
    parse_hardware,
    parse_interfaces,
    parse_os_release,
    parse_temperatures,
    parse_windows_identity,
    parse_windows_temperatures,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hardware"


def _load_linux() -> tuple[RawSample, dict[str, float]]:
    doc = json.loads((FIXTURES / "linux_sample.json").read_text(encoding="utf-8"))
    return cast(RawSample, doc["sample"]), cast(dict[str, float], doc["cpu_times_before"])


def _windows_doc(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


@pytest.fixture
def linux() -> RawSample:
    return _load_linux()[0]


@pytest.fixture
def linux_before() -> dict[str, float]:
    return _load_linux()[1]


# ---- test double for psutil, replaying a recorded sample ---------------------------------


class Record:
    """Stands in for psutil's namedtuples: attribute access plus `_asdict()`."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)
        self._values = dict(fields)

    def _asdict(self) -> dict[str, Any]:
        return dict(self._values)


_FAMILIES = {"inet": socket.AF_INET, "inet6": socket.AF_INET6, "link": psutil.AF_LINK}


class FakePs:
    """psutil without sensors (like on Windows), answering from a RawSample."""

    AF_LINK = psutil.AF_LINK

    def __init__(
        self,
        sample: RawSample,
        cpu_times: list[Mapping[str, float]] | None = None,
        usage_errors: Mapping[str, OSError] | None = None,
    ) -> None:
        self.sample = sample
        self._cpu_times: Iterator[Mapping[str, float]] = iter(cpu_times or [sample["cpu_times"]])
        self._last_times: Mapping[str, float] = sample["cpu_times"]
        self._usage_errors = usage_errors or {}

    def cpu_count(self, logical: bool = True) -> int | None:
        return self.sample["cpu_count_logical" if logical else "cpu_count_physical"]

    def cpu_times(self) -> Record:
        self._last_times = next(self._cpu_times, self._last_times)
        return Record(**self._last_times)

    def getloadavg(self) -> tuple[float, ...]:
        return tuple(self.sample["loadavg"])

    def cpu_freq(self) -> Record:
        return Record(current=self.sample["cpu_freq_mhz"], min=0.0, max=0.0)

    def virtual_memory(self) -> Record:
        return Record(**self.sample["virtual_memory"], percent=1.2)

    def swap_memory(self) -> Record:
        return Record(**self.sample["swap_memory"], percent=0.0)

    def boot_time(self) -> float:
        return self.sample["boot_time"]

    def disk_partitions(self, all: bool = False) -> list[Record]:
        assert all is False
        return [Record(**p) for p in self.sample["partitions"]]

    def disk_usage(self, path: str) -> Record:
        if path in self._usage_errors:
            raise self._usage_errors[path]
        usage = self.sample["disk_usage"][path]
        assert usage is not None
        return Record(**usage, percent=0.0)

    def net_if_stats(self) -> dict[str, Record]:
        return {name: Record(**s) for name, s in self.sample["nic_stats"].items()}

    def net_if_addrs(self) -> dict[str, list[Record]]:
        return {
            name: [Record(family=_FAMILIES[a["family"]], address=a["address"]) for a in addrs]
            for name, addrs in self.sample["nic_addresses"].items()
        }

    def net_io_counters(self, pernic: bool = False) -> dict[str, Record]:
        assert pernic is True
        return {name: Record(**c) for name, c in self.sample["nic_counters"].items()}


class FakePsWithSensors(FakePs):
    """Synthetic: a laptop's sensors, which the recording VM does not have."""

    def sensors_temperatures(self) -> dict[str, list[Record]]:
        return {"coretemp": [Record(label="Package id 0", current=51.0, high=84.0, critical=100.0)]}


def _linux_probe(sample: RawSample, ps: FakePs | None = None) -> HardwareProbe:
    return HardwareProbe(
        ps=ps or FakePs(sample),
        read_text=sample["files"].get,
        powershell=PerScript(_no_powershell),
        system=lambda: "Linux",
    )


def _no_powershell(script: str, timeout: float) -> str:
    raise AssertionError("PowerShell must not run on Linux")


# ---- Linux recording -----------------------------------------------------------------


def test_fixture_has_every_field_read_sample_produces(linux: RawSample) -> None:
    assert set(linux) == set(RawSample.__required_keys__)


def test_linux_host_from_os_release_and_kernel(linux: RawSample) -> None:
    host = parse_hardware(linux, None).host
    assert host.hostname == "vm"
    assert host.os_name == "Debian GNU/Linux 12 (bookworm)"
    assert host.os_version == "12"
    assert host.os_build == "6.18.44-fc-v595"
    assert host.arch == "x86_64"
    # The VM has no /sys/class/dmi/id at all.
    assert (host.vendor, host.model, host.serial) == ("", "", "")
    assert host.boot_time == 1795790254.0
    assert host.uptime_seconds == pytest.approx(386.0901673)


def test_linux_cpu(linux: RawSample, linux_before: dict[str, float]) -> None:
    cpu = parse_hardware(linux, linux_before).cpu
    assert cpu.model == "Intel(R) Xeon(R) Processor @ 2.50GHz"
    assert (cpu.physical_cores, cpu.logical_cores) == (2, 2)
    assert (cpu.load1, cpu.load5, cpu.load15) == (0.025390625, 0.0888671875, 0.05615234375)
    assert cpu.frequency_mhz == 2499.982
    # Only idle time advanced between the two recorded reads.
    assert cpu.usage_ratio == pytest.approx(0.0, abs=1e-9)


def test_linux_memory(linux: RawSample) -> None:
    memory = parse_hardware(linux, None).memory
    assert memory.total_bytes == 25276514304
    assert memory.available_bytes == 24972255232
    assert memory.used_bytes == 304259072
    assert (memory.swap_total_bytes, memory.swap_used_bytes) == (0, 0)


def test_linux_disks(linux: RawSample) -> None:
    assert parse_hardware(linux, None).disks == (
        Disk(
            mountpoint="/",
            device="/dev/vda",
            fstype="ext4",
            total_bytes=270553174016,
            used_bytes=23387619328,
            free_bytes=85556674560,
        ),
    )


def test_linux_interfaces_skip_loopback_and_strip_zone(linux: RawSample) -> None:
    interfaces = parse_hardware(linux, None).interfaces
    assert [i.name for i in interfaces] == ["eth0", "ifb0", "ifb1"]
    eth0 = interfaces[0]
    assert eth0 == NetInterface(
        name="eth0",
        up=True,
        speed_mbps=0,
        duplex="unknown",
        mtu=1400,
        mac="02:fc:00:00:00:01",
        addresses=("192.0.2.2", "fd00::2", "fe80::fc:ff:fe00:1"),
        bytes_sent=122563,
        bytes_recv=89799062,
    )
    assert interfaces[1].up is False
    assert interfaces[1].addresses == ()


def test_linux_vm_has_no_sensors(linux: RawSample) -> None:
    hardware = parse_hardware(linux, None)
    assert hardware.temperatures == ()
    assert hardware.temperature_state == "unavailable"
    # The battery is the power probe's (agent/probes/power.py).
    assert hardware.battery is None


def test_linux_dmi_values_read_and_placeholders_dropped(linux: RawSample) -> None:
    # Synthetic DMI files, as found on an office desktop whose board maker left the serial.
    linux["files"]["/sys/class/dmi/id/sys_vendor"] = "LENOVO\n"
    linux["files"]["/sys/class/dmi/id/product_name"] = "  ThinkCentre M720q \n"
    linux["files"]["/sys/class/dmi/id/product_serial"] = "To be filled by O.E.M.\n"
    host = parse_hardware(linux, None).host
    assert (host.vendor, host.model, host.serial) == ("LENOVO", "ThinkCentre M720q", "")


def test_linux_without_os_release_falls_back_to_platform(linux: RawSample) -> None:
    linux["files"]["/etc/os-release"] = None
    linux["files"]["/usr/lib/os-release"] = None
    host = parse_hardware(linux, None).host
    assert (host.os_name, host.os_version, host.os_build) == ("Linux", "", "6.18.44-fc-v595")


@pytest.mark.parametrize(
    "raw",
    [
        "To be filled by O.E.M.",
        "Default string",
        "System Serial Number",
        "None",
        "0",
        "  default STRING \n",
        "System manufacturer",
        "",
        None,
    ],
)
def test_placeholder_identity_values_become_empty(raw: str | None) -> None:
    assert clean_identity_value(raw) == ""


def test_real_identity_values_are_kept_trimmed() -> None:
    assert clean_identity_value(" Hewlett-Packard\n") == "Hewlett-Packard"
    assert clean_identity_value("PC0FXY12") == "PC0FXY12"


def test_os_release_quoting_comments_and_name_fallback() -> None:
    text = '# comment\nNAME=\'Ubuntu\'\nVERSION_ID="22.04"\nPRETTY_NAME="Say \\"hi\\" \\$HOME"\n'
    parsed = parse_os_release(text)
    assert parsed.pretty_name == 'Say "hi" $HOME'
    assert parsed.version_id == "22.04"
    assert parse_os_release("NAME=Alpine Linux\n").pretty_name == "Alpine Linux"
    assert parse_os_release("").version_id == ""


def test_cpu_model_from_arm_cpuinfo_and_fallback() -> None:
    arm = "processor\t: 0\nProcessor\t: ARMv7 Processor rev 4 (v7l)\nHardware\t: BCM2835\n"
    assert parse_cpu_model(arm) == "ARMv7 Processor rev 4 (v7l)"
    assert parse_cpu_model("processor\t: 0\n", "Intel64 Family 6") == "Intel64 Family 6"
    assert parse_cpu_model(None) == ""


def test_cpu_usage_ratio_between_reads() -> None:
    before = {"user": 10.0, "system": 5.0, "idle": 80.0, "iowait": 5.0}
    after = {"user": 13.0, "system": 6.0, "idle": 92.0, "iowait": 9.0}
    assert cpu_usage_ratio(None, after) == 0.0
    assert cpu_usage_ratio(before, after) == pytest.approx(4 / 20)
    assert cpu_usage_ratio(after, after) == 0.0
    # Guest time is already inside user on Linux; counting it twice would inflate usage.
    with_guest = {**after, "guest": 50.0}
    assert cpu_usage_ratio({**before, "guest": 0.0}, with_guest) == pytest.approx(4 / 20)


# ---- disks (synthetic mounts the VM does not have) -------------------------------------


def _part(device: str, mountpoint: str, fstype: str, opts: str = "rw") -> RawPartition:
    return RawPartition(device=device, mountpoint=mountpoint, fstype=fstype, opts=opts)


def _usage(total: int, used: int) -> RawUsage:
    return RawUsage(total=total, used=used, free=total - used)


def test_disks_skip_snaps_empty_cdrom_unreadable_and_duplicates() -> None:
    partitions = [
        _part("/dev/sda2", "/", "ext4"),
        _part("/dev/loop3", "/snap/core22/1380", "squashfs", "ro,nodev"),
        _part("/dev/sdb1", "/media/ketoan/USB", "vfat"),
        _part("/dev/sda1", "/boot/efi", "vfat"),
        _part("/dev/sda2", "/", "ext4"),
        _part("D:\\", "D:\\", "", "ro,cdrom"),
    ]
    usage: dict[str, RawUsage | None] = {
        "/": _usage(500, 200),
        "/snap/core22/1380": _usage(80, 80),
        "/media/ketoan/USB": None,  # disk_usage raised PermissionError
        "/boot/efi": _usage(100, 10),
        "D:\\": _usage(1, 1),
    }
    disks = parse_disks(partitions, usage)
    assert [(d.mountpoint, d.used_bytes, d.free_bytes) for d in disks] == [
        ("/", 200, 300),
        ("/boot/efi", 10, 90),
    ]


def test_cdrom_with_media_is_a_disk() -> None:
    assert is_real_partition(_part("E:\\", "E:\\", "CDFS", "ro,cdrom"))
    assert not is_real_partition(_part("E:\\", "E:\\", "", "ro,cdrom"))


def test_collect_skips_disk_whose_usage_raises(linux: RawSample) -> None:
    linux["partitions"].append(_part("/dev/sdb1", "/mnt/private", "ext4"))
    ps = FakePs(linux, usage_errors={"/mnt/private": PermissionError(13, "Permission denied")})
    disks = _linux_probe(linux, ps).collect().disks
    assert [d.mountpoint for d in disks] == ["/"]


# ---- sensors and battery -----------------------------------------------------------------


def test_temperatures_unknown_limits_become_zero() -> None:
    readings = {
        "acpitz": [{"label": "", "current": 27.8, "high": None, "critical": None}],
        "coretemp": [{"label": "Core 0", "current": 45.0, "high": 80.0, "critical": 100.0}],
    }
    assert parse_temperatures(cast(Any, readings)) == (
        Temperature(sensor="acpitz", label="", celsius=27.8),
        Temperature("coretemp", "Core 0", 45.0, high_celsius=80.0, critical_celsius=100.0),
    )


def test_collect_without_sensor_functions_gives_empty(linux: RawSample) -> None:
    ps = FakePs(linux)
    assert not hasattr(ps, "sensors_temperatures")
    hardware = _linux_probe(linux, ps).collect()
    assert hardware.temperatures == ()


def test_collect_with_sensor_functions(linux: RawSample) -> None:
    hardware = _linux_probe(linux, FakePsWithSensors(linux)).collect()
    assert hardware.temperatures == (
        Temperature("coretemp", "Package id 0", 51.0, high_celsius=84.0, critical_celsius=100.0),
    )
    assert (hardware.temperature_state, hardware.temperature_detail) == ("ok", "")


# ---- network interfaces, Windows style (synthetic) ---------------------------------------


def test_windows_style_interfaces() -> None:
    stats = {
        "Ethernet": RawNicStats(isup=True, duplex=2, speed=1000, mtu=1500, flags=""),
        "Wi-Fi": RawNicStats(isup=False, duplex=1, speed=0, mtu=1500, flags=""),
        "Loopback Pseudo-Interface 1": RawNicStats(
            isup=True, duplex=2, speed=1073, mtu=1500, flags=""
        ),
    }
    addresses = {
        "Ethernet": [
            RawNicAddress(family="link", address="AA-BB-CC-00-11-22"),
            RawNicAddress(family="inet", address="10.20.1.15"),
            RawNicAddress(family="inet6", address="fe80::1c2b:3a4d:5e6f:7081%12"),
        ],
        "Loopback Pseudo-Interface 1": [
            RawNicAddress(family="inet", address="127.0.0.1"),
            RawNicAddress(family="inet6", address="::1"),
        ],
    }
    interfaces = parse_interfaces(stats, addresses, {})
    assert [i.name for i in interfaces] == ["Ethernet", "Wi-Fi"]
    ethernet, wifi = interfaces
    assert (ethernet.duplex, ethernet.speed_mbps, ethernet.mac) == (
        "full",
        1000,
        "aa:bb:cc:00:11:22",
    )
    assert ethernet.addresses == ("10.20.1.15", "fe80::1c2b:3a4d:5e6f:7081")
    assert ethernet.bytes_recv == 0  # no counters for it: zero, not a failure
    assert (wifi.duplex, wifi.up, wifi.mac, wifi.addresses) == ("half", False, "", ())


# ---- Windows PowerShell document ---------------------------------------------------------


def test_windows10_single_objects() -> None:
    identity = parse_windows_identity(_windows_doc("windows10_pro.json"))
    assert (identity.manufacturer, identity.model, identity.serial) == (
        "Dell Inc.",
        "OptiPlex 3050",
        "7XK2LM2",
    )
    assert (identity.os_caption, identity.os_version, identity.os_build) == (
        "Microsoft Windows 10 Pro",
        "10.0.19045",
        "19045",
    )
    assert identity.cpu_model == "Intel(R) Core(TM) i5-7500 CPU @ 3.40GHz"


def test_windows11_vi_vn_arrays_bom_null_serial_placeholder() -> None:
    identity = parse_windows_identity(_windows_doc("windows11_vi-VN.json"))
    assert identity.manufacturer == ""  # "To be filled by O.E.M."
    assert identity.model == "Máy bộ văn phòng H310"
    assert identity.serial == ""  # null
    assert identity.os_caption == "Microsoft Windows 11 Pro cho Giáo dục"
    assert (identity.os_version, identity.os_build) == ("10.0.22631", "22631")
    assert identity.cpu_model == "Intel(R) Core(TM) i3-10100 CPU @ 3.60GHz"


def test_windows_null_and_missing_sections_give_empty_values() -> None:
    identity = parse_windows_identity(
        '{"ComputerSystem":null,"BIOS":[],"OperatingSystem":[null,{"Caption":"X","BuildNumber":19045}]}'
    )
    assert (identity.manufacturer, identity.serial, identity.cpu_model) == ("", "", "")
    assert (identity.os_caption, identity.os_build) == ("X", "19045")


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (_windows_doc("windows_truncated.json"), "not valid JSON: Unterminated string"),
        ("", "empty"),
        ("   \r\n", "empty"),
        ("[1, 2]", "JSON list, not an object"),
        ("null", "JSON NoneType, not an object"),
        ('{"Unrelated": 1}', "has none of ComputerSystem"),
        ("Get-CimInstance : Access denied", "not valid JSON: Expecting value at character 0"),
    ],
)
def test_windows_bad_document_raises_with_reason(document: str, reason: str) -> None:
    with pytest.raises(ProbeFailed, match="PowerShell hardware document") as caught:
        parse_windows_identity(document)
    assert reason in str(caught.value)


def _windows_probe(
    sample: RawSample,
    run: Any,
    calls: list[tuple[str, float]] | None = None,
    *,
    thermal_every: float = 0.0,
    clock: Any = None,
) -> HardwareProbe:
    def run_recorded(script: str, timeout: float) -> str:
        if calls is not None:
            calls.append((script, timeout))
        return cast(str, run(script, timeout))

    def no_files(path: str) -> str | None:
        raise AssertionError(f"Windows must not read {path}")

    return HardwareProbe(
        ps=FakePs(sample),
        read_text=no_files,
        powershell=PerScript(run_recorded),
        system=lambda: "Windows",
        powershell_timeout=12.0,
        thermal_every=thermal_every,
        **({"clock": clock} if clock is not None else {}),
    )


def test_collect_on_windows_uses_one_powershell_call(linux: RawSample) -> None:
    calls: list[tuple[str, float]] = []
    doc = _windows_doc("windows10_pro.json")
    hardware = _windows_probe(linux, lambda s, t: doc, calls).collect()
    assert calls == [(POWERSHELL_SCRIPT, 12.0)]
    assert "ConvertTo-Json -Compress" in calls[0][0]
    assert hardware.host.os_name == "Microsoft Windows 10 Pro"
    assert (hardware.host.os_version, hardware.host.os_build) == ("10.0.19045", "19045")
    assert (hardware.host.vendor, hardware.host.serial) == ("Dell Inc.", "7XK2LM2")
    assert hardware.cpu.model == "Intel(R) Core(TM) i5-7500 CPU @ 3.40GHz"
    assert hardware.memory.total_bytes == 25276514304
    # No ThermalZone in the document (the class is absent): unavailable, never 0 °C.
    assert hardware.temperatures == ()
    assert hardware.temperature_state == "unavailable"


def test_windows_thermal_zones_in_kelvin_tenths_and_bogus_zero() -> None:
    temperatures, state, detail = parse_windows_temperatures(
        _windows_doc("windows_thermal.json"), ""
    )
    assert (state, detail) == ("ok", "")
    # 3132 tenths of kelvin = 40.0 °C; the zone reading 2732 (0 °C) is firmware filler.
    assert temperatures == (
        Temperature("acpi_thermal_zone", "ACPI\\ThermalZone\\TZ00_0", 40.0, critical_celsius=100.0),
    )


def test_windows_thermal_class_missing_is_unavailable_with_the_reason() -> None:
    doc = '{"ThermalZone":[],"ThermalZoneError":"Not supported "}'
    assert parse_windows_temperatures(doc, "") == ((), "unavailable", "Not supported")
    assert parse_windows_temperatures(None, "PowerShell exited with code 1: x") == (
        (),
        "error",
        "PowerShell exited with code 1: x",
    )


def test_windows_identity_read_once_per_boot_zones_only_while_present(linux: RawSample) -> None:
    calls: list[tuple[str, float]] = []
    with_zones = _windows_doc("windows_thermal.json")
    probe = _windows_probe(linux, lambda s, t: with_zones, calls)
    first, second = probe.collect(), probe.collect()
    assert [c[0] for c in calls] == [POWERSHELL_SCRIPT, THERMAL_SCRIPT]
    # The identity of the first call is kept for the boot; zones are read again.
    assert replace(second.host, uptime_seconds=0) == replace(first.host, uptime_seconds=0)
    assert second.host.vendor == "LENOVO"
    assert second.temperatures[0].celsius == 40.0

    calls.clear()
    without = _windows_doc("windows10_pro.json")
    probe = _windows_probe(linux, lambda s, t: without, calls)
    probe.collect()
    later = probe.collect()
    # No zone at the first reading: no PowerShell at all for the rest of the boot.
    assert [c[0] for c in calls] == [POWERSHELL_SCRIPT]
    assert later.temperature_state == "unavailable"
    assert later.host.vendor == "Dell Inc."


def test_collect_on_windows_without_os_section_keeps_platform_os(linux: RawSample) -> None:
    doc = '{"ComputerSystem":{"Manufacturer":"HP","Model":"ProDesk 400 G5"},"OperatingSystem":null}'
    host = _windows_probe(linux, lambda s, t: doc).collect().host
    assert (host.vendor, host.model) == ("HP", "ProDesk 400 G5")
    assert host.os_name.startswith("Windows ")
    assert host.os_build


def _fail(script: str, timeout: float) -> str:
    raise ProbeFailed("PowerShell did not finish within 12 s")


@pytest.mark.parametrize(
    ("run", "logged"),
    [
        (_fail, "did not finish within 12 s"),
        (lambda s, t: _windows_doc("windows_truncated.json"), "not valid JSON"),
    ],
)
def test_collect_on_windows_survives_powershell_failure(
    linux: RawSample, run: Any, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="agent.probes.hardware"):
        hardware = _windows_probe(linux, run).collect()
    assert (hardware.host.vendor, hardware.host.model, hardware.host.serial) == ("", "", "")
    assert hardware.host.os_name.startswith("Windows ")
    assert hardware.cpu.logical_cores == 2
    assert [d.mountpoint for d in hardware.disks] == ["/"]
    assert logged in caplog.text


# ---- the probe end to end ----------------------------------------------------------------


def test_collect_replays_the_recording(linux: RawSample, linux_before: dict[str, float]) -> None:
    expected = parse_hardware(copy.deepcopy(linux), None)
    hardware = _linux_probe(linux).collect()
    assert isinstance(hardware, Hardware)
    # hostname and clock are read live, everything else comes from the double.
    assert hardware.host.hostname == socket.gethostname()
    assert hardware.cpu == expected.cpu
    assert hardware.memory == expected.memory
    assert hardware.disks == expected.disks
    assert hardware.interfaces == expected.interfaces
    assert hardware.host.os_name == "Debian GNU/Linux 12 (bookworm)"


def test_probe_keeps_its_own_cpu_baseline(linux: RawSample) -> None:
    first = {"user": 100.0, "system": 50.0, "idle": 850.0}
    second = {"user": 130.0, "system": 60.0, "idle": 910.0}  # 40 busy of 100
    probe = _linux_probe(linux, FakePs(linux, cpu_times=[first, second]))
    assert probe.collect().cpu.usage_ratio == 0.0
    # Something else using psutil.cpu_percent in between must not matter.
    psutil.cpu_percent(interval=None)
    assert probe.collect().cpu.usage_ratio == pytest.approx(0.4)


def test_real_probe_on_this_machine() -> None:
    probe = HardwareProbe()
    hardware = probe.collect()
    assert hardware.cpu.logical_cores >= 1
    assert hardware.disks
    assert all(d.total_bytes > 0 for d in hardware.disks)
    assert hardware.memory.total_bytes > 0
    assert hardware.memory.available_bytes <= hardware.memory.total_bytes
    assert hardware.host.hostname
    assert hardware.host.os_name
    assert 0 < hardware.host.boot_time <= hardware.host.boot_time + hardware.host.uptime_seconds
    assert all(i.name not in ("lo",) for i in hardware.interfaces)
    assert 0.0 <= probe.collect().cpu.usage_ratio <= 1.0


# ---- run_powershell with a stand-in executable -------------------------------------------


def _fake_powershell(tmp_path: Path, body: str) -> str:
    exe = tmp_path / "powershell"
    exe.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return str(exe)


def test_run_powershell_returns_utf8_stdout_and_passes_flags(tmp_path: Path) -> None:
    exe = _fake_powershell(
        tmp_path,
        'printf "%s\\n" "$@" > "$(dirname "$0")/argv"\n'
        'printf \'\\357\\273\\277{"Caption":"M\\303\\241y"}\\n\'',
    )
    out = run_powershell("Get-Date", 10.0, executable=exe)
    assert json.loads(out) == {"Caption": "Máy"}  # byte-order mark dropped
    argv = (tmp_path / "argv").read_text(encoding="utf-8").splitlines()
    assert argv == ["-NoProfile", "-NonInteractive", "-Command", UTF8_PREFIX + "Get-Date"]


def test_run_powershell_nonzero_exit_names_code_and_stderr(tmp_path: Path) -> None:
    exe = _fake_powershell(tmp_path, "echo 'Get-CimInstance : Access denied' >&2\nexit 1")
    with pytest.raises(ProbeFailed, match=r"exited with code 1: Get-CimInstance : Access denied"):
        run_powershell("x", 10.0, executable=exe)


def test_run_powershell_timeout(tmp_path: Path) -> None:
    # exec: the shell must not leave a child holding the output pipe after the kill.
    exe = _fake_powershell(tmp_path, "exec sleep 30")
    with pytest.raises(ProbeFailed, match=r"did not finish within 0\.5 s"):
        run_powershell("x", 0.5, executable=exe)


def test_run_powershell_missing(tmp_path: Path) -> None:
    with pytest.raises(ProbeFailed, match="PowerShell not found"):
        run_powershell("x", 1.0, executable=str(tmp_path / "no-such-powershell"))


def test_windows_thermal_run_failing_keeps_the_identity_and_says_error(linux: RawSample) -> None:
    answers = [_windows_doc("windows_thermal.json")]

    def run(script: str, timeout: float) -> str:
        if answers:
            return answers.pop()
        raise ProbeFailed("PowerShell did not finish within 12 s")

    calls: list[tuple[str, float]] = []
    probe = _windows_probe(linux, run, calls)
    probe.collect()
    failed = probe.collect()
    assert failed.host.vendor == "LENOVO"  # kept from the first call of the boot
    assert (failed.temperatures, failed.temperature_state) == ((), "error")
    assert "did not finish" in failed.temperature_detail
    probe.collect()
    # Zones answered at boot: a failed read is tried again, with the thermal script only.
    assert [c[0] for c in calls] == [POWERSHELL_SCRIPT, THERMAL_SCRIPT, THERMAL_SCRIPT]


def test_windows_thermal_zones_read_at_most_every_thermal_every(linux: RawSample) -> None:
    calls: list[tuple[str, float]] = []
    clock = [1000.0]
    doc = _windows_doc("windows_thermal.json")
    probe = _windows_probe(
        linux, lambda s, t: doc, calls, thermal_every=300.0, clock=lambda: clock[0]
    )
    first = probe.collect()
    clock[0] += 15
    carried = probe.collect()
    clock[0] += 300
    fresh = probe.collect()
    assert [c[0] for c in calls] == [POWERSHELL_SCRIPT, THERMAL_SCRIPT]
    # In between, the last reading with the time it was taken, not a new one.
    assert carried.temperatures == first.temperatures
    assert carried.temperature_state == "ok"
    assert carried.temperatures_read_at == first.temperatures_read_at > 0
    assert fresh.temperatures_read_at >= first.temperatures_read_at


def test_windows_identity_failing_is_asked_again_at_the_thermal_cadence(linux: RawSample) -> None:
    # A WMI that hangs must not start PowerShell in every 15 s cycle.
    now = [0.0]
    answers = [_windows_doc("windows_thermal.json")]

    def run(script: str, timeout: float) -> str:
        if now[0] >= 300.0 and answers:
            return answers.pop()
        raise ProbeFailed("PowerShell did not finish within 12 s")

    calls: list[tuple[str, float]] = []
    probe = _windows_probe(linux, run, calls, thermal_every=300.0, clock=lambda: now[0])
    for step in range(20):  # 0 … 285 s
        now[0] = 15.0 * step
        hardware = probe.collect()
        # The reason of the last read stands in the cycles between, never "no sensor".
        assert hardware.temperature_state == "error"
        assert "did not finish" in hardware.temperature_detail
    assert [c[0] for c in calls] == [POWERSHELL_SCRIPT]
    now[0] = 300.0
    assert probe.collect().host.vendor == "LENOVO"
    assert [c[0] for c in calls] == [POWERSHELL_SCRIPT, POWERSHELL_SCRIPT]
