"""Hardware probe: host identity, CPU, memory, disks, sensors and network interfaces."""

from __future__ import annotations

import ipaddress
import json
import logging
import platform
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, TypedDict

import psutil

from agent.errors import ProbeFailed
from agent.model import (
    Cpu,
    Disk,
    Hardware,
    Host,
    Memory,
    NetInterface,
    Temperature,
)
from agent.platform import windows
from agent.platform.cpu import cpu_usage_ratio
from agent.platform.linux import read_text as read_text_file
from agent.platform.psbatch import CADENCE_SLACK, Query
from agent.platform.psjson import as_int, as_list, as_text, load_document
from agent.probes.base import Probe, ProbeOptions

__all__ = [
    "CPUINFO_PATH",
    "DMI_PATHS",
    "OS_RELEASE_PATHS",
    "POWERSHELL_SCRIPT",
    "THERMAL_SCRIPT",
    "HardwareProbe",
    "OsRelease",
    "RawNicAddress",
    "RawNicCounters",
    "RawNicStats",
    "RawPartition",
    "RawSample",
    "RawTemperature",
    "RawUsage",
    "WindowsIdentity",
    "clean_identity_value",
    "is_real_partition",
    "parse_cpu",
    "parse_cpu_model",
    "parse_disks",
    "parse_hardware",
    "parse_host",
    "parse_interfaces",
    "parse_memory",
    "parse_os_release",
    "parse_temperatures",
    "parse_windows_identity",
    "parse_windows_temperatures",
    "read_sample",
]

_log = logging.getLogger(__name__)

OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")
CPUINFO_PATH = "/proc/cpuinfo"
DMI_PATHS = {
    "vendor": "/sys/class/dmi/id/sys_vendor",
    "model": "/sys/class/dmi/id/product_name",
    "serial": "/sys/class/dmi/id/product_serial",
}

# Thermal zones (root/wmi, ACPI) exist on some laptops and few desktops; a missing class must
# not fail the identity, so its error is caught and written into the document.
_THERMAL_PARTS = [
    "$tz = @(); $tzError = ''",
    "try { $tz = @(Get-CimInstance -Namespace root/wmi -ClassName MSAcpi_ThermalZoneTemperature"
    " | Select-Object -Property InstanceName, CurrentTemperature, CriticalTripPoint) }"
    " catch { $tzError = $_.Exception.Message }",
]

# The first call after boot: identity (static, cached until the next boot) and thermal zones.
# Explicit properties keep the document small and stable, `@()` makes every section an array
# whatever the instance count, Stop turns CIM errors into exit 1.
POWERSHELL_SCRIPT = "; ".join(
    [
        "$ErrorActionPreference = 'Stop'",
        "$cs = @(Get-CimInstance -ClassName Win32_ComputerSystem"
        " | Select-Object -Property Manufacturer, Model)",
        "$bios = @(Get-CimInstance -ClassName Win32_BIOS | Select-Object -Property SerialNumber)",
        "$os = @(Get-CimInstance -ClassName Win32_OperatingSystem"
        " | Select-Object -Property Caption, Version, BuildNumber)",
        "$cpu = @(Get-CimInstance -ClassName Win32_Processor | Select-Object -Property Name)",
        *_THERMAL_PARTS,
        "[ordered]@{ ComputerSystem = $cs; BIOS = $bios; OperatingSystem = $os;"
        " Processor = $cpu; ThermalZone = $tz; ThermalZoneError = $tzError }"
        " | ConvertTo-Json -Compress -Depth 3",
    ]
)

# Later cycles of a boot whose first call found thermal zones: only those. A machine without
# them starts no PowerShell for this probe until it boots again (docs/probes.md, cost).
THERMAL_SCRIPT = "; ".join(
    [
        "$ErrorActionPreference = 'Stop'",
        *_THERMAL_PARTS,
        "[ordered]@{ ThermalZone = $tz; ThermalZoneError = $tzError }"
        " | ConvertTo-Json -Compress -Depth 3",
    ]
)

# Firmware fills unset identity fields with these; reporting them would make every
# unbranded PC look like the same machine.
_PLACEHOLDERS = frozenset(
    {
        "",
        "0",
        "00000000",
        "123456789",
        "chassis serial number",
        "default string",
        "n/a",
        "na",
        "none",
        "not applicable",
        "not available",
        "not specified",
        "o.e.m.",
        "oem",
        "system manufacturer",
        "system product name",
        "system serial number",
        "system version",
        "to be filled by o.e.m.",
        "unknown",
    }
)

