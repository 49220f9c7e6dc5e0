"""Meeting-room probe: device parsers, fake sysfs/procfs, readiness table, the probe on the wire."""

from __future__ import annotations

import errno
from collections import namedtuple
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import pytest

from agent.config import load_config
from agent.errors import ProbeFailed
from agent.model import (
    ClockOffset,
    ConferencingApp,
    DeviceCheck,
    Headroom,
    PingResult,
    Report,
    ThroughputResult,
)
from agent.platform.icmp import PingRun
from agent.platform.throughput import ThroughputOptions
from agent.platform.windows import PerScript
from agent.probes.base import CollectorLink
from agent.probes.meeting_room import (
    AppOptions,
    DeviceExpectation,
    MeetingRoomOptions,
    MeetingRoomProbe,
    PathSample,
    ReadinessThresholds,
    assess_readiness,
    check_apps,
    check_devices,
    parse_asound,
    parse_drm_status,
    parse_v4l2_capability,
    parse_windows_devices,
    query_v4l2_capability,
    read_linux_devices,
)
from agent.transport.client import clock_offset
from agent.transport.encode import to_pb

FIXTURES = Path(__file__).parent.parent / "fixtures" / "meeting_room"
CONFIGS = Path(__file__).parent.parent.parent / "configs"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def v4l2(name: str) -> bytes:
    return bytes.fromhex(fixture(name).replace("\n", " "))


# ---- Windows -------------------------------------------------------------------------


def test_windows_devices_vi_vn_kinds_statuses_and_absent_devices() -> None:
    devices = parse_windows_devices(fixture("windows_room_vi-VN.json"))
    assert [(d.kind, d.name, d.status) for d in devices] == [
        ("camera", "Logitech BRIO", "ok"),
        ("camera", "Camera tích hợp", "error"),
        ("microphone", "Micrô (Logitech BRIO)", "ok"),
        ("speaker", "Loa (Realtek(R) Audio)", "ok"),
        ("microphone", "Micrô mảng (Realtek(R) Audio)", "degraded"),
        ("display", "Màn hình PnP chung", "ok"),
        ("display", "Màn hình PnP chung", "unknown"),
    ]
    # The unplugged C270 Windows still remembers is not listed, so it is never an alarm.
    assert all("C270" not in d.name for d in devices)
    assert devices[1].source == "pnp:Image" and devices[1].raw_status == "Error"


def test_windows_single_device_object_and_truncated_document() -> None:
    (camera,) = parse_windows_devices(fixture("windows_single_camera.json"))
    assert camera.kind == "camera" and camera.device_id.startswith("USB\\VID_046D")
    with pytest.raises(ProbeFailed, match="meeting-room devices"):
        parse_windows_devices(fixture("windows_truncated.json"))
    assert parse_windows_devices('{"Devices": null}') == []


# ---- Linux ---------------------------------------------------------------------------


def test_v4l2_capture_node_counts_metadata_node_does_not() -> None:
    capture = parse_v4l2_capability(v4l2("v4l2-uvc-capture.hex"))
    meta = parse_v4l2_capability(v4l2("v4l2-uvc-metadata.hex"))
    assert (capture.driver, capture.card, capture.bus_info) == (
        "uvcvideo",
        "HD Pro Webcam C920",
        "usb-0000:00:14.0-1",
    )
    assert capture.is_capture and not meta.is_capture
    # Without DEVICE_CAPS in capabilities (old kernels) the device-wide bits decide.
    assert replace(meta, capabilities=0x00000001).is_capture
    with pytest.raises(ProbeFailed, match="103 bytes"):
        parse_v4l2_capability(v4l2("v4l2-uvc-capture.hex")[:103])


ASOUND_CARDS = """\
 0 [PCH            ]: HDA-Intel - HDA Intel PCH
                      HDA Intel PCH at 0xf7f10000 irq 32
 1 [C920           ]: USB-Audio - HD Pro Webcam C920
                      HD Pro Webcam C920 at usb-0000:00:14.0-1, high speed
"""
ASOUND_PCM = """\
00-00: ALC892 Analog : ALC892 Analog : playback 1 : capture 1
00-03: HDMI 0 : HDMI 0 : playback 1
01-00: USB Audio : USB Audio : capture 1
"""


