"""Plain records the probes produce; field names match the wire contract one to one."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "Antivirus",
    "AntivirusProduct",
    "Battery",
    "Clamd",
    "ClockOffset",
    "ConferencingApp",
    "Cpu",
    "Defender",
    "DeviceCheck",
    "DhcpServer",
    "Disk",
    "DiskHealth",
    "DnsCheck",
    "DriveHealth",
    "FirewallProfile",
    "Hardware",
    "Headroom",
    "Host",
    "HttpCheck",
    "InstalledProgram",
    "IpConflict",
    "Link",
    "Listener",
    "MediaDevice",
    "MeetingRoom",
    "Memory",
    "NetInterface",
    "PingResult",
    "Power",
    "ProbeError",
    "Readiness",
    "ReadinessReason",
    "Report",
    "Security",
    "SettingsState",
    "Software",
    "SpoolStats",
    "TcpCheck",
    "Temperature",
    "ThroughputResult",
    "Traceroute",
    "TracerouteHop",
    "UpdateState",
    "Ups",
]


@dataclass(frozen=True)
class Host:
    hostname: str
    os_name: str
    os_version: str
    os_build: str
    arch: str
    vendor: str = ""
    model: str = ""
    serial: str = ""
    boot_time: float = 0.0
    uptime_seconds: float = 0.0


@dataclass(frozen=True)
class Cpu:
    model: str
    physical_cores: int
    logical_cores: int
    usage_ratio: float
    load1: float
    load5: float
    load15: float
    frequency_mhz: float = 0.0


@dataclass(frozen=True)
class Memory:
    total_bytes: int
    available_bytes: int
    used_bytes: int
    swap_total_bytes: int
    swap_used_bytes: int


@dataclass(frozen=True)
class Disk:
    mountpoint: str
    device: str
    fstype: str
    total_bytes: int
    used_bytes: int
    free_bytes: int


@dataclass(frozen=True)
class Temperature:
    sensor: str
    label: str
    celsius: float
    high_celsius: float = 0.0
    critical_celsius: float = 0.0


@dataclass(frozen=True)
class Battery:
    percent: float
    power_plugged: bool
    seconds_left: int = -1


@dataclass(frozen=True)
class NetInterface:
    name: str
    up: bool
    speed_mbps: int
    duplex: str
    mtu: int
    mac: str = ""
    addresses: tuple[str, ...] = ()
    bytes_sent: int = 0
    bytes_recv: int = 0
    errors_in: int = 0
    errors_out: int = 0
    drops_in: int = 0
    drops_out: int = 0


@dataclass(frozen=True)
class Hardware:
    host: Host
    cpu: Cpu
    memory: Memory
    disks: tuple[Disk, ...] = ()
    temperatures: tuple[Temperature, ...] = ()
    battery: Battery | None = None
    interfaces: tuple[NetInterface, ...] = ()
    temperature_state: str = "unavailable"  # "ok", "unavailable", "error"
    temperature_detail: str = ""
    temperatures_read_at: float = 0.0


@dataclass(frozen=True)
class PingResult:
    target: str
    address: str
    method: str
    sent: int
    received: int
    loss_ratio: float
    rtt_min_seconds: float = 0.0
    rtt_avg_seconds: float = 0.0
    rtt_max_seconds: float = 0.0
    jitter_seconds: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class TcpCheck:
    target: str
    ok: bool
    connect_seconds: float
    error: str = ""


@dataclass(frozen=True)
class DnsCheck:
    resolver: str
    name: str
    ok: bool
    seconds: float
    addresses: tuple[str, ...] = ()
    error: str = ""


@dataclass(frozen=True)
class HttpCheck:
    name: str
    url: str
    ok: bool
    status: int = 0
    ttfb_seconds: float = 0.0
    tls_cert_expires_in_seconds: float | None = None
    error: str = ""
    service: bool = False


@dataclass(frozen=True)
class ThroughputResult:
    bytes: int
    seconds: float
    bits_per_second: float
    error: str = ""


@dataclass(frozen=True)
class TracerouteHop:
    ttl: int
    address: str = ""
    rtt_seconds: float = 0.0


@dataclass(frozen=True)
class Traceroute:
    target: str
    hops: tuple[TracerouteHop, ...] = ()
    last_responding_ttl: int = 0
    last_responding_address: str = ""
    reached: bool = False


@dataclass(frozen=True)
class DhcpServer:
    server_id: str
    mac: str
    offered_address: str = ""
    allowed: bool = False


@dataclass(frozen=True)
class IpConflict:
    address: str
    macs: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class Link:
    gateway: str = ""
    pings: tuple[PingResult, ...] = ()
    tcp_checks: tuple[TcpCheck, ...] = ()
    dns_checks: tuple[DnsCheck, ...] = ()
    http_checks: tuple[HttpCheck, ...] = ()
    throughput: ThroughputResult | None = None
    traceroutes: tuple[Traceroute, ...] = ()
    dhcp_servers: tuple[DhcpServer, ...] = ()
    ip_conflicts: tuple[IpConflict, ...] = ()
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class AntivirusProduct:
    name: str
    source: str  # "security_center", "defender", "clamd", "process"
    state: str  # "on", "off", "snoozed", "expired", "not_running", "unavailable", "unknown"
    product_state: int = 0  # raw SecurityCenter2 productState
    owner: str = ""
    signatures: str = "unknown"


@dataclass(frozen=True)
class Defender:
    status: str  # "ok" or "unavailable"
    reason: str = ""
    am_service_enabled: bool = False
    antivirus_enabled: bool = False
    realtime_protection_enabled: bool = False
    tamper_protected: bool = False
    running_mode: str = ""
    signature_version: str = ""
    signature_updated_at: float = 0.0
    signature_age_days: int = -1
    quick_scan_age_days: int = -1
    full_scan_age_days: int = -1


@dataclass(frozen=True)
class Clamd:
    status: str  # "running" or "not_running"
    reason: str = ""
    version_reply: str = ""
    engine_version: str = ""
    database_version: int = 0
    database_date: float = 0.0
    database_built_at: float = 0.0
    self_test: str = "not_run"  # "detected", "missed", "error", "not_run"
    self_test_detail: str = ""
    self_test_at: float = 0.0


@dataclass(frozen=True)
class Antivirus:
    products: tuple[AntivirusProduct, ...] = ()
    defender: Defender | None = None
    clamd: Clamd | None = None
    realtime: str = "unknown"
    signature_updated_at: float = 0.0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class FirewallProfile:
    name: str
    state: str  # "on", "off", "unknown"
    default_inbound: str = ""


@dataclass(frozen=True)
class Listener:
    address: str
    port: int
    service: str
    process: str = ""


@dataclass(frozen=True)
class Security:
    firewall: tuple[FirewallProfile, ...] = ()
    os_updated_at: float = 0.0
    os_update_source: str = ""
    pending_security_updates: int = -1
    listeners_total: int = 0
    risky_listeners: tuple[Listener, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class MediaDevice:
    kind: str  # "camera", "microphone", "speaker", "display"
    name: str
    status: str  # "ok", "error", "degraded", "unknown"
    source: str
    device_id: str = ""
    raw_status: str = ""


@dataclass(frozen=True)
class DeviceCheck:
    kind: str
    pattern: str
    expected: int
    found: int
    faulty: int = 0


@dataclass(frozen=True)
class ConferencingApp:
    name: str
    installed: bool
    running: bool
    required: bool = False


@dataclass(frozen=True)
class ClockOffset:
    known: bool = False
    offset_seconds: float = 0.0
    uncertainty_seconds: float = 0.0


@dataclass(frozen=True)
class Headroom:
    cpu_busy_ratio: float
    memory_available_ratio: float
    disk_free_ratio: float


@dataclass(frozen=True)
class ReadinessReason:
    code: str
    severity: str  # "red", "amber", "info"
    detail: str


@dataclass(frozen=True)
class Readiness:
    state: str  # "green", "amber", "red"
    reasons: tuple[ReadinessReason, ...] = ()
    video_profile: str = "1080p"


@dataclass(frozen=True)
class MeetingRoom:
    devices: tuple[MediaDevice, ...] = ()
    device_checks: tuple[DeviceCheck, ...] = ()
    apps: tuple[ConferencingApp, ...] = ()
    clock: ClockOffset = field(default_factory=ClockOffset)
    headroom: Headroom | None = None
    paths: tuple[PingResult, ...] = ()
    throughput: ThroughputResult | None = None
    throughput_measured_at: float = 0.0
    readiness: Readiness | None = None
    notes: tuple[str, ...] = ()
    upload: ThroughputResult | None = None


@dataclass(frozen=True)
class DriveHealth:
    device: str
    health: str  # "ok", "warning", "failing", "unknown"
    source: str  # "smartctl", "storage"
    model: str = ""
    serial: str = ""
    media: str = "unknown"  # "hdd", "ssd", "unknown"
    protocol: str = ""
    raw_health: str = ""
    reallocated_sectors: int = -1
    pending_sectors: int = -1
    uncorrected_errors: int = -1
    wear_percent: int = -1
    power_on_hours: int = -1
    temperature_celsius: float | None = None
    error: str = ""


@dataclass(frozen=True)
class DiskHealth:
    drives: tuple[DriveHealth, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ups:
    name: str
    status: str  # "online", "on_battery", "low_battery", "unreachable", "unknown"
    raw_status: str = ""
    charge_percent: float = -1.0
    runtime_seconds: int = -1
    load_percent: float = -1.0
    error: str = ""


@dataclass(frozen=True)
class Power:
    supply: str  # "mains", "battery", "unknown"
    battery: Battery | None = None
    ups: tuple[Ups, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class InstalledProgram:
    name: str
    version: str = ""
    publisher: str = ""
    installed_at: float = 0.0
    origin: str = ""  # "hklm64", "hklm32", "hkcu", "dpkg", "rpm"


@dataclass(frozen=True)
class Software:
    hash: str
    count: int
    complete: bool
    source: str
    programs: tuple[InstalledProgram, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProbeError:
    probe: str
    message: str


@dataclass(frozen=True)
class SpoolStats:
    dropped_total: int = 0
    depth: int = 0
    unspooled_total: int = 0
    resets_total: int = 0
    reset_lost_total: int = 0


@dataclass(frozen=True)
class SettingsState:
    """The central settings the agent runs ("" = its file only) and the last push it refused."""

    hash: str = ""
    refused_hash: str = ""
    refused_reason: str = ""


@dataclass(frozen=True)
class UpdateState:
    """Where the agent stands with the release it was offered (agent.update)."""

    target_version: str = ""
    state: str = ""  # downloading, verified, installing, refused, failed, rolled-back
    detail: str = ""
    downloaded_bytes: int = 0
    channel: str = ""
    refused_total: int = 0


@dataclass(frozen=True)
class Report:
    """One collection cycle: the sections of the probes that ran, and their errors.

    `seq`, `spool_id` and `spool` are filled in by the spool when the report is stored.
    """

    collected_at_ms: int
    boot_id: str
    agent_version: str
    hardware: Hardware | None = None
    link: Link | None = None
    antivirus: Antivirus | None = None
    security: Security | None = None
    meeting_room: MeetingRoom | None = None
    disk_health: DiskHealth | None = None
    power: Power | None = None
    software: Software | None = None
    errors: tuple[ProbeError, ...] = ()
    seq: int = 0
    spool_id: int = 0
    spool: SpoolStats = field(default_factory=SpoolStats)
    settings: SettingsState | None = None
    # Set when updates are enabled (agent.update), on every report: the collector's view.
    update: UpdateState | None = None