# Read-only images (snaps) are mounted like disks but are never full and never grow.
_PSEUDO_FSTYPES = frozenset({"squashfs", "overlay", "tmpfs", "devtmpfs", "autofs"})

_DUPLEX = {2: "full", 1: "half"}  # psutil.NIC_DUPLEX_FULL / NIC_DUPLEX_HALF


class RawPartition(TypedDict):
    device: str
    mountpoint: str
    fstype: str
    opts: str


class RawUsage(TypedDict):
    total: int
    used: int
    free: int


class RawTemperature(TypedDict):
    label: str
    current: float
    high: float | None
    critical: float | None


class RawNicStats(TypedDict):
    isup: bool
    duplex: int
    speed: int
    mtu: int
    flags: str


class RawNicAddress(TypedDict):
    family: str  # "inet", "inet6", "link", or the raw number as text
    address: str


class RawNicCounters(TypedDict):
    bytes_sent: int
    bytes_recv: int
    errin: int
    errout: int
    dropin: int
    dropout: int


class RawSample(TypedDict):
    """Everything one collect reads from the OS, as plain JSON-able data.

    This is also the format of the recorded fixtures, so a parser test replays a real read.
    """

    system: str  # platform.system()
    hostname: str
    release: str  # platform.release(): kernel release on Linux, "10"/"11" on Windows
    version: str  # platform.version()
    machine: str
    processor: str
    time: float
    files: dict[str, str | None]  # path -> text, None when absent or unreadable
    powershell: str | None  # the Windows document, None when not run or failed
    powershell_error: str
    cpu_count_logical: int | None
    cpu_count_physical: int | None
    cpu_times: dict[str, float]
    loadavg: list[float]
    cpu_freq_mhz: float
    virtual_memory: dict[str, int]
    swap_memory: dict[str, int]
    boot_time: float
    partitions: list[RawPartition]
    disk_usage: dict[str, RawUsage | None]  # mountpoint -> usage, None when unreadable
    temperatures: dict[str, list[RawTemperature]]
    nic_stats: dict[str, RawNicStats]
    nic_addresses: dict[str, list[RawNicAddress]]
    nic_counters: dict[str, RawNicCounters]


@dataclass(frozen=True)
class OsRelease:
    pretty_name: str
    version_id: str


@dataclass(frozen=True)
class WindowsIdentity:
    manufacturer: str
    model: str
    serial: str
    os_caption: str
    os_version: str
    os_build: str
    cpu_model: str


