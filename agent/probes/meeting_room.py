"""Meeting-room probe: devices, conferencing software, clock, headroom, path quality, readiness."""

from __future__ import annotations

import fnmatch
import os
import platform
import re
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import psutil

from agent.errors import ProbeFailed
from agent.model import (
    ClockOffset,
    ConferencingApp,
    DeviceCheck,
    Headroom,
    MediaDevice,
    MeetingRoom,
    PingResult,
    Readiness,
    ReadinessReason,
    ThroughputResult,
)
from agent.platform import icmp, psjson, windows
from agent.platform.cpu import cpu_usage_ratio
from agent.platform.netcheck import split_host_port
from agent.platform.ping import Pinger, PingPlan, ping_target
from agent.platform.psbatch import Query
from agent.platform.throughput import ThroughputOptions, measure_throughput
from agent.probes.base import CollectorLink, Probe, ProbeOptions
from agent.settings import Duration, Section, option

__all__ = [
    "POWERSHELL_SCRIPT",
    "V4L2_CAP_VIDEO_CAPTURE",
    "VIDIOC_QUERYCAP",
    "AppOptions",
    "DeviceExpectation",
    "MeetingRoomOptions",
    "MeetingRoomProbe",
    "PathSample",
    "ReadinessThresholds",
    "V4l2Capability",
    "assess_readiness",
    "check_apps",
    "check_devices",
    "parse_asound",
    "parse_drm_status",
    "parse_v4l2_capability",
    "parse_windows_devices",
    "query_v4l2_capability",
    "read_linux_devices",
]

Kind = Literal["camera", "microphone", "speaker", "display"]

# One call per cycle. -PresentOnly: devices Windows remembers but that are unplugged are not
# listed, so an old webcam is not an alarm; a missing expected device shows as "found 0".
POWERSHELL_SCRIPT = "; ".join(
    [
        "$ErrorActionPreference = 'Stop'",
        "$devices = @(Get-PnpDevice -PresentOnly -Class Camera, Image, AudioEndpoint, Monitor"
        " -ErrorAction SilentlyContinue | ForEach-Object { [ordered]@{ Class = $_.Class;"
        " FriendlyName = $_.FriendlyName; InstanceId = $_.InstanceId; Status = $_.Status;"
        " Present = $_.Present } })",
        "[ordered]@{ Devices = $devices } | ConvertTo-Json -Compress -Depth 3",
    ]
)

# _IOR('V', 0, struct v4l2_capability): read 104 bytes, type 'V', number 0.
VIDIOC_QUERYCAP = 0x80685600
V4L2_CAP_VIDEO_CAPTURE = 0x00000001
_V4L2_CAP_DEVICE_CAPS = 0x80000000
_V4L2_CAPABILITY = struct.Struct("<16s32s32sIII12x")

_PNP_STATUS = {"ok": "ok", "error": "error", "degraded": "degraded", "unknown": "unknown"}
# MMDevice endpoint ids: {0.0.0.…} render (speaker), {0.0.1.…} capture (microphone).
_ENDPOINT_FLOW = re.compile(r"\{0\.0\.([01])\.[0-9a-f]{8}\}", re.IGNORECASE)
_ASOUND_CARD = re.compile(r"^\s*(\d+)\s+\[[^\]]*\]:\s*(.*?)\s*$")
_ASOUND_PCM = re.compile(r"^(\d+)-(\d+):")
_VIDEO_NODE = re.compile(r"^video(\d+)$")


class DeviceExpectation(Section):
    """What the room should have: `count` devices of `kind` whose name matches `pattern`."""

    kind: Kind
    pattern: str = "*"
    count: int = option(default=1, ge=1, le=16)


class AppOptions(Section):
    name: str
    # Process names, case-insensitive, ".exe" optional ("Zoom", "CiscoCollabHost").
    processes: list[str] = option(min_length=1)
    # Files whose presence means installed; without any, running counts as installed.
    paths: list[str] = option(default_factory=list)
    required: bool = False


