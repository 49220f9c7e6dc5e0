"""Power probe: the machine's battery (psutil) and the UPSes it hangs on, through NUT's `upsc`."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypedDict

import psutil

from agent.errors import ProbeFailed
from agent.model import Battery, Power, Ups
from agent.platform.command import Completed, run_command
from agent.probes.base import Probe, ProbeOptions
from agent.settings import Duration, option

__all__ = [
    "PowerOptions",
    "PowerProbe",
    "RawBattery",
    "parse_battery",
    "parse_power",
    "parse_upsc",
    "ups_status",
]

# NUT names a UPS "upsname[@hostname[:port]]" (upsc(8)).
_UPS_NAME = r"^[A-Za-z0-9_.-]+(@[A-Za-z0-9_.:\[\]-]+)?$"


class RawBattery(TypedDict):
    percent: float
    secsleft: int
    power_plugged: bool | None


def _ups_names(names: Sequence[str]) -> Sequence[str]:
    bad = [n for n in names if not re.match(_UPS_NAME, n)]
    if bad:
        raise ValueError(f"not a NUT UPS name (upsname[@host[:port]]): {', '.join(bad)}")
    return names


class PowerOptions(ProbeOptions):
    # NUT UPS names to read, e.g. ["ups@localhost"]; empty: no UPS is configured.
    ups: list[str] = option(default_factory=list, check=_ups_names)
    upsc: str = "upsc"
    timeout: Duration = option(default=10.0, gt=0)


class PowerProbe(Probe[PowerOptions]):
    """Mains or battery: the machine's own battery and each configured UPS."""

    name: ClassVar[str] = "power"

    def __init__(
        self,
        options: PowerOptions | None = None,
        *,
        ps: Any = psutil,
        run: Callable[[list[str], float], Completed] = run_command,
    ) -> None:
        super().__init__(options)
        self._ps = ps
        self._run = run

    def collect(self) -> Power:
        readings: dict[str, Completed | str] = {}
        for name in self._options.ups:
            try:
                readings[name] = self._run([self._options.upsc, name], self._options.timeout)
            except ProbeFailed as e:  # upsc missing or hung: this UPS is unreachable, not "ok"
                readings[name] = str(e)
        return parse_power(_read_battery(self._ps), readings)


# ---- pure parsers ---------------------------------------------------------------------


def parse_battery(battery: RawBattery | None) -> Battery | None:
    if battery is None:
        return None
    # psutil uses -2 for "unlimited" (on mains) and -1 for unknown; the wire has only -1.
    seconds_left = battery["secsleft"] if battery["secsleft"] >= 0 else -1
    return Battery(
        percent=battery["percent"],
        power_plugged=bool(battery["power_plugged"]),
        seconds_left=seconds_left,
    )


def parse_upsc(text: str) -> dict[str, str]:
    """`upsc UPS` output: one "variable: value" per line."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key and " " not in key:
            values[key] = value.strip()
    return values


def ups_status(raw: str) -> str:
    """The status word of NUT's ups.status flags ("OL", "OB DISCHRG", "OB LB", "FSD OB LB")."""
    flags = set(raw.split())
    if "OB" in flags and ("LB" in flags or "FSD" in flags):
        return "low_battery"
    if "OB" in flags:
        return "on_battery"
    if "OL" in flags:
        return "online"
    return "unknown"


def _number(values: Mapping[str, str], key: str) -> float:
    try:
        return float(values[key])
    except (KeyError, ValueError):
        return -1.0


def _ups(name: str, reading: Completed | str) -> Ups:
    if isinstance(reading, str):
        return Ups(name=name, status="unreachable", error=reading)
    values = parse_upsc(reading.stdout)
    if reading.returncode != 0 or "ups.status" not in values:
        # "Error: Connection failure: Connection refused", "Error: Driver not connected",
        # "Error: Data stale": no current reading, so no status is claimed.
        lines = [" ".join(line.split()) for line in reading.stderr.splitlines()]
        # upsc also writes "Init SSL without certificate database" there, error or not.
        reason = next((line for line in lines if line.startswith("Error")), "; ".join(lines))
        return Ups(name=name, status="unreachable", error=(reason or "no ups.status")[:300])
    raw = values["ups.status"]
    runtime = _number(values, "battery.runtime")
    return Ups(
        name=name,
        status=ups_status(raw),
        raw_status=raw,
        charge_percent=_number(values, "battery.charge"),
        runtime_seconds=int(runtime) if runtime >= 0 else -1,
        load_percent=_number(values, "ups.load"),
    )


def parse_power(battery: RawBattery | None, readings: Mapping[str, Completed | str]) -> Power:
    """The section from the battery reading and each UPS's upsc run (or why it failed)."""
    ups = tuple(_ups(name, reading) for name, reading in readings.items())
    own = parse_battery(battery)
    statuses = {u.status for u in ups}
    if statuses & {"on_battery", "low_battery"} or (
        own is not None and battery is not None and battery["power_plugged"] is False
    ):
        supply = "battery"
    elif "online" in statuses or (own is not None and own.power_plugged):
        supply = "mains"
    else:
        supply = "unknown"
    notes = () if ups or own else ("no battery and no UPS configured (probes.power.ups)",)
    return Power(supply=supply, battery=own, ups=ups, notes=notes)


# ---- OS boundary ----------------------------------------------------------------------


def _read_battery(ps: Any) -> RawBattery | None:
    # Linux: /sys/class/power_supply; Windows: GetSystemPowerStatus (the ACPI battery that
    # Win32_Battery also reads), in process, so a 15 s cycle starts no PowerShell for it.
    reader = getattr(ps, "sensors_battery", None)
    if reader is None:
        return None
    try:
        battery = reader()
    except OSError:
        return None
    if battery is None:
        return None
    plugged = battery.power_plugged
    return RawBattery(
        percent=float(battery.percent),
        secsleft=int(battery.secsleft),
        power_plugged=None if plugged is None else bool(plugged),
    )