class HardwareProbe(Probe[ProbeOptions]):
    """Reports the machine's identity and resources; see `read_sample` for what it reads."""

    name: ClassVar[str] = "hardware"
    needs_baseline: ClassVar[bool] = True

    def __init__(
        self,
        options: ProbeOptions | None = None,
        *,
        # Any: psutil's overloaded stubs make a Protocol for a test double brittle;
        # read_sample converts every value to typed data straight away.
        ps: Any = psutil,
        read_text: Callable[[str], str | None] = read_text_file,
        powershell: windows.PowerShell | None = None,
        system: Callable[[], str] = platform.system,
        powershell_timeout: float = 30.0,
        thermal_every: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(options)
        self._ps = ps
        self._read_text = read_text
        self._powershell = powershell or windows.shared_batch()
        self._system = system
        self._powershell_timeout = powershell_timeout
        # Own CPU-time baseline: psutil.cpu_percent keeps a module-wide one that any other
        # caller would reset, skewing this probe's "since the previous cycle" ratio.
        self._cpu_times: dict[str, float] | None = None
        # Windows, per boot: the identity once read, and whether thermal zones answered.
        self._boot: float | None = None
        self._identity: WindowsIdentity | None = None
        self._thermal_zones = True
        # A thermal-zone read is a PowerShell start (≈ 0.3-1 s of CPU): at most one per
        # `thermal_every`, the last reading carried in between with the time it was taken.
        self._thermal_every = thermal_every
        self._clock = clock
        self._thermal: tuple[float, Hardware] | None = None  # (clock, hardware of the read)
        self._planned: tuple[str | None] | None = None  # the script `prepare` declared
        # (clock, reason) of the last identity read that failed: asked again at the thermal
        # cadence, not every 15 s cycle (a WMI that hangs would start PowerShell 240 times an hour).
        self._identity_failed: tuple[float, str] | None = None

    def _run_powershell(self, script: str, timeout: float) -> str:
        return self._powershell.result(Query(self.name, script, timeout))

    def _choose_script(self) -> str | None:
        """This cycle's Windows script: the identity once per boot (keyed on the boot time),
        then thermal zones at most every `thermal_every` and only where the first read found
        one; None: no PowerShell for this probe this cycle."""
        boot = float(self._ps.boot_time())
        if boot != self._boot:
            self._boot, self._identity, self._thermal_zones = boot, None, True
            self._thermal, self._identity_failed = None, None
        carried = self._thermal if self._thermal_zones else None
        failed = self._identity_failed
        if self._identity is None:
            recent = (
                failed is not None
                and self._clock() - failed[0] < self._thermal_every - CADENCE_SLACK
            )
            return None if recent else POWERSHELL_SCRIPT
        if carried is not None and self._clock() - carried[0] < self._thermal_every - CADENCE_SLACK:
            return None
        return THERMAL_SCRIPT if self._thermal_zones else None

    def prepare(self) -> None:
        if self._system() == "Windows":
            script = self._choose_script()
            self._planned = (script,)
            if script is not None:
                self._powershell.declare(Query(self.name, script, self._powershell_timeout))

    def collect(self) -> Hardware:
        planned, self._planned = self._planned, None
        script = planned[0] if planned is not None else self._choose_script()
        now = self._clock()
        carried = self._thermal if self._thermal_zones else None
        sample = read_sample(
            self._ps,
            self._read_text,
            self._run_powershell,
            self._system(),
            self._powershell_timeout,
            script=script,
        )
        identity = self._identity
        failure = sample["powershell_error"]
        if identity is None and sample["powershell"] is not None:
            try:
                identity = parse_windows_identity(sample["powershell"])
            except ProbeFailed as e:  # parse_hardware logs why
                failure = str(e)
        if sample["system"] == "Windows" and identity is None:
            if script == POWERSHELL_SCRIPT:
                self._identity_failed = (now, failure)
            elif self._identity_failed is not None and script is None:
                # Not asked this cycle: the reason of the last read stands, never "no sensor".
                sample = {**sample, "powershell_error": self._identity_failed[1]}
        hardware = parse_hardware(sample, self._cpu_times, identity)
        self._cpu_times = sample["cpu_times"]
        if script is not None and sample["powershell"] is not None:
            self._identity = identity
            self._thermal_zones = hardware.temperature_state == "ok"
            self._thermal = (now, hardware) if self._thermal_zones else None
        elif script is None and carried is not None:
            last = carried[1]
            hardware = replace(
                hardware,
                temperatures=last.temperatures,
                temperature_state=last.temperature_state,
                temperature_detail=last.temperature_detail,
                temperatures_read_at=last.temperatures_read_at,
            )
        return hardware


# ---- pure parsers ---------------------------------------------------------------------


def parse_hardware(
    sample: RawSample,
    cpu_times_before: Mapping[str, float] | None,
    identity: WindowsIdentity | None = None,
) -> Hardware:
    """Build the report section from one read; `cpu_times_before` is the previous read's,
    `identity` the Windows identity read earlier in this boot (None: read it from `sample`)."""
    document = sample["powershell"]
    if identity is None and document is not None:
        try:
            identity = parse_windows_identity(document)
        except ProbeFailed as e:
            _log.warning("hardware: Windows identity unavailable: %s", e)
    elif identity is None and sample["powershell_error"]:
        _log.warning("hardware: Windows identity unavailable: %s", sample["powershell_error"])
    if sample["system"] == "Windows":
        temperatures, state, detail = parse_windows_temperatures(
            document, sample["powershell_error"]
        )
    else:
        temperatures = parse_temperatures(sample["temperatures"])
        state, detail = (
            ("ok", "") if temperatures else ("unavailable", "no hwmon or thermal sensor")
        )
    files = sample["files"]
    cpu_model = (
        identity.cpu_model
        if identity and identity.cpu_model
        else parse_cpu_model(files.get(CPUINFO_PATH), sample["processor"])
    )
    return Hardware(
        host=parse_host(sample, identity),
        cpu=parse_cpu(sample, cpu_model, cpu_times_before),
        memory=parse_memory(sample["virtual_memory"], sample["swap_memory"]),
        disks=parse_disks(sample["partitions"], sample["disk_usage"]),
        temperatures=temperatures,
        interfaces=parse_interfaces(
            sample["nic_stats"], sample["nic_addresses"], sample["nic_counters"]
        ),
        temperature_state=state,
        temperature_detail=detail,
        temperatures_read_at=sample["time"] if temperatures else 0.0,
    )


def parse_host(sample: RawSample, identity: WindowsIdentity | None) -> Host:
    """Host identity: Windows from the PowerShell document, Linux from os-release and DMI."""
    files = sample["files"]
    os_name, os_version, os_build = _platform_os(sample)
    if identity is not None:
        # OS values missing from the document fall back to platform's, never to "".
        os_name = identity.os_caption or os_name
        os_version = identity.os_version or os_version
        os_build = identity.os_build or os_build
        vendor, model, serial = identity.manufacturer, identity.model, identity.serial
    else:
        release = next(
            (text for path in OS_RELEASE_PATHS if (text := files.get(path)) is not None), None
        )
        if release is not None:
            parsed = parse_os_release(release)
            os_name = parsed.pretty_name or os_name
            os_version = parsed.version_id or os_version
        vendor = clean_identity_value(files.get(DMI_PATHS["vendor"]))
        model = clean_identity_value(files.get(DMI_PATHS["model"]))
        serial = clean_identity_value(files.get(DMI_PATHS["serial"]))
    boot_time = sample["boot_time"]
    return Host(
        hostname=sample["hostname"],
        os_name=os_name,
        os_version=os_version,
        os_build=os_build,
        arch=sample["machine"],
        vendor=vendor,
        model=model,
        serial=serial,
        boot_time=boot_time,
        uptime_seconds=max(0.0, sample["time"] - boot_time),
    )


def _platform_os(sample: RawSample) -> tuple[str, str, str]:
    system, release, version = sample["system"], sample["release"], sample["version"]
    if system == "Windows":
        # platform says "10" for Windows 11 too; it is only the fallback.
        return f"Windows {release}".strip(), version, version.rsplit(".", 1)[-1]
    if system == "Linux":
        return "Linux", "", release
    return system, release, version


def parse_os_release(text: str) -> OsRelease:
    """PRETTY_NAME and VERSION_ID from os-release(5) text (shell-style assignments)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or key.startswith("#"):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            quote, value = value[0], value[1:-1]
            if quote == '"':
                for escaped in ("\\\\", '\\"', "\\$", "\\`"):
                    value = value.replace(escaped, escaped[1])
        values[key.strip()] = value
    return OsRelease(
        pretty_name=values.get("PRETTY_NAME", values.get("NAME", "")).strip(),
        version_id=values.get("VERSION_ID", "").strip(),
    )


def parse_cpu_model(cpuinfo: str | None, fallback: str = "") -> str:
    """The CPU's marketing name from /proc/cpuinfo; `fallback` when the kernel gives none."""
    # x86 says "model name"; older ARM kernels say "Processor"; MIPS says "cpu model".
    wanted = ("model name", "processor", "cpu model")
    found: dict[str, str] = {}
    for line in (cpuinfo or "").splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        value = " ".join(value.split())
        # On x86 "processor" is the CPU index (a number), not a name.
        if sep and key in wanted and key not in found and value and not value.isdigit():
            found[key] = value
    for key in wanted:
        if key in found:
            return found[key]
    return " ".join(fallback.split())


def clean_identity_value(value: str | None) -> str:
    """Trimmed vendor/model/serial text, or "" for unreadable or firmware placeholder values."""
    if value is None:
        return ""
    text = " ".join(value.split())
    return "" if text.lower() in _PLACEHOLDERS else text


def parse_windows_identity(document: str) -> WindowsIdentity:
    """Parse the POWERSHELL_SCRIPT document; raises ProbeFailed saying what is wrong with it."""
    # A byte-order mark survives when the text was decoded without utf-8-sig.
    document = document.lstrip("\ufeff")
    if not document.strip():
        raise ProbeFailed("PowerShell hardware document is empty")
    try:
        parsed: object = json.loads(document)
    except json.JSONDecodeError as e:
        raise ProbeFailed(
            f"PowerShell hardware document is not valid JSON: {e.msg} at character {e.pos}"
        ) from e
    if not isinstance(parsed, dict):
        raise ProbeFailed(
            f"PowerShell hardware document is a JSON {type(parsed).__name__}, not an object"
        )
    sections = ("ComputerSystem", "BIOS", "OperatingSystem", "Processor")
    if not any(name in parsed for name in sections):
        raise ProbeFailed("PowerShell hardware document has none of " + ", ".join(sections))
    cs = _first_instance(parsed.get("ComputerSystem"))
    bios = _first_instance(parsed.get("BIOS"))
    os = _first_instance(parsed.get("OperatingSystem"))
    cpu = _first_instance(parsed.get("Processor"))
    return WindowsIdentity(
        manufacturer=clean_identity_value(_text(cs.get("Manufacturer"))),
        model=clean_identity_value(_text(cs.get("Model"))),
        serial=clean_identity_value(_text(bios.get("SerialNumber"))),
        # Caption is localized and some releases end it with a space; keep the words as is.
        os_caption=_text(os.get("Caption")),
        os_version=_text(os.get("Version")),
        os_build=_text(os.get("BuildNumber")),
        cpu_model=_text(cpu.get("Name")),
    )


def _first_instance(section: object) -> Mapping[str, object]:
    # ConvertTo-Json writes one instance as an object and several as an array; older
    # scripts or a missing class give null.
    if isinstance(section, dict):
        return section
    if isinstance(section, list):
        for item in section:
            if isinstance(item, dict):
                return item
    return {}


def _text(value: object) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    return " ".join(str(value).split())


def parse_cpu(sample: RawSample, model: str, cpu_times_before: Mapping[str, float] | None) -> Cpu:
    logical = sample["cpu_count_logical"] or 0
    load = [*sample["loadavg"], 0.0, 0.0, 0.0][:3]
    return Cpu(
        model=model,
        # psutil gives None when it cannot tell; 0 means unknown on the wire.
        physical_cores=sample["cpu_count_physical"] or 0,
        logical_cores=logical,
        usage_ratio=cpu_usage_ratio(cpu_times_before, sample["cpu_times"]),
        load1=load[0],
        load5=load[1],
        load15=load[2],
        frequency_mhz=sample["cpu_freq_mhz"],
    )


def parse_memory(virtual: Mapping[str, int], swap: Mapping[str, int]) -> Memory:
    return Memory(
        total_bytes=virtual.get("total", 0),
        available_bytes=virtual.get("available", 0),
        used_bytes=virtual.get("used", 0),
        swap_total_bytes=swap.get("total", 0),
        swap_used_bytes=swap.get("used", 0),
    )


def is_real_partition(partition: RawPartition) -> bool:
    """Whether a mount holds data worth watching (and is safe to ask for its usage)."""
    fstype = partition["fstype"].lower()
    if fstype in _PSEUDO_FSTYPES:
        return False
    if partition["device"].startswith("/dev/loop") and partition["mountpoint"].startswith(
        ("/snap/", "/var/lib/snapd/")
    ):
        return False
    # An empty CD/DVD drive: asking its usage fails or, on some drivers, stalls.
    opts = partition["opts"].lower().split(",")
    return not ("cdrom" in opts and not fstype)


def parse_disks(
    partitions: Sequence[RawPartition],
    usage: Mapping[str, RawUsage | None],
) -> tuple[Disk, ...]:
    """Every real mount whose usage could be read, in psutil's order, once per mountpoint."""
    disks: list[Disk] = []
    seen: set[str] = set()
    for part in partitions:
        mount = part["mountpoint"]
        got = usage.get(mount)
        if got is None or mount in seen or not is_real_partition(part):
            continue
        seen.add(mount)
        disks.append(
            Disk(
                mountpoint=mount,
                device=part["device"],
                fstype=part["fstype"],
                total_bytes=got["total"],
                used_bytes=got["used"],
                free_bytes=got["free"],
            )
        )
    return tuple(disks)


def parse_temperatures(
    sensors: Mapping[str, Sequence[RawTemperature]],
) -> tuple[Temperature, ...]:
    return tuple(
        Temperature(
            sensor=sensor,
            label=reading["label"],
            celsius=reading["current"],
            high_celsius=reading["high"] or 0.0,
            critical_celsius=reading["critical"] or 0.0,
        )
        for sensor, readings in sensors.items()
        for reading in readings
    )


def parse_windows_temperatures(
    document: str | None, error: str
) -> tuple[tuple[Temperature, ...], str, str]:
    """MSAcpi_ThermalZoneTemperature readings (tenths of kelvin) of the document, with the
    state: "ok", "unavailable" (no zone: never reported as 0 °C) or "error"."""
    if document is None and error:
        return (), "error", error
    if document is None:  # not asked: the first reading of this boot found no zone
        return (), "unavailable", "MSAcpi_ThermalZoneTemperature: no reading at boot"
    try:
        parsed = load_document(document, "hardware")
    except ProbeFailed as e:
        return (), "error", str(e)
    readings = []
    for zone in as_list(parsed.get("ThermalZone")):
        current = as_int(zone.get("CurrentTemperature"))
        if current is None:
            continue
        celsius = (current - 2732) / 10.0
        # Firmware that fills the class without a sensor gives 0 K or 0 °C; neither is a reading.
        if not 0.0 < celsius < 150.0:
            continue
        critical = as_int(zone.get("CriticalTripPoint"))
        readings.append(
            Temperature(
                sensor="acpi_thermal_zone",
                label=as_text(zone.get("InstanceName")),
                celsius=celsius,
                critical_celsius=(critical - 2732) / 10.0 if critical and critical > 2732 else 0.0,
            )
        )
    if readings:
        return tuple(readings), "ok", ""
    reason = as_text(parsed.get("ThermalZoneError"))
    return (), "unavailable", reason or "MSAcpi_ThermalZoneTemperature has no reading"


def parse_interfaces(
    stats: Mapping[str, RawNicStats],
    addresses: Mapping[str, Sequence[RawNicAddress]],
    counters: Mapping[str, RawNicCounters],
) -> tuple[NetInterface, ...]:
    """Non-loopback interfaces known to net_if_stats, sorted by name."""
    interfaces: list[NetInterface] = []
    for name in sorted(stats):
        stat = stats[name]
        addrs = addresses.get(name, ())
        ips = [_strip_zone(a["address"]) for a in addrs if a["family"] in ("inet", "inet6")]
        if _is_loopback(name, stat, ips):
            continue
        macs = [_normalise_mac(a["address"]) for a in addrs if a["family"] == "link"]
        io = counters.get(name)
        interfaces.append(
            NetInterface(
                name=name,
                up=stat["isup"],
                speed_mbps=max(0, stat["speed"]),
                duplex=_DUPLEX.get(stat["duplex"], "unknown"),
                mtu=max(0, stat["mtu"]),
                mac=next((m for m in macs if m), ""),
                addresses=tuple(ips),
                bytes_sent=io["bytes_sent"] if io else 0,
                bytes_recv=io["bytes_recv"] if io else 0,
                errors_in=io["errin"] if io else 0,
                errors_out=io["errout"] if io else 0,
                drops_in=io["dropin"] if io else 0,
                drops_out=io["dropout"] if io else 0,
            )
        )
    return tuple(interfaces)


def _strip_zone(address: str) -> str:
    # A link-local IPv6 address carries its interface as "%eth0", which is noise here.
    return address.split("%", 1)[0]


def _is_loopback(name: str, stat: RawNicStats, ips: Sequence[str]) -> bool:
    if name == "lo" or "loopback" in stat["flags"].split(","):
        return True
    # Windows has no flags; its "Loopback Pseudo-Interface 1" only has loopback addresses.
    try:
        return bool(ips) and all(ipaddress.ip_address(ip).is_loopback for ip in ips)
    except ValueError:
        return False


def _normalise_mac(address: str) -> str:
    # Windows writes AA-BB-CC-..., Linux aa:bb:cc:...; the all-zero address means none.
    mac = address.replace("-", ":").lower()
    return "" if not mac.replace(":", "").strip("0") else mac


# ---- OS boundary ----------------------------------------------------------------------


def read_sample(
    ps: Any,
    read_text: Callable[[str], str | None],
    run_powershell: Callable[[str, float], str],
    system: str,
    powershell_timeout: float = 30.0,
    *,
    script: str | None = POWERSHELL_SCRIPT,
) -> RawSample:
    """Read everything the parsers need. `ps` is psutil or a test double with its functions.

    Only failures that leave nothing to report propagate; optional sources (identity,
    sensors, frequency, one unreadable disk) degrade to empty values.
    """
    files: dict[str, str | None] = {}
    powershell: str | None = None
    powershell_error = ""
    if system == "Windows" and script is not None:
        try:
            powershell = run_powershell(script, powershell_timeout)
        except ProbeFailed as e:
            powershell_error = str(e)
    elif system == "Linux":
        for path in (*OS_RELEASE_PATHS, CPUINFO_PATH, *DMI_PATHS.values()):
            files[path] = read_text(path)
    partitions = _read_partitions(ps)
    return RawSample(
        system=system,
        hostname=socket.gethostname(),
        release=platform.release(),
        version=platform.version(),
        machine=platform.machine(),
        processor=platform.processor(),
        time=time.time(),
        files=files,
        powershell=powershell,
        powershell_error=powershell_error,
        cpu_count_logical=_opt_int(ps.cpu_count(logical=True)),
        cpu_count_physical=_opt_int(ps.cpu_count(logical=False)),
        cpu_times=_float_fields(ps.cpu_times()),
        loadavg=[float(x) for x in ps.getloadavg()],
        cpu_freq_mhz=_read_cpu_freq(ps),
        virtual_memory=_int_fields(ps.virtual_memory()),
        swap_memory=_int_fields(ps.swap_memory()),
        boot_time=float(ps.boot_time()),
        partitions=partitions,
        disk_usage={
            p["mountpoint"]: _read_usage(ps, p["mountpoint"])
            for p in partitions
            if is_real_partition(p)
        },
        temperatures=_read_temperatures(ps),
        nic_stats={
            name: RawNicStats(
                isup=bool(s.isup),
                duplex=int(s.duplex),
                speed=int(s.speed),
                mtu=int(s.mtu),
                flags=str(getattr(s, "flags", "")),
            )
            for name, s in ps.net_if_stats().items()
        },
        nic_addresses={
            name: [
                RawNicAddress(family=_family(a.family, ps), address=str(a.address)) for a in addrs
            ]
            for name, addrs in ps.net_if_addrs().items()
        },
        nic_counters={
            name: RawNicCounters(
                bytes_sent=int(c.bytes_sent),
                bytes_recv=int(c.bytes_recv),
                errin=int(c.errin),
                errout=int(c.errout),
                dropin=int(c.dropin),
                dropout=int(c.dropout),
            )
            for name, c in ps.net_io_counters(pernic=True).items()
        },
    )


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float_fields(record: Any) -> dict[str, float]:
    return {k: float(v) for k, v in record._asdict().items()}


def _int_fields(record: Any) -> dict[str, int]:
    # Percent fields are floats and not part of the report; keep the byte counts.
    return {k: int(v) for k, v in record._asdict().items() if isinstance(v, int)}


def _read_partitions(ps: Any) -> list[RawPartition]:
    return [
        RawPartition(
            device=str(p.device),
            mountpoint=str(p.mountpoint),
            fstype=str(p.fstype),
            opts=str(p.opts),
        )
        for p in ps.disk_partitions(all=False)
    ]


def _read_usage(ps: Any, mountpoint: str) -> RawUsage | None:
    try:
        u = ps.disk_usage(mountpoint)
    except OSError:  # PermissionError included: a mount we may not stat is skipped
        return None
    return RawUsage(total=int(u.total), used=int(u.used), free=int(u.free))


def _read_cpu_freq(ps: Any) -> float:
    try:
        freq = ps.cpu_freq()
    except (OSError, NotImplementedError, AttributeError):
        return 0.0
    return float(freq.current) if freq is not None else 0.0


def _read_temperatures(ps: Any) -> dict[str, list[RawTemperature]]:
    # Only Linux and FreeBSD psutil have this function.
    reader = getattr(ps, "sensors_temperatures", None)
    if reader is None:
        return {}
    try:
        sensors = reader()
    except OSError:
        return {}
    return {
        str(sensor): [
            RawTemperature(
                label=str(t.label),
                current=float(t.current),
                high=None if t.high is None else float(t.high),
                critical=None if t.critical is None else float(t.critical),
            )
            for t in readings
        ]
        for sensor, readings in sensors.items()
    }


def _family(family: object, ps: Any) -> str:
    if family == socket.AF_INET:
        return "inet"
    if family == socket.AF_INET6:
        return "inet6"
    if family == ps.AF_LINK:
        return "link"
    return str(family)