class ReadinessThresholds(Section):
    """Vendor guidance by default (group video calls): GREEN below the green limits, AMBER
    below the amber ones, RED otherwise or when an expected device is missing."""

    video_profile: Literal["1080p", "720p"] = "1080p"
    green_rtt: Duration = option(default=0.100, gt=0)
    green_jitter: Duration = option(default=0.030, gt=0)
    green_loss: float = option(default=0.01, ge=0, le=1)
    amber_rtt: Duration = option(default=0.150, gt=0)
    amber_jitter: Duration = option(default=0.040, gt=0)
    amber_loss: float = option(default=0.02, ge=0, le=1)
    down_mbps_1080p: float = option(default=2.5, gt=0)
    up_mbps_1080p: float = option(default=3.0, gt=0)
    down_mbps_720p: float = option(default=1.5, gt=0)
    up_mbps_720p: float = option(default=1.5, gt=0)
    max_clock_offset: Duration = option(default=5.0, gt=0)
    max_cpu_busy: float = option(default=0.90, gt=0, le=1)
    min_memory_available: float = option(default=0.10, ge=0, lt=1)
    min_disk_free: float = option(default=0.05, ge=0, lt=1)


class MeetingRoomOptions(ProbeOptions):
    interval: Duration | None = option(default=300.0, gt=0)
    # A meeting room needs one of each by default; drop a kind the room does not have.
    expect: list[DeviceExpectation] = option(
        default_factory=lambda: [
            DeviceExpectation(kind="camera"),
            DeviceExpectation(kind="microphone"),
            DeviceExpectation(kind="speaker"),
            DeviceExpectation(kind="display"),
        ]
    )
    apps: list[AppOptions] = option(default_factory=list)
    # Conference endpoints ("host" or "host:port"; the host is pinged).
    endpoints: list[str] = option(default_factory=list)
    ping_collector: bool = True
    count: int = option(default=20, ge=2, le=1000)
    ping_interval: Duration = option(default=0.2, gt=0)
    ping_timeout: Duration = option(default=1.0, gt=0)
    budget: Duration = option(default=30.0, gt=0)
    throughput: ThroughputOptions = option(default_factory=lambda: ThroughputOptions(every=3600.0))
    readiness: ReadinessThresholds = option(default_factory=ReadinessThresholds)
    # Disk whose free share counts as headroom ("" = "/" or the Windows system drive).
    disk: str = ""
    timeout: Duration = option(default=30.0, gt=0)


@dataclass(frozen=True)
class V4l2Capability:
    driver: str
    card: str
    bus_info: str
    version: int
    capabilities: int
    device_caps: int

    @property
    def is_capture(self) -> bool:
        # Without V4L2_CAP_DEVICE_CAPS (kernels before 3.3) only the whole-device caps exist.
        caps = self.device_caps if self.capabilities & _V4L2_CAP_DEVICE_CAPS else self.capabilities
        return bool(caps & V4L2_CAP_VIDEO_CAPTURE)


@dataclass(frozen=True)
class PathSample:
    """What readiness needs of the path: the pings this cycle and the last throughput."""

    pings: tuple[PingResult, ...]
    throughput: ThroughputResult | None
    upload: ThroughputResult | None = None


QueryCap = Callable[[str], bytes]


def query_v4l2_capability(path: str) -> bytes:
    """The raw struct v4l2_capability of a /dev/video node (OSError when it is not one)."""
    import fcntl  # noqa: PLC0415 (POSIX only; never imported on Windows)

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        buffer = bytearray(_V4L2_CAPABILITY.size)
        fcntl.ioctl(fd, VIDIOC_QUERYCAP, buffer, True)
        return bytes(buffer)
    finally:
        os.close(fd)


