"""Power parsers on upsc output recorded from a real upsd with the dummy-ups driver, and the
battery as psutil gives it."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.model import Battery, Power, Ups
from agent.platform.command import Completed
from agent.probes.power import (
    PowerOptions,
    PowerProbe,
    RawBattery,
    parse_battery,
    parse_power,
    parse_upsc,
    ups_status,
)
from agent.settings import parse_section

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "power"


def _done(stdout: str = "", stderr: str = "", code: int = 0) -> Completed:
    return Completed(code, stdout, stderr)


def _fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def test_upsc_on_battery() -> None:
    values = parse_upsc(_fixture("upsc_on_battery.txt"))
    assert values["ups.status"] == "OB DISCHRG"
    power = parse_power(None, {"ups@localhost": _done(_fixture("upsc_on_battery.txt"))})
    assert power == Power(
        supply="battery",
        ups=(
            Ups(
                name="ups@localhost",
                status="on_battery",
                raw_status="OB DISCHRG",
                charge_percent=64.0,
                runtime_seconds=1380,
                load_percent=21.0,
            ),
        ),
    )


def test_upsc_low_battery() -> None:
    power = parse_power(None, {"ups": _done(_fixture("upsc_low_battery.txt"))})
    assert (power.supply, power.ups[0].status, power.ups[0].charge_percent) == (
        "battery",
        "low_battery",
        9.0,
    )


def test_upsc_errors_are_unreachable_with_the_reason() -> None:
    refused = _done(stderr=_fixture("upsc_connection_refused.stderr"), code=1)
    unknown = _done(stderr=_fixture("upsc_unknown_ups.stderr"), code=1)
    power = parse_power(None, {"a": refused, "b": unknown, "c": "upsc not found: x"})
    assert [(u.status, u.error) for u in power.ups] == [
        ("unreachable", "Error: Connection failure: Connection refused"),
        ("unreachable", "Error: Unknown UPS"),
        ("unreachable", "upsc not found: x"),
    ]
    # Nothing says the machine is on battery, nor that it is on mains.
    assert power.supply == "unknown"


def test_status_flags() -> None:
    assert ups_status("OL") == "online"
    assert ups_status("OL CHRG") == "online"
    assert ups_status("OB DISCHRG") == "on_battery"
    assert ups_status("FSD OB LB") == "low_battery"
    assert ups_status("") == "unknown"


def test_own_battery() -> None:
    assert parse_battery(None) is None
    on_mains = parse_battery({"percent": 100.0, "secsleft": -2, "power_plugged": True})
    assert on_mains == Battery(percent=100.0, power_plugged=True, seconds_left=-1)
    laptop = RawBattery(percent=40.0, secsleft=3600, power_plugged=False)
    assert parse_power(laptop, {}).supply == "battery"
    unknown_plug = RawBattery(percent=40.0, secsleft=3600, power_plugged=None)
    assert parse_power(unknown_plug, {}).supply == "unknown"
    assert parse_power(None, {}).notes == ("no battery and no UPS configured (probes.power.ups)",)


class _Ps:
    """psutil's sensors_battery as a laptop unplugged gives it (synthetic)."""

    def sensors_battery(self) -> object:
        from types import SimpleNamespace  # noqa: PLC0415

        return SimpleNamespace(percent=18.0, secsleft=1500, power_plugged=False)


def test_probe_runs_upsc_once_per_configured_ups() -> None:
    calls: list[list[str]] = []

    def run(argv: list[str], timeout: float) -> Completed:
        calls.append(argv)
        return _done(_fixture("upsc_low_battery.txt"))

    options = PowerOptions(ups=["ups@localhost", "rack@10.0.0.5:3493"], upsc="/usr/bin/upsc")
    power = PowerProbe(options, ps=_Ps(), run=run).collect()
    assert calls == [["/usr/bin/upsc", "ups@localhost"], ["/usr/bin/upsc", "rack@10.0.0.5:3493"]]
    assert power.battery == Battery(percent=18.0, power_plugged=False, seconds_left=1500)
    assert [u.status for u in power.ups] == ["low_battery", "low_battery"]


def test_a_bad_ups_name_is_a_config_error_naming_the_file_and_key() -> None:
    with pytest.raises(ConfigError, match=r"agent\.yaml: .*ups.*not a NUT UPS name"):
        parse_section(PowerOptions, {"ups": ["ups; rm -rf /"]}, "agent.yaml")