def test_asound_cards_by_direction_and_drm_status() -> None:
    assert [(d.kind, d.name, d.device_id) for d in parse_asound(ASOUND_CARDS, ASOUND_PCM)] == [
        ("microphone", "HDA Intel PCH", "card0"),
        ("speaker", "HDA Intel PCH", "card0"),
        ("microphone", "HD Pro Webcam C920", "card1"),
    ]
    assert parse_asound("--- no soundcards ---\n", "") == []
    display = parse_drm_status("card0-HDMI-A-1", "connected\n")
    assert display is not None and display.name == "HDMI-A-1"
    assert parse_drm_status("card0-DP-1", "disconnected\n") is None
    assert parse_drm_status("card0", "") is None


def fake_tree(tmp: Path) -> tuple[Path, Path, Path]:
    dev, proc, sys = tmp / "dev", tmp / "proc", tmp / "sys"
    dev.mkdir()
    for node in ("video0", "video1", "video2", "video10", "vcs"):
        (dev / node).touch()
    (proc / "asound").mkdir(parents=True)
    (proc / "asound" / "cards").write_text(ASOUND_CARDS)
    (proc / "asound" / "pcm").write_text(ASOUND_PCM)
    drm = sys / "class" / "drm"
    for connector, status in (("card0-HDMI-A-1", "connected"), ("card0-DP-1", "disconnected")):
        (drm / connector).mkdir(parents=True)
        (drm / connector / "status").write_text(status + "\n")
    (drm / "card0").mkdir()
    (drm / "version").write_text("drm 1.1.0 20060810\n")
    return dev, proc, sys


def fake_querycap(path: str) -> bytes:
    name = Path(path).name
    if name in ("video0", "video10"):
        return v4l2("v4l2-uvc-capture.hex")
    if name == "video1":
        return v4l2("v4l2-uvc-metadata.hex")
    raise PermissionError(errno.EACCES, "Permission denied")


def test_linux_devices_from_a_fake_tree(tmp_path: Path) -> None:
    devices, notes = read_linux_devices(*fake_tree(tmp_path), fake_querycap)
    assert [(d.kind, d.source, Path(d.device_id).name) for d in devices] == [
        ("camera", "v4l2", "video0"),
        ("camera", "v4l2", "video10"),
        ("microphone", "alsa", "card0"),
        ("speaker", "alsa", "card0"),
        ("microphone", "alsa", "card1"),
        ("display", "drm", "card0-HDMI-A-1"),
    ]
    assert notes == [f"{tmp_path}/dev/video2: cannot query V4L2 capabilities (Permission denied)"]


def test_real_querycap_on_a_file_that_is_not_a_v4l2_node(tmp_path: Path) -> None:
    dev, proc, sys = fake_tree(tmp_path)
    devices, notes = read_linux_devices(dev, proc, sys, query_v4l2_capability)
    assert [d for d in devices if d.kind == "camera"] == []
    assert len(notes) == 4 and all("cannot query V4L2" in n for n in notes)


def test_empty_roots_give_no_devices(tmp_path: Path) -> None:
    assert read_linux_devices(tmp_path / "d", tmp_path / "p", tmp_path / "s", fake_querycap) == (
        [],
        [],
    )


# ---- expectations and apps -----------------------------------------------------------


def test_missing_camera_differs_from_a_room_without_camera() -> None:
    devices = parse_windows_devices(fixture("windows_room_vi-VN.json"))
    expect = [
        DeviceExpectation(kind="camera", pattern="logitech*"),
        DeviceExpectation(kind="microphone", count=2),
        DeviceExpectation(kind="display", pattern="*PnP*", count=2),
        DeviceExpectation(kind="camera", pattern="*polycom*"),
    ]
    assert check_devices(devices, expect) == (
        DeviceCheck("camera", "logitech*", 1, 1, 0),
        DeviceCheck("microphone", "*", 2, 1, 1),
        DeviceCheck("display", "*PnP*", 2, 1, 1),
        DeviceCheck("camera", "*polycom*", 1, 0, 0),
    )
    # No expectation for speakers: a room configured without them has nothing to miss.
    assert check_devices(devices, []) == ()