class MeetingRoomProbe(Probe[MeetingRoomOptions]):
    """Is this room ready for a meeting now? Every reason for "no" is listed."""

    name: ClassVar[str] = "meeting_room"
    needs_baseline: ClassVar[bool] = True
    enabled_by_default: ClassVar[bool] = False  # only a meeting room's agent turns it on

    def __init__(
        self,
        options: MeetingRoomOptions | None = None,
        *,
        system: Callable[[], str] = platform.system,
        powershell: windows.PowerShell | None = None,
        # Any: psutil's overloaded stubs make a Protocol for a test double brittle.
        ps: Any = psutil,
        dev_root: Path = Path("/dev"),
        proc_root: Path = Path("/proc"),
        sys_root: Path = Path("/sys"),
        querycap: QueryCap = query_v4l2_capability,
        exists: Callable[[str], bool] = os.path.exists,
        pinger: Pinger | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(options)
        self._system = system
        self._powershell = powershell or windows.shared_batch()
        self._ps = ps
        self._roots = (dev_root, proc_root, sys_root)
        self.query_v4l2_capability = querycap
        self._exists = exists
        self._pinger = pinger
        self._clock = clock
        self._wall = wall_clock
        self._collector: CollectorLink | None = None
        self._cpu_before: dict[str, float] | None = None
        self._throughput: ThroughputResult | None = None
        self._upload: ThroughputResult | None = None
        self._throughput_at = 0.0
        self._throughput_due = float("-inf")

    def connect(self, collector: CollectorLink) -> None:
        self._collector = collector

    def _query(self) -> Query:
        return Query(self.name, POWERSHELL_SCRIPT, self._options.timeout)

    def prepare(self) -> None:
        if self._system() == "Windows":
            self._powershell.declare(self._query())

    def collect(self) -> MeetingRoom:
        o = self._options
        notes: list[str] = []
        system = self._system()
        devices_error = ""
        devices: list[MediaDevice] = []
        try:
            if system == "Windows":
                # The cycle's batch may still run the other probes' queries here.
                devices = parse_windows_devices(self._powershell.result(self._query()))
            else:
                devices, unreadable = read_linux_devices(*self._roots, self.query_v4l2_capability)
                notes.extend(unreadable)
        except ProbeFailed as e:
            devices_error = str(e)
        # The budget starts after the device list: on Windows that call may wait for the
        # cycle's whole PowerShell batch, which is not this probe's time to spend.
        deadline = self._clock() + o.budget
        apps = check_apps(o.apps, self._process_names(), self._exists)
        clock = self._collector.clock_offset() if self._collector else ClockOffset()
        headroom = self._headroom(system)
        pings = self._pings(system, deadline, notes)
        self._measure_throughput(notes)
        checks = check_devices(devices, o.expect) if not devices_error else ()
        readiness = assess_readiness(
            o.readiness,
            checks=checks,
            devices_error=devices_error,
            path=PathSample(tuple(pings), self._throughput, self._upload),
            apps=apps,
            clock=clock,
            headroom=headroom,
        )
        return MeetingRoom(
            devices=tuple(devices),
            device_checks=checks,
            apps=apps,
            clock=clock,
            headroom=headroom,
            paths=tuple(pings),
            throughput=self._throughput,
            throughput_measured_at=self._throughput_at,
            readiness=readiness,
            notes=tuple(notes),
            upload=self._upload,
        )

    def _process_names(self) -> list[str]:
        names: list[str] = []
        for process in self._ps.process_iter(["name"]):
            name = process.info.get("name")
            if name:
                names.append(str(name))
        return names

    def _headroom(self, system: str) -> Headroom:
        after = dict(self._ps.cpu_times()._asdict())
        busy = cpu_usage_ratio(self._cpu_before, after)
        self._cpu_before = after
        memory = self._ps.virtual_memory()
        disk_path = self._options.disk or (
            os.environ.get("SYSTEMDRIVE", "C:") + "\\" if system == "Windows" else "/"
        )
        disk = self._ps.disk_usage(disk_path)
        return Headroom(
            cpu_busy_ratio=busy,
            memory_available_ratio=memory.available / memory.total if memory.total else 0.0,
            disk_free_ratio=disk.free / disk.total if disk.total else 0.0,
        )

    def _pings(self, system: str, deadline: float, notes: list[str]) -> list[PingResult]:
        o = self._options
        pinger = self._pinger or (icmp.ping_windows if system == "Windows" else icmp.ping_linux)
        targets = [split_host_port(e, 0)[0] for e in o.endpoints]
        if o.ping_collector and self._collector is not None:
            targets.append(split_host_port(self._collector.address, 0)[0])
        plan = PingPlan(o.count, o.ping_interval, o.ping_timeout)
        pings: list[PingResult] = []
        for target in dict.fromkeys(targets):
            left = deadline - self._clock()
            if left <= o.ping_timeout:
                notes.append(f"ping {target}: budget exhausted")
                continue
            pings.append(ping_target(target, pinger, plan, left, sequential=system == "Windows"))
        return pings

    def _measure_throughput(self, notes: list[str]) -> None:
        o = self._options.throughput
        now = self._clock()
        if not o.enabled or now < self._throughput_due:
            return
        if self._collector is None:
            notes.append("throughput: no collector connection in this run")
            return
        self._throughput_due = now + o.every
        self._throughput = measure_throughput(self._collector, o.bytes)
        if self._collector.upload is not None:
            self._upload = measure_throughput(self._collector, o.bytes, upload=True)
        self._throughput_at = self._wall()


# ---- Linux readers (the only code here touching files and ioctls) ---------------------


def read_linux_devices(
    dev_root: Path, proc_root: Path, sys_root: Path, querycap: QueryCap
) -> tuple[list[MediaDevice], list[str]]:
    """Cameras (V4L2 capture nodes), ALSA cards and connected DRM outputs; plus notes on
    nodes that could not be queried (e.g. the agent is not in group "video")."""
    devices: list[MediaDevice] = []
    notes: list[str] = []
    nodes = sorted(
        (int(m.group(1)), p)
        for p in (dev_root.iterdir() if dev_root.is_dir() else ())
        if (m := _VIDEO_NODE.match(p.name))
    )
    for _, node in nodes:
        try:
            capability = parse_v4l2_capability(querycap(str(node)))
        except OSError as e:
            notes.append(f"{node}: cannot query V4L2 capabilities ({e.strerror or e})")
            continue
        except ProbeFailed as e:
            notes.append(f"{node}: {e}")
            continue
        if capability.is_capture:
            devices.append(MediaDevice("camera", capability.card, "ok", "v4l2", str(node)))
    asound = proc_root / "asound"
    devices.extend(parse_asound(_read(asound / "cards"), _read(asound / "pcm")))
    drm = sys_root / "class" / "drm"
    for connector in sorted(drm.iterdir()) if drm.is_dir() else ():
        device = parse_drm_status(connector.name, _read(connector / "status"))
        if device is not None:
            devices.append(device)
    return devices, notes


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


# ---- pure parsers and judgements ------------------------------------------------------


def parse_v4l2_capability(raw: bytes) -> V4l2Capability:
    """The 104-byte struct v4l2_capability that VIDIOC_QUERYCAP fills in."""
    if len(raw) != _V4L2_CAPABILITY.size:
        raise ProbeFailed(f"v4l2_capability is {len(raw)} bytes, expected 104")
    driver, card, bus, version, caps, device_caps = _V4L2_CAPABILITY.unpack(raw)

    def text(field: bytes) -> str:
        return field.split(b"\0", 1)[0].decode("utf-8", errors="replace")

    return V4l2Capability(text(driver), text(card), text(bus), version, caps, device_caps)


def parse_windows_devices(document: str) -> list[MediaDevice]:
    """Media devices from the POWERSHELL_SCRIPT document (Get-PnpDevice -PresentOnly)."""
    parsed = psjson.load_document(document, "meeting-room devices")
    devices: list[MediaDevice] = []
    for item in psjson.as_list(parsed.get("Devices")):
        if psjson.as_bool(item.get("Present")) is False:
            continue
        pnp_class = psjson.as_text(item.get("Class"))
        instance = psjson.as_text(item.get("InstanceId"))
        kind = _pnp_kind(pnp_class, instance)
        if kind is None:
            continue
        raw = psjson.as_text(item.get("Status"))
        devices.append(
            MediaDevice(
                kind=kind,
                name=psjson.as_text(item.get("FriendlyName")) or instance,
                status=_PNP_STATUS.get(raw.lower(), "unknown"),
                source=f"pnp:{pnp_class}",
                device_id=instance,
                raw_status=raw,
            )
        )
    return devices


def _pnp_kind(pnp_class: str, instance: str) -> Kind | None:
    if pnp_class in ("Camera", "Image"):
        # Class Image also holds scanners; a webcam there is a "USB\" video-class device.
        return "camera"
    if pnp_class == "Monitor":
        return "display"
    if pnp_class == "AudioEndpoint":
        flow = _ENDPOINT_FLOW.search(instance)
        if flow is None:
            return None
        return "microphone" if flow.group(1) == "1" else "speaker"
    return None


def parse_asound(cards: str, pcm: str) -> list[MediaDevice]:
    """One microphone and/or speaker per ALSA card, by the directions its PCMs offer."""
    names: dict[int, str] = {}
    for line in cards.splitlines():
        match = _ASOUND_CARD.match(line)
        if match:
            names[int(match.group(1))] = match.group(2).split(" - ", 1)[-1]
    directions: dict[int, set[str]] = {}
    for line in pcm.splitlines():
        match = _ASOUND_PCM.match(line)
        if not match:
            continue
        card = int(match.group(1))
        for part in line.split(":")[3:]:
            word = part.strip().split(" ")[0]
            if word in ("playback", "capture"):
                directions.setdefault(card, set()).add(word)
    devices: list[MediaDevice] = []
    for card, name in sorted(names.items()):
        flows = directions.get(card, set())
        if "capture" in flows:
            devices.append(MediaDevice("microphone", name, "ok", "alsa", f"card{card}"))
        if "playback" in flows:
            devices.append(MediaDevice("speaker", name, "ok", "alsa", f"card{card}"))
    return devices


def parse_drm_status(connector: str, status: str) -> MediaDevice | None:
    """A display for a DRM connector ("card0-HDMI-A-1") whose status reads "connected"."""
    if "-" not in connector or status.strip() != "connected":
        return None
    return MediaDevice("display", connector.split("-", 1)[1], "ok", "drm", connector, "connected")


def check_devices(
    devices: Sequence[MediaDevice], expect: Iterable[DeviceExpectation]
) -> tuple[DeviceCheck, ...]:
    """For each expectation: matching devices that work, and those present but faulty."""
    checks: list[DeviceCheck] = []
    for e in expect:
        matching = [
            d
            for d in devices
            if d.kind == e.kind and fnmatch.fnmatchcase(d.name.casefold(), e.pattern.casefold())
        ]
        ok = sum(1 for d in matching if d.status == "ok")
        checks.append(DeviceCheck(e.kind, e.pattern, e.count, ok, len(matching) - ok))
    return tuple(checks)


def check_apps(
    apps: Iterable[AppOptions], process_names: Iterable[str], exists: Callable[[str], bool]
) -> tuple[ConferencingApp, ...]:
    running = {_process_key(n) for n in process_names}
    out: list[ConferencingApp] = []
    for app in apps:
        is_running = any(_process_key(p) in running for p in app.processes)
        installed = any(exists(p) for p in app.paths) if app.paths else is_running
        out.append(ConferencingApp(app.name, installed or is_running, is_running, app.required))
    return tuple(out)


def _process_key(name: str) -> str:
    key = name.strip().casefold()
    return key.removesuffix(".exe")


def assess_readiness(
    t: ReadinessThresholds,
    *,
    checks: Sequence[DeviceCheck],
    devices_error: str,
    path: PathSample,
    apps: Sequence[ConferencingApp],
    clock: ClockOffset,
    headroom: Headroom | None,
) -> Readiness:
    """GREEN / AMBER / RED and every reason; the state is the worst reason's severity."""
    reasons: list[ReadinessReason] = []

    def add(code: str, severity: str, detail: str) -> None:
        reasons.append(ReadinessReason(code, severity, detail))

    if devices_error:
        add("devices_unreadable", "red", devices_error)
    for c in checks:
        if c.found < c.expected:
            faulty = f", {c.faulty} present but not working" if c.faulty else ""
            add(
                "device_missing",
                "red",
                f"{c.kind} '{c.pattern}': expected {c.expected}, working {c.found}{faulty}",
            )
    _assess_path(t, path, add)
    for app in apps:
        if app.required and not app.installed:
            add("app_missing", "red", f"{app.name} is not installed")
        elif app.required and not app.running:
            add("app_not_running", "info", f"{app.name} is installed but not running")
    if not clock.known:
        add("clock_unknown", "info", "no clock offset measured against the collector yet")
    elif abs(clock.offset_seconds) > t.max_clock_offset:
        add(
            "clock_offset",
            "amber",
            f"clock differs from the collector by {clock.offset_seconds:+.1f} s",
        )
    if headroom is not None:
        if headroom.cpu_busy_ratio > t.max_cpu_busy:
            add("cpu_busy", "amber", f"CPU {headroom.cpu_busy_ratio:.0%} busy")
        if headroom.memory_available_ratio < t.min_memory_available:
            add("memory_low", "amber", f"{headroom.memory_available_ratio:.0%} memory available")
        if headroom.disk_free_ratio < t.min_disk_free:
            add("disk_low", "amber", f"{headroom.disk_free_ratio:.0%} disk free")
    severities = {r.severity for r in reasons}
    state = "red" if "red" in severities else "amber" if "amber" in severities else "green"
    return Readiness(state, tuple(reasons), t.video_profile)


def _assess_path(
    t: ReadinessThresholds, path: PathSample, add: Callable[[str, str, str], None]
) -> None:
    if not path.pings:
        add("path_unmeasured", "amber", "no conference endpoint or collector was pinged")
    for p in path.pings:
        where = p.target
        if p.error or not p.received:
            add("path_down", "red", f"{where}: no reply ({p.error or f'{p.sent} sent'})")
            continue
        for code, value, green, amber, show in (
            ("rtt_high", p.rtt_avg_seconds, t.green_rtt, t.amber_rtt, _ms),
            ("jitter_high", p.jitter_seconds, t.green_jitter, t.amber_jitter, _ms),
            ("loss_high", p.loss_ratio, t.green_loss, t.amber_loss, _percent),
        ):
            if value >= amber:
                add(code, "red", f"{where}: {show(value)} (RED from {show(amber)})")
            elif value >= green:
                add(code, "amber", f"{where}: {show(value)} (GREEN below {show(green)})")
    _assess_throughput(t, path.throughput, add)
    _assess_upload(t, path.upload, add)


def _assess_upload(
    t: ReadinessThresholds,
    upload: ThroughputResult | None,
    add: Callable[[str, str, str], None],
) -> None:
    need = t.up_mbps_1080p if t.video_profile == "1080p" else t.up_mbps_720p
    unmeasured = ("info", f"upload not measured yet (needs {need:g} Mbit/s)")
    rates = (t.up_mbps_1080p, t.up_mbps_720p)
    _assess_rate(
        t, upload, add, code="upload", direction="upload", rates=rates, unmeasured=unmeasured
    )


def _assess_throughput(
    t: ReadinessThresholds,
    throughput: ThroughputResult | None,
    add: Callable[[str, str, str], None],
) -> None:
    unmeasured = ("amber", "download from the collector not measured yet")
    rates = (t.down_mbps_1080p, t.down_mbps_720p)
    _assess_rate(
        t,
        throughput,
        add,
        code="throughput",
        direction="download",
        rates=rates,
        unmeasured=unmeasured,
    )


def _assess_rate(
    t: ReadinessThresholds,
    result: ThroughputResult | None,
    add: Callable[[str, str, str], None],
    *,
    code: str,
    direction: str,
    rates: tuple[float, float],
    unmeasured: tuple[str, str],
) -> None:
    """One direction of the link to the collector against the profile's rate (1080p, 720p)."""
    need = rates[0] if t.video_profile == "1080p" else rates[1]
    if result is None:
        add(f"{code}_unmeasured", *unmeasured)
        return
    if result.error:
        add(f"{code}_failed", "red", f"{direction} measurement failed: {result.error}")
        return
    mbps = result.bits_per_second / 1e6
    if mbps >= need:
        return
    # A 1080p room that still reaches the 720p rate can meet at lower quality.
    if t.video_profile == "1080p" and mbps >= rates[1]:
        add(f"{code}_low", "amber", f"{direction} {mbps:.2f} Mbit/s: enough for 720p only")
    else:
        add(f"{code}_low", "red", f"{direction} {mbps:.2f} Mbit/s, needs {need:g}")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _percent(ratio: float) -> str:
    return f"{ratio:.1%}"
