"""Disk health probe: SMART through `smartctl --json` (Linux), Storage cmdlets (Windows)."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from agent.errors import ProbeFailed
from agent.model import DiskHealth, DriveHealth
from agent.platform import windows
from agent.platform.command import Completed, run_command
from agent.platform.psbatch import Query
from agent.platform.psjson import as_int, as_list, as_text, load_document
from agent.probes.base import Probe, ProbeOptions
from agent.settings import Duration, option

__all__ = [
    "POWERSHELL_SCRIPT",
    "DiskHealthOptions",
    "DiskHealthProbe",
    "parse_smartctl",
    "parse_smartctl_scan",
    "parse_windows_disks",
]

# One run per collection: the physical disks and, per disk, its reliability counters (a disk
# whose counters cannot be read, e.g. behind a RAID or USB bridge, still lists its health).
POWERSHELL_SCRIPT = "; ".join(
    [
        "$ErrorActionPreference = 'Stop'",
        "$disks = @(Get-PhysicalDisk | ForEach-Object {"
        " $r = $null; try { $r = $_ | Get-StorageReliabilityCounter } catch { };"
        " [ordered]@{ DeviceId = $_.DeviceId; FriendlyName = $_.FriendlyName;"
        " SerialNumber = $_.SerialNumber; MediaType = $_.MediaType; BusType = $_.BusType;"
        " HealthStatus = $_.HealthStatus; OperationalStatus = @($_.OperationalStatus);"
        " Wear = $r.Wear; Temperature = $r.Temperature;"
        " ReadErrorsUncorrected = $r.ReadErrorsUncorrected; PowerOnHours = $r.PowerOnHours } })",
        "[ordered]@{ PhysicalDisk = $disks } | ConvertTo-Json -Compress -Depth 4",
    ]
)

# SSD attributes whose normalised value is the life left in percent (vendors differ in id).
_LIFE_LEFT_ATTRIBUTES = frozenset(
    {
        "Wear_Leveling_Count",  # Samsung
        "Media_Wearout_Indicator",  # Intel
        "SSD_Life_Left",  # SandForce, Kingston
        "Percent_Lifetime_Remain",  # Crucial/Micron
        "Remaining_Lifetime_Perc",  # Transcend, SiliconMotion
    }
)
# NVMe critical_warning bits: 2 reliability degraded, 3 read-only, 0 spare below threshold.
_NVME_FAILING_BITS = 0b1101

# MSFT_PhysicalDisk numbers, and the words Get-PhysicalDisk writes for them.
_WIN_HEALTH = {0: "Healthy", 1: "Warning", 2: "Unhealthy", 5: "Unknown"}
_WIN_MEDIA = {0: "Unspecified", 3: "HDD", 4: "SSD", 5: "SCM"}
_WIN_OPERATIONAL = {
    0: "Unknown",
    2: "OK",
    3: "Degraded",
    5: "Predictive Failure",
    13: "Lost Communication",
}
_WIN_BUS = {1: "SCSI", 3: "ATA", 7: "USB", 8: "RAID", 10: "SAS", 11: "SATA", 17: "NVMe"}


class DiskHealthOptions(ProbeOptions):
    # SMART values move over days; reading every drive each report cycle would wake them.
    interval: Duration | None = option(default=3600.0, gt=0)
    smartctl: str = "smartctl"
    timeout: Duration = option(default=30.0, gt=0)


class DiskHealthProbe(Probe[DiskHealthOptions]):
    """Health of each physical drive; smartctl needs root or CAP_SYS_RAWIO (docs/probes.md)."""

    name: ClassVar[str] = "disk_health"

    def __init__(
        self,
        options: DiskHealthOptions | None = None,
        *,
        run: Callable[[list[str], float], Completed] = run_command,
        powershell: windows.PowerShell | None = None,
        system: Callable[[], str] = platform.system,
    ) -> None:
        super().__init__(options)
        self._run = run
        self._powershell = powershell or windows.shared_batch()
        self._system = system

    def _query(self) -> Query:
        return Query(self.name, POWERSHELL_SCRIPT, self._options.timeout)

    def prepare(self) -> None:
        if self._system() == "Windows":
            self._powershell.declare(self._query())

    def collect(self) -> DiskHealth:
        timeout = self._options.timeout
        if self._system() == "Windows":
            return parse_windows_disks(self._powershell.result(self._query()))
        smartctl = self._options.smartctl
        scan = self._run([smartctl, "--scan-open", "--json"], timeout)
        devices = parse_smartctl_scan(scan.stdout)
        drives = []
        for device, kind in devices:
            try:
                done = self._run([smartctl, "--json", "--all", "--device", kind, device], timeout)
                drives.append(parse_smartctl(done.stdout, device))
            except ProbeFailed as e:  # one drive that hangs or garbles: the others still count
                drives.append(DriveHealth(device, "unknown", "smartctl", error=str(e)))
        notes = () if devices else ("smartctl --scan-open found no drive with SMART",)
        return DiskHealth(drives=tuple(drives), notes=notes)


# ---- pure parsers ---------------------------------------------------------------------


def _load(document: str, what: str) -> dict[str, Any]:
    try:
        parsed: object = json.loads(document)
    except (json.JSONDecodeError, RecursionError) as e:
        raise ProbeFailed(f"smartctl {what} output is not JSON (smartctl older than 7.0?)") from e
    if not isinstance(parsed, dict):
        raise ProbeFailed(f"smartctl {what} output is not a JSON object")
    return parsed


def parse_smartctl_scan(document: str) -> list[tuple[str, str]]:
    """(device, type) of every drive `smartctl --scan-open --json` found."""
    devices = _load(document, "--scan-open").get("devices") or []
    return [
        (str(d["name"]), str(d.get("type") or "auto"))
        for d in devices
        if isinstance(d, dict) and d.get("name")
    ]


def _messages(doc: Mapping[str, Any]) -> str:
    messages = (doc.get("smartctl") or {}).get("messages") or []
    return "; ".join(
        str(m.get("string", "")) for m in messages if isinstance(m, dict) and m.get("string")
    )


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else -1


def parse_smartctl(document: str, device: str) -> DriveHealth:
    """One drive from `smartctl --json --all`; a drive without SMART is "unknown" with why."""
    doc = _load(document, device)
    info = doc.get("device") or {}
    protocol = str(info.get("protocol") or "")
    status = doc.get("smart_status")
    if not isinstance(status, dict) or not isinstance(status.get("passed"), bool):
        return DriveHealth(
            device=device,
            health="unknown",
            source="smartctl",
            model=str(doc.get("model_name") or ""),
            protocol=protocol,
            error=_messages(doc) or "smartctl reports no SMART status",
        )
    passed: bool = status["passed"]
    attrs: dict[int, dict[str, Any]] = {
        a["id"]: a
        for a in (doc.get("ata_smart_attributes") or {}).get("table") or []
        if isinstance(a, dict) and isinstance(a.get("id"), int)
    }

    def raw(attr_id: int) -> int:
        a = attrs.get(attr_id)
        return _count((a.get("raw") or {}).get("value")) if a else -1

    nvme = doc.get("nvme_smart_health_information_log")
    nvme = nvme if isinstance(nvme, dict) else {}
    rotation = doc.get("rotation_rate")
    if protocol == "NVMe" or rotation == 0:
        media = "ssd"
    elif isinstance(rotation, int) and rotation > 0:
        media = "hdd"
    else:
        media = "unknown"
    wear = _count(nvme.get("percentage_used"))
    if wear < 0 and media == "ssd":
        for a in attrs.values():
            if a.get("name") in _LIFE_LEFT_ATTRIBUTES and isinstance(a.get("value"), int):
                wear = max(0, 100 - a["value"])
                break
    uncorrected = _count(nvme.get("media_errors")) if nvme else raw(187)
    reallocated, pending = raw(5), raw(197)
    bits = nvme.get("critical_warning")
    warning_bits = bits if isinstance(bits, int) else 0
    failed_now = any(a.get("when_failed") == "now" for a in attrs.values())
    if not passed or failed_now or warning_bits & _NVME_FAILING_BITS:
        health = "failing"
    elif warning_bits or reallocated > 0 or pending > 0 or uncorrected > 0 or wear >= 100:
        health = "warning"
    else:
        health = "ok"
    temperature = (doc.get("temperature") or {}).get("current")
    return DriveHealth(
        device=device,
        health=health,
        source="smartctl",
        model=str(doc.get("model_name") or ""),
        serial=str(doc.get("serial_number") or ""),
        media=media,
        protocol=protocol,
        raw_health="passed" if passed else "failed",
        reallocated_sectors=reallocated,
        pending_sectors=pending,
        uncorrected_errors=uncorrected,
        wear_percent=wear,
        power_on_hours=_count((doc.get("power_on_time") or {}).get("hours")),
        temperature_celsius=float(temperature) if isinstance(temperature, int | float) else None,
    )


def _values(value: object) -> list[object]:
    """A scalar-or-array property (ConvertTo-Json writes a one-element array as the element)."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _word(value: object, names: Mapping[int, str]) -> str:
    number = as_int(value)
    return names.get(number, str(number)) if number is not None else as_text(value)