def test_conferencing_apps_installed_and_running() -> None:
    apps = [
        AppOptions(name="Zoom", processes=["Zoom.exe"], paths=[r"C:\Zoom\bin\Zoom.exe"]),
        AppOptions(name="Webex", processes=["CiscoCollabHost"], required=True),
        AppOptions(name="Jitsi", processes=["jitsi-meet"], paths=["/opt/jitsi"], required=True),
    ]
    got = check_apps(apps, ["zoom", "ciscocollabhost.exe", "bash"], {"/opt/jitsi"}.__contains__)
    assert got == (
        ConferencingApp("Zoom", installed=True, running=True),
        ConferencingApp("Webex", installed=True, running=True, required=True),
        ConferencingApp("Jitsi", installed=True, running=False, required=True),
    )


# ---- readiness ---------------------------------------------------------------------------


def ping(
    target: str = "meet.example.vn", rtt: float = 0.04, jitter: float = 0.005, loss: float = 0.0
) -> PingResult:
    return PingResult(
        target, "192.0.2.1", "icmp-dgram", 20, 20 - round(loss * 20), loss, rtt, rtt, rtt, jitter
    )


def mbps(down: float) -> ThroughputResult:
    return ThroughputResult(1_000_000, 8.0 / down, down * 1e6)


GOOD: dict[str, Any] = {
    "checks": (DeviceCheck("camera", "*", 1, 1),),
    "devices_error": "",
    "path": PathSample((ping(),), mbps(10.0)),
    "apps": (ConferencingApp("Zoom", True, True, True),),
    "clock": ClockOffset(True, 0.2, 0.01),
    "headroom": Headroom(0.2, 0.5, 0.4),
}

