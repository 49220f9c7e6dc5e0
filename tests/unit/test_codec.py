"""Agent record -> wire bytes -> collector record: nothing lost or changed, bad input refused."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from typing import Any

import pytest
from google.protobuf import json_format

from agent.model import (
    Battery,
    Cpu,
    Disk,
    Hardware,
    Host,
    Memory,
    NetInterface,
    ProbeError,
    Report,
    SpoolStats,
    Temperature,
)
from agent.probes.hardware import HardwareProbe
from agent.transport.encode import encode_report, plain, to_pb
from canhgac_proto.v1 import collector_pb2 as pb
from collector.decode import InvalidReport, decode_report

NOW = 1_764_000_000.0  # a fixed "now" for the collector's plausibility check
TIB = 2**40


def _hardware(battery: Battery | None) -> Hardware:
    return Hardware(
        host=Host(
            hostname="MÁY-TÍNH-XÃ-VINH-QUÝ",
            os_name="Windows 11 Pro (Tiếng Việt)",
            os_version="10.0.22631",
            os_build="22631",
            arch="AMD64",
            vendor="Công ty Máy tính Hà Nội",
            model="ThinkCentre M70s",
            serial="PC0ABCDE",
            boot_time=1_763_990_000.5,
            uptime_seconds=10_000.25,
        ),
        cpu=Cpu(
            model="Intel(R) Core(TM) i5-10400 CPU @ 2.90GHz",
            physical_cores=6,
            logical_cores=12,
            usage_ratio=0.375,
            load1=1.5,
            load5=1.25,
            load15=0.75,
            frequency_mhz=2904.0,
        ),
        memory=Memory(
            total_bytes=16 * 2**30,
            available_bytes=9 * 2**30,
            used_bytes=7 * 2**30,
            swap_total_bytes=4 * 2**30,
            swap_used_bytes=12345,
        ),
        disks=(
            Disk(
                mountpoint="C:\\",
                device="C:\\",
                fstype="NTFS",
                total_bytes=2 * TIB,
                used_bytes=TIB + 1,
                free_bytes=TIB - 1,
            ),
            Disk(
                mountpoint="D:\\Tài liệu",
                device="D:\\",
                fstype="NTFS",
                total_bytes=500 * 10**9,
                used_bytes=0,
                free_bytes=500 * 10**9,
            ),
        ),
        temperatures=(
            Temperature(
                sensor="coretemp",
                label="Package id 0",
                celsius=54.5,
                high_celsius=80.0,
                critical_celsius=100.0,
            ),
        ),
        battery=battery,
        interfaces=(
            NetInterface(
                name="Ethernet 2",
                up=True,
                speed_mbps=1000,
                duplex="full",
                mtu=1500,
                mac="00:1A:2B:3C:4D:5E",
                addresses=("192.168.10.21", "fe80::1"),
                bytes_sent=3 * TIB,
                bytes_recv=2**63 + 5,  # needs the full uint64 range
                errors_in=1,
                errors_out=2,
                drops_in=3,
                drops_out=4,
            ),
            NetInterface(name="Wi-Fi", up=False, speed_mbps=0, duplex="unknown", mtu=1500),
        ),
    )


def _report(battery: Battery | None = None, **changes: Any) -> Report:
    base = Report(
        collected_at_ms=int((NOW - 30) * 1000),
        boot_id="0f5e8a6c-6f7b-4d3a-9a2e-2b8c1d0e4f11",
        agent_version="0.1.0",
        hardware=_hardware(battery),
        errors=(
            ProbeError(
                probe="antivirus", message="ProbeFailed: không đọc được trạng thái Defender"
            ),
        ),
        seq=17,
        spool=SpoolStats(dropped_total=3, depth=9),
    )
    return dataclasses.replace(base, **changes)


def _round_trip(report: Report, now: float = NOW) -> Any:
    data = encode_report(report)
    assert isinstance(data, bytes)
    return decode_report(pb.Report.FromString(data), now)


def _assert_same_types(expected: Any, actual: Any, where: str = "hardware") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        for key, value in expected.items():
            _assert_same_types(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), where
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            _assert_same_types(e, a, f"{where}[{i}]")
    else:
        assert type(actual) is type(expected), f"{where}: {actual!r} vs {expected!r}"


def test_round_trip_without_battery() -> None:
    report = _report(battery=None)
    decoded = _round_trip(report)

    assert report.hardware is not None
    expected = plain(report.hardware)
    hardware = decoded.sections["hardware"]
    assert "battery" not in hardware
    assert hardware == expected
    _assert_same_types(expected, hardware)
    assert hardware["host"]["hostname"] == "MÁY-TÍNH-XÃ-VINH-QUÝ"
    assert hardware["host"]["os_name"] == "Windows 11 Pro (Tiếng Việt)"
    assert hardware["disks"][0]["total_bytes"] == 2 * TIB
    assert type(hardware["disks"][0]["total_bytes"]) is int
    assert hardware["interfaces"][0]["bytes_recv"] == 2**63 + 5
    assert hardware["interfaces"][0]["addresses"] == ["192.168.10.21", "fe80::1"]


def test_a_nan_reading_is_carried_not_a_lost_report() -> None:
    # psutil can return NaN (e.g. a sensor mid-update); one odd value must not cost the report.
    report = _report()
    assert report.hardware is not None
    cpu = dataclasses.replace(report.hardware.cpu, usage_ratio=float("nan"))
    odd = dataclasses.replace(report, hardware=dataclasses.replace(report.hardware, cpu=cpu))
    assert math.isnan(_round_trip(odd).sections["hardware"]["cpu"]["usage_ratio"])


def test_round_trip_with_battery() -> None:
    battery = Battery(percent=87.5, power_plugged=False, seconds_left=5400)
    decoded = _round_trip(_report(battery=battery))
    assert decoded.sections["hardware"]["battery"] == {
        "percent": 87.5,
        "power_plugged": False,
        "seconds_left": 5400,
    }


def test_round_trip_battery_unknown_time_left() -> None:
    battery = Battery(percent=100.0, power_plugged=True)  # seconds_left defaults to -1
    decoded = _round_trip(_report(battery=battery))
    assert decoded.sections["hardware"]["battery"]["seconds_left"] == -1


def test_round_trip_envelope_errors_and_spool() -> None:
    report = _report()
    decoded = _round_trip(report)
    assert decoded.seq == 17
    assert decoded.boot_id == report.boot_id
    assert decoded.agent_version == "0.1.0"
    assert decoded.collected_at == report.collected_at_ms / 1000
    assert decoded.errors == [
        {"probe": "antivirus", "message": "ProbeFailed: không đọc được trạng thái Defender"}
    ]
    assert decoded.spool == {
        "dropped_total": 3,
        "depth": 9,
        "unspooled_total": 0,
        "resets_total": 0,
        "reset_lost_total": 0,
    }
    assert set(decoded.sections) == {"hardware"}


def test_section_absent_when_probe_did_not_run() -> None:
    decoded = _round_trip(_report(hardware=None, errors=()))
    assert decoded.sections == {}
    assert decoded.errors == []


def test_encoding_is_deterministic() -> None:
    assert encode_report(_report()) == encode_report(_report())


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"seq": 0}, "seq"),
        ({"collected_at_ms": 0}, "plausible"),
        ({"collected_at_ms": int((NOW + 2 * 86400) * 1000)}, "plausible"),
        ({"collected_at_ms": int(NOW * 1000) - 30 * 365 * 86400 * 1000}, "plausible"),
        ({"boot_id": "x" * 65}, "boot_id"),
    ],
)
def test_decode_rejects(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidReport, match=reason):
        _round_trip(_report(**changes))


@pytest.mark.parametrize(
    "changes",
    [
        {"seq": 1},
        {"boot_id": "x" * 64},
        {"boot_id": ""},
        {"collected_at_ms": int((NOW + 12 * 3600) * 1000)},  # a drifting clock is tolerated
    ],
)
def test_decode_accepts_edge_values(changes: dict[str, Any]) -> None:
    report = _report(**changes)
    decoded = _round_trip(report)
    assert decoded.seq == report.seq
    assert decoded.boot_id == report.boot_id


def test_invalid_report_is_a_value_error() -> None:
    # The server maps ValueError-family input problems to a rejection, never a crash.
    assert issubclass(InvalidReport, ValueError)


def test_decode_uses_the_given_now() -> None:
    at = int(time.time() * 1000)
    report = _report(collected_at_ms=at)
    assert _round_trip(report, now=at / 1000).collected_at == at / 1000
    with pytest.raises(InvalidReport):
        _round_trip(report, now=at / 1000 - 3 * 86400)


def test_plain_drops_none_and_turns_tuples_into_lists() -> None:
    out = plain(_report(battery=None))
    assert isinstance(out, dict)
    assert "battery" not in out["hardware"]
    assert isinstance(out["errors"], list)
    assert isinstance(out["hardware"]["disks"], list)
    assert out["hardware"]["interfaces"][0]["addresses"] == ["192.168.10.21", "fe80::1"]
    assert out["spool"] == {
        "dropped_total": 3,
        "depth": 9,
        "unspooled_total": 0,
        "resets_total": 0,
        "reset_lost_total": 0,
    }

    bare = plain(Report(collected_at_ms=1, boot_id="b", agent_version="v"))
    assert bare == {
        "collected_at_ms": 1,
        "boot_id": "b",
        "agent_version": "v",
        "errors": [],
        "seq": 0,
        "spool_id": 0,
        "spool": {
            "dropped_total": 0,
            "depth": 0,
            "unspooled_total": 0,
            "resets_total": 0,
            "reset_lost_total": 0,
        },
    }


def test_plain_keeps_falsy_values_that_are_not_none() -> None:
    out = plain(Battery(percent=0.0, power_plugged=False, seconds_left=0))
    assert out == {"percent": 0.0, "power_plugged": False, "seconds_left": 0}


def test_plain_leaves_scalars_and_classes_alone() -> None:
    assert plain(5) == 5
    assert plain("Hạ Lang") == "Hạ Lang"
    assert plain((1, (2, 3))) == [1, [2, 3]]
    assert plain(Report) is Report


def test_plain_is_json_serialisable() -> None:
    report = _report(battery=Battery(percent=50.0, power_plugged=True, seconds_left=-1))
    text = json.dumps(plain(report), ensure_ascii=False)
    assert "Tiếng Việt" in text
    back = json.loads(text)
    assert back == plain(report)
    assert back["hardware"]["interfaces"][0]["bytes_recv"] == 2**63 + 5


@pytest.mark.parametrize(
    "report",
    [
        _report(),
        _report(battery=Battery(percent=87.5, power_plugged=False, seconds_left=5400)),
        _report(hardware=None, errors=()),
        Report(
            collected_at_ms=1,
            boot_id="b",
            agent_version="t",
            hardware=HardwareProbe().collect(),  # this machine, as the service reads it
        ),
    ],
)
def test_field_by_field_encoding_is_what_json_format_parse_dict_gives(report: Report) -> None:
    assert to_pb(report) == json_format.ParseDict(plain(report), pb.Report())


def test_a_record_the_proto_does_not_match_fails_loudly_naming_the_field() -> None:
    wrong_section = ProbeError(probe="x", message="y")
    with pytest.raises(TypeError, match=r"Hardware\.probe"):
        to_pb(_report(hardware=wrong_section))
    report = _report()
    assert report.hardware is not None
    memory = dataclasses.replace(report.hardware.memory, total_bytes="lots")  # type: ignore[arg-type]
    hardware = dataclasses.replace(report.hardware, memory=memory)
    with pytest.raises(TypeError, match=r"Memory\.total_bytes"):
        to_pb(dataclasses.replace(report, hardware=hardware))