def parse_windows_disks(document: str) -> DiskHealth:
    """The POWERSHELL_SCRIPT document: one drive per MSFT_PhysicalDisk."""
    doc = load_document(document, "disk health")
    drives = []
    for d in as_list(doc.get("PhysicalDisk")):
        raw_health = _word(d.get("HealthStatus"), _WIN_HEALTH)
        operational = [_word(v, _WIN_OPERATIONAL) for v in _values(d.get("OperationalStatus"))]
        wear = _count(as_int(d.get("Wear")))
        uncorrected = _count(as_int(d.get("ReadErrorsUncorrected")))
        if raw_health == "Unhealthy" or "Predictive Failure" in operational:
            health = "failing"
        elif raw_health == "Warning" or wear >= 100 or uncorrected > 0:
            health = "warning"
        elif raw_health == "Healthy":
            health = "ok"
        else:
            health = "unknown"
        media = {"HDD": "hdd", "SSD": "ssd", "SCM": "ssd"}.get(
            _word(d.get("MediaType"), _WIN_MEDIA), "unknown"
        )
        temperature = as_int(d.get("Temperature"))
        drives.append(
            DriveHealth(
                device=as_text(d.get("DeviceId")),
                health=health,
                source="storage",
                model=as_text(d.get("FriendlyName")),
                serial=as_text(d.get("SerialNumber")),
                media=media,
                protocol=_word(d.get("BusType"), _WIN_BUS),
                raw_health=", ".join([raw_health, *operational]),
                wear_percent=wear,
                uncorrected_errors=uncorrected,
                power_on_hours=_count(as_int(d.get("PowerOnHours"))),
                # 0 is what a drive without a sensor gives the counter.
                temperature_celsius=float(temperature) if temperature else None,
            )
        )
    notes = () if drives else ("Get-PhysicalDisk listed no disk",)
    return DiskHealth(drives=tuple(drives), notes=notes)