CASES: list[tuple[str, dict[str, Any], ReadinessThresholds, str, set[str]]] = [
    ("all good", {}, ReadinessThresholds(), "green", set()),
    (
        "rtt just under green",
        {"path": PathSample((ping(rtt=0.0999),), mbps(10))},
        ReadinessThresholds(),
        "green",
        set(),
    ),
    (
        "rtt at green limit",
        {"path": PathSample((ping(rtt=0.100),), mbps(10))},
        ReadinessThresholds(),
        "amber",
        {"rtt_high"},
    ),
    (
        "rtt at amber limit",
        {"path": PathSample((ping(rtt=0.150),), mbps(10))},
        ReadinessThresholds(),
        "red",
        {"rtt_high"},
    ),
    (
        "jitter amber",
        {"path": PathSample((ping(jitter=0.035),), mbps(10))},
        ReadinessThresholds(),
        "amber",
        {"jitter_high"},
    ),
    (
        "jitter red",
        {"path": PathSample((ping(jitter=0.040),), mbps(10))},
        ReadinessThresholds(),
        "red",
        {"jitter_high"},
    ),
    (
        "loss amber",
        {"path": PathSample((ping(loss=0.015),), mbps(10))},
        ReadinessThresholds(),
        "amber",
        {"loss_high"},
    ),
    (
        "loss red",
        {"path": PathSample((ping(loss=0.05),), mbps(10))},
        ReadinessThresholds(),
        "red",
        {"loss_high"},
    ),
    (
        "one of two endpoints slow",
        {"path": PathSample((ping(), ping("collector", rtt=0.12)), mbps(10))},
        ReadinessThresholds(),
        "amber",
        {"rtt_high"},
    ),
    (
        "endpoint silent",
        {
            "path": PathSample(
                (PingResult("meet", "192.0.2.1", "icmp-dgram", 20, 0, 1.0),), mbps(10)
            )
        },
        ReadinessThresholds(),
        "red",
        {"path_down"},
    ),
    (
        "endpoint unresolvable",
        {
            "path": PathSample(
                (PingResult("meet", "", "", 0, 0, 1.0, error="cannot resolve"),), mbps(10)
            )
        },
        ReadinessThresholds(),
        "red",
        {"path_down"},
    ),
    (
        "nothing pinged",
        {"path": PathSample((), mbps(10))},
        ReadinessThresholds(),
        "amber",
        {"path_unmeasured"},
    ),
    (
        "1080p at 2.5",
        {"path": PathSample((ping(),), mbps(2.5))},
        ReadinessThresholds(),
        "green",
        set(),
    ),
    (
        "1080p room at 720p rate",
        {"path": PathSample((ping(),), mbps(2.0))},
        ReadinessThresholds(),
        "amber",
        {"throughput_low"},
    ),
    (
        "1080p room below 720p rate",
        {"path": PathSample((ping(),), mbps(1.4))},
        ReadinessThresholds(),
        "red",
        {"throughput_low"},
    ),
    (
        "720p room at 1.5",
        {"path": PathSample((ping(),), mbps(1.5))},
        ReadinessThresholds(video_profile="720p"),
        "green",
        set(),
    ),
    (
        "720p room below",
        {"path": PathSample((ping(),), mbps(1.2))},
        ReadinessThresholds(video_profile="720p"),
        "red",
        {"throughput_low"},
    ),
    (
        "throughput never measured",
        {"path": PathSample((ping(),), None)},
        ReadinessThresholds(),
        "amber",
        {"throughput_unmeasured"},
    ),
    (
        "throughput failed",
        {"path": PathSample((ping(),), ThroughputResult(0, 0.0, 0.0, "UNAVAILABLE"))},
        ReadinessThresholds(),
        "red",
        {"throughput_failed"},
    ),
    (
        "camera missing",
        {"checks": (DeviceCheck("camera", "*", 1, 0),)},
        ReadinessThresholds(),
        "red",
        {"device_missing"},
    ),
    (
        "camera broken",
        {"checks": (DeviceCheck("camera", "*", 1, 0, 1),)},
        ReadinessThresholds(),
        "red",
        {"device_missing"},
    ),
    ("room without camera", {"checks": ()}, ReadinessThresholds(), "green", set()),
    (
        "devices unreadable",
        {"checks": (), "devices_error": "PowerShell did not finish"},
        ReadinessThresholds(),
        "red",
        {"devices_unreadable"},
    ),
    (
        "required app missing",
        {"apps": (ConferencingApp("Zoom", False, False, True),)},
        ReadinessThresholds(),
        "red",
        {"app_missing"},
    ),
    (
        "optional app missing",
        {"apps": (ConferencingApp("Zoom", False, False, False),)},
        ReadinessThresholds(),
        "green",
        set(),
    ),
    (
        "required app not running",
        {"apps": (ConferencingApp("Zoom", True, False, True),)},
        ReadinessThresholds(),
        "green",
        {"app_not_running"},
    ),
    (
        "clock off",
        {"clock": ClockOffset(True, -7.0, 0.1)},
        ReadinessThresholds(),
        "amber",
        {"clock_offset"},
    ),
    ("clock unknown", {"clock": ClockOffset()}, ReadinessThresholds(), "green", {"clock_unknown"}),
    (
        "cpu busy",
        {"headroom": Headroom(0.95, 0.5, 0.5)},
        ReadinessThresholds(),
        "amber",
        {"cpu_busy"},
    ),
    (
        "memory low",
        {"headroom": Headroom(0.1, 0.05, 0.5)},
        ReadinessThresholds(),
        "amber",
        {"memory_low"},
    ),
    (
        "disk low",
        {"headroom": Headroom(0.1, 0.5, 0.01)},
        ReadinessThresholds(),
        "amber",
        {"disk_low"},
    ),
    (
        "custom thresholds",
        {"path": PathSample((ping(rtt=0.12),), mbps(10))},
        ReadinessThresholds(green_rtt=0.2, amber_rtt=0.3),
        "green",
        set(),
    ),
    (
        "everything wrong, every reason listed",
        {
            "checks": (DeviceCheck("camera", "*", 1, 0), DeviceCheck("microphone", "*", 1, 0)),
            "path": PathSample((ping(rtt=0.2, jitter=0.05, loss=0.1),), mbps(0.5)),
            "clock": ClockOffset(True, 30.0, 0.1),
            "headroom": Headroom(0.99, 0.01, 0.01),
        },
        ReadinessThresholds(),
        "red",
        {
            "device_missing",
            "rtt_high",
            "jitter_high",
            "loss_high",
            "throughput_low",
            "clock_offset",
            "cpu_busy",
            "memory_low",
            "disk_low",
        },
    ),
]


@pytest.mark.parametrize(
    ("case", "overrides", "thresholds", "state", "codes"), CASES, ids=[c[0] for c in CASES]
)
def test_readiness_table(
    case: str,
    overrides: dict[str, Any],
    thresholds: ReadinessThresholds,
    state: str,
    codes: set[str],
) -> None:
    del case
    readiness = assess_readiness(thresholds, **{**GOOD, **overrides})
    assert readiness.state == state
    # Informational reasons (upload never measured, …) are listed but never colour the state.
    assert {r.code for r in readiness.reasons if r.code != "upload_unmeasured"} == codes
    assert readiness.video_profile == thresholds.video_profile
    assert any(r.code == "upload_unmeasured" and r.severity == "info" for r in readiness.reasons)


@pytest.mark.parametrize(
    ("profile", "upload", "state", "code"),
    [
        ("1080p", mbps(3.5), "green", None),
        ("1080p", mbps(2.0), "amber", "upload_low"),  # enough for 720p only
        ("1080p", mbps(1.0), "red", "upload_low"),
        ("720p", mbps(1.6), "green", None),
        ("720p", mbps(1.0), "red", "upload_low"),
        (
            "1080p",
            ThroughputResult(0, 0.0, 0.0, "DeliveryError: UNAVAILABLE"),
            "red",
            "upload_failed",
        ),
    ],
)
def test_upload_thresholds(
    profile: Literal["1080p", "720p"], upload: ThroughputResult, state: str, code: str | None
) -> None:
    readiness = assess_readiness(
        ReadinessThresholds(video_profile=profile),
        **{**GOOD, "path": PathSample((ping(),), mbps(10.0), upload)},
    )
    assert readiness.state == state
    codes = {r.code for r in readiness.reasons}
    assert codes == ({code} if code else set())
    assert "upload_unmeasured" not in codes  # measured: no "not measured" note


def test_two_missing_devices_are_two_reasons() -> None:
    readiness = assess_readiness(
        ReadinessThresholds(),
        **{
            **GOOD,
            "checks": (DeviceCheck("camera", "*", 1, 0), DeviceCheck("display", "*", 2, 1, 1)),
        },
    )
    details = [r.detail for r in readiness.reasons if r.code == "device_missing"]
    assert details == [
        "camera '*': expected 1, working 0",
        "display '*': expected 2, working 1, 1 present but not working",
    ]


# ---- the probe, end to end with its seams ----------------------------------------------

Times = namedtuple("Times", "user system idle")
Memory = namedtuple("Memory", "total available")
Usage = namedtuple("Usage", "total free")


class FakeProcess:
    def __init__(self, name: str) -> None:
        self.info = {"name": name}


class FakePs:
    def __init__(self) -> None:
        self.calls = 0

    def process_iter(self, attrs: list[str]) -> list[FakeProcess]:
        assert attrs == ["name"]
        return [FakeProcess("systemd"), FakeProcess("Zoom")]

    def cpu_times(self) -> Times:
        self.calls += 1
        return Times(user=10.0 * self.calls, system=0.0, idle=90.0 * self.calls)

    def virtual_memory(self) -> Memory:
        return Memory(total=8 * 2**30, available=2 * 2**30)

    def disk_usage(self, path: str) -> Usage:
        assert path in ("/", "C:\\")
        return Usage(total=100, free=40)


def fake_pinger(address: str, count: int, interval: float, timeout: float) -> PingRun:
    del interval, timeout
    rtt = 0.12 if address == "127.0.0.1" else 0.03
    return PingRun("icmp-dgram", tuple([rtt] * count))


def test_probe_on_linux_reports_devices_paths_and_readiness(tmp_path: Path) -> None:
    dev, proc, sys = fake_tree(tmp_path)
    options = MeetingRoomOptions(
        expect=[
            DeviceExpectation(kind="camera", count=2),
            DeviceExpectation(kind="display"),
            DeviceExpectation(kind="speaker", pattern="*polycom*"),
        ],
        apps=[AppOptions(name="Zoom", processes=["zoom"], required=True)],
        endpoints=["127.0.0.2:443"],
        count=5,
    )
    downloads: list[int] = []

    def throughput(nbytes: int) -> tuple[int, float]:
        downloads.append(nbytes)
        return nbytes, nbytes * 8 / 5e6

    probe = MeetingRoomProbe(
        options,
        system=lambda: "Linux",
        ps=FakePs(),
        dev_root=dev,
        proc_root=proc,
        sys_root=sys,
        querycap=fake_querycap,
        pinger=fake_pinger,
        wall_clock=lambda: 1_700_000_000.0,
    )
    probe.connect(
        CollectorLink(
            "127.0.0.1:50051",
            throughput,
            lambda: ClockOffset(True, 0.5, 0.01),
            upload=lambda nbytes: (nbytes, nbytes * 8 / 1_000_000),  # 1 Mbit/s up
        )
    )
    room = probe.collect()
    assert room.upload is not None and round(room.upload.bits_per_second) == 1_000_000
    assert [c.found for c in room.device_checks] == [2, 1, 0]
    assert [(p.target, p.received) for p in room.paths] == [("127.0.0.2", 5), ("127.0.0.1", 5)]
    assert room.throughput is not None and round(room.throughput.bits_per_second) == 5_000_000
    assert room.throughput_measured_at == 1_700_000_000.0
    # No CPU baseline in the first cycle yet: 0, as the hardware probe reports it.
    assert room.headroom == Headroom(
        cpu_busy_ratio=0.0, memory_available_ratio=0.25, disk_free_ratio=0.4
    )
    assert room.readiness is not None and room.readiness.state == "red"
    assert {r.code for r in room.readiness.reasons} == {
        "device_missing",
        "rtt_high",
        "upload_low",  # 1 Mbit/s up, below even the 720p rate
    }
    assert room.notes == (f"{dev}/video2: cannot query V4L2 capabilities (Permission denied)",)
    # The next cycle reuses the measured throughput instead of downloading again.
    again = probe.collect()
    assert downloads == [options.throughput.bytes] and again.throughput == room.throughput
    assert again.headroom is not None and again.headroom.cpu_busy_ratio == pytest.approx(0.1)
    # The section survives the wire contract (field names match the proto exactly).
    pb = to_pb(Report(collected_at_ms=1, boot_id="b", agent_version="t", meeting_room=room))
    assert pb.meeting_room.readiness.state == "red"
    assert pb.meeting_room.device_checks[0].found == 2
    assert pb.meeting_room.clock.offset_seconds == 0.5


def test_probe_on_windows_and_unreadable_devices() -> None:
    def powershell(script: str, timeout: float) -> str:
        assert "-PresentOnly" in script and "AudioEndpoint" in script
        return fixture("windows_room_vi-VN.json")

    options = MeetingRoomOptions(
        expect=[DeviceExpectation(kind="camera", pattern="logitech*")],
        ping_collector=False,
        throughput=ThroughputOptions(enabled=False),
    )
    probe = MeetingRoomProbe(
        options, system=lambda: "Windows", powershell=PerScript(powershell), ps=FakePs()
    )
    room = probe.collect()
    assert len(room.devices) == 7 and room.device_checks[0].found == 1
    assert room.readiness is not None
    assert {r.code for r in room.readiness.reasons} >= {
        "path_unmeasured",
        "throughput_unmeasured",
        "clock_unknown",
    }

    def failing(script: str, timeout: float) -> str:
        raise ProbeFailed("PowerShell did not finish within 30 s")

    broken = MeetingRoomProbe(
        options, system=lambda: "Windows", powershell=PerScript(failing), ps=FakePs()
    )
    room = broken.collect()
    assert room.readiness is not None and room.readiness.state == "red"
    assert room.readiness.reasons[0].code == "devices_unreadable"
    assert room.device_checks == ()


def test_clock_offset_is_taken_at_the_call_midpoint() -> None:
    offset = clock_offset(1000.0, 1000.4, 1_002_200)
    assert offset.known
    assert offset.offset_seconds == pytest.approx(2.0)
    assert offset.uncertainty_seconds == pytest.approx(0.2)


def test_example_agent_config_meeting_room_options() -> None:
    cfg = load_config(CONFIGS / "agent.example.yaml").probes.meeting_room
    assert [e.kind for e in cfg.expect] == ["camera", "microphone", "speaker", "display"]
    assert cfg.readiness.video_profile == "1080p" and cfg.readiness.green_rtt == 0.1
    assert not cfg.enabled and cfg.interval == 300.0


def test_media_device_kinds_are_the_documented_four() -> None:
    kinds = {d.kind for d in parse_windows_devices(fixture("windows_room_vi-VN.json"))}
    assert kinds == {"camera", "microphone", "speaker", "display"}
