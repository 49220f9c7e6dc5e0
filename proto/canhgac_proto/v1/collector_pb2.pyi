from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MachineFacts(_message.Message):
    __slots__ = ("machine_id", "hostname", "os_name", "os_version", "agent_version")
    MACHINE_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    OS_NAME_FIELD_NUMBER: _ClassVar[int]
    OS_VERSION_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    machine_id: str
    hostname: str
    os_name: str
    os_version: str
    agent_version: str
    def __init__(self, machine_id: _Optional[str] = ..., hostname: _Optional[str] = ..., os_name: _Optional[str] = ..., os_version: _Optional[str] = ..., agent_version: _Optional[str] = ...) -> None: ...

class EnrollRequest(_message.Message):
    __slots__ = ("token", "machine", "previous_credential")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    MACHINE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    token: str
    machine: MachineFacts
    previous_credential: str
    def __init__(self, token: _Optional[str] = ..., machine: _Optional[_Union[MachineFacts, _Mapping]] = ..., previous_credential: _Optional[str] = ...) -> None: ...

class AgentSettings(_message.Message):
    __slots__ = ("report_interval_seconds",)
    REPORT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    report_interval_seconds: int
    def __init__(self, report_interval_seconds: _Optional[int] = ...) -> None: ...

class Placement(_message.Message):
    __slots__ = ("province", "district", "commune", "unit", "role")
    PROVINCE_FIELD_NUMBER: _ClassVar[int]
    DISTRICT_FIELD_NUMBER: _ClassVar[int]
    COMMUNE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    province: str
    district: str
    commune: str
    unit: str
    role: str
    def __init__(self, province: _Optional[str] = ..., district: _Optional[str] = ..., commune: _Optional[str] = ..., unit: _Optional[str] = ..., role: _Optional[str] = ...) -> None: ...

class EnrollResponse(_message.Message):
    __slots__ = ("agent_id", "credential", "settings", "placement")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    credential: str
    settings: AgentSettings
    placement: Placement
    def __init__(self, agent_id: _Optional[str] = ..., credential: _Optional[str] = ..., settings: _Optional[_Union[AgentSettings, _Mapping]] = ..., placement: _Optional[_Union[Placement, _Mapping]] = ...) -> None: ...

class SubmitRequest(_message.Message):
    __slots__ = ("reports",)
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    reports: _containers.RepeatedCompositeFieldContainer[Report]
    def __init__(self, reports: _Optional[_Iterable[_Union[Report, _Mapping]]] = ...) -> None: ...

class Rejected(_message.Message):
    __slots__ = ("seq", "reason")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    seq: int
    reason: str
    def __init__(self, seq: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class SubmitResponse(_message.Message):
    __slots__ = ("stored_seqs", "rejected", "collector_time_ms", "fresh_checks", "settings_hash", "release_version")
    STORED_SEQS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    COLLECTOR_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    FRESH_CHECKS_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_HASH_FIELD_NUMBER: _ClassVar[int]
    RELEASE_VERSION_FIELD_NUMBER: _ClassVar[int]
    stored_seqs: _containers.RepeatedScalarFieldContainer[int]
    rejected: _containers.RepeatedCompositeFieldContainer[Rejected]
    collector_time_ms: int
    fresh_checks: _containers.RepeatedScalarFieldContainer[str]
    settings_hash: str
    release_version: str
    def __init__(self, stored_seqs: _Optional[_Iterable[int]] = ..., rejected: _Optional[_Iterable[_Union[Rejected, _Mapping]]] = ..., collector_time_ms: _Optional[int] = ..., fresh_checks: _Optional[_Iterable[str]] = ..., settings_hash: _Optional[str] = ..., release_version: _Optional[str] = ...) -> None: ...

class Report(_message.Message):
    __slots__ = ("seq", "boot_id", "collected_at_ms", "agent_version", "spool_id", "hardware", "antivirus", "security", "link", "meeting_room", "disk_health", "power", "software", "errors", "spool", "settings", "update")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    BOOT_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    SPOOL_ID_FIELD_NUMBER: _ClassVar[int]
    HARDWARE_FIELD_NUMBER: _ClassVar[int]
    ANTIVIRUS_FIELD_NUMBER: _ClassVar[int]
    SECURITY_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    MEETING_ROOM_FIELD_NUMBER: _ClassVar[int]
    DISK_HEALTH_FIELD_NUMBER: _ClassVar[int]
    POWER_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    SPOOL_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    boot_id: str
    collected_at_ms: int
    agent_version: str
    spool_id: int
    hardware: Hardware
    antivirus: Antivirus
    security: Security
    link: Link
    meeting_room: MeetingRoom
    disk_health: DiskHealth
    power: Power
    software: Software
    errors: _containers.RepeatedCompositeFieldContainer[ProbeError]
    spool: SpoolStats
    settings: SettingsState
    update: UpdateState
    def __init__(self, seq: _Optional[int] = ..., boot_id: _Optional[str] = ..., collected_at_ms: _Optional[int] = ..., agent_version: _Optional[str] = ..., spool_id: _Optional[int] = ..., hardware: _Optional[_Union[Hardware, _Mapping]] = ..., antivirus: _Optional[_Union[Antivirus, _Mapping]] = ..., security: _Optional[_Union[Security, _Mapping]] = ..., link: _Optional[_Union[Link, _Mapping]] = ..., meeting_room: _Optional[_Union[MeetingRoom, _Mapping]] = ..., disk_health: _Optional[_Union[DiskHealth, _Mapping]] = ..., power: _Optional[_Union[Power, _Mapping]] = ..., software: _Optional[_Union[Software, _Mapping]] = ..., errors: _Optional[_Iterable[_Union[ProbeError, _Mapping]]] = ..., spool: _Optional[_Union[SpoolStats, _Mapping]] = ..., settings: _Optional[_Union[SettingsState, _Mapping]] = ..., update: _Optional[_Union[UpdateState, _Mapping]] = ...) -> None: ...

class SettingsState(_message.Message):
    __slots__ = ("hash", "refused_hash", "refused_reason")
    HASH_FIELD_NUMBER: _ClassVar[int]
    REFUSED_HASH_FIELD_NUMBER: _ClassVar[int]
    REFUSED_REASON_FIELD_NUMBER: _ClassVar[int]
    hash: str
    refused_hash: str
    refused_reason: str
    def __init__(self, hash: _Optional[str] = ..., refused_hash: _Optional[str] = ..., refused_reason: _Optional[str] = ...) -> None: ...

class UpdateState(_message.Message):
    __slots__ = ("target_version", "state", "detail", "downloaded_bytes", "channel", "refused_total")
    TARGET_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    DOWNLOADED_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    REFUSED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    target_version: str
    state: str
    detail: str
    downloaded_bytes: int
    channel: str
    refused_total: int
    def __init__(self, target_version: _Optional[str] = ..., state: _Optional[str] = ..., detail: _Optional[str] = ..., downloaded_bytes: _Optional[int] = ..., channel: _Optional[str] = ..., refused_total: _Optional[int] = ...) -> None: ...

class ProbeError(_message.Message):
    __slots__ = ("probe", "message")
    PROBE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    probe: str
    message: str
    def __init__(self, probe: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class SpoolStats(_message.Message):
    __slots__ = ("dropped_total", "depth", "unspooled_total", "resets_total", "reset_lost_total")
    DROPPED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    UNSPOOLED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    RESETS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    RESET_LOST_TOTAL_FIELD_NUMBER: _ClassVar[int]
    dropped_total: int
    depth: int
    unspooled_total: int
    resets_total: int
    reset_lost_total: int
    def __init__(self, dropped_total: _Optional[int] = ..., depth: _Optional[int] = ..., unspooled_total: _Optional[int] = ..., resets_total: _Optional[int] = ..., reset_lost_total: _Optional[int] = ...) -> None: ...

class Hardware(_message.Message):
    __slots__ = ("host", "cpu", "memory", "disks", "temperatures", "battery", "interfaces", "temperature_state", "temperature_detail", "temperatures_read_at")
    HOST_FIELD_NUMBER: _ClassVar[int]
    CPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    DISKS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURES_FIELD_NUMBER: _ClassVar[int]
    BATTERY_FIELD_NUMBER: _ClassVar[int]
    INTERFACES_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_STATE_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_DETAIL_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURES_READ_AT_FIELD_NUMBER: _ClassVar[int]
    host: Host
    cpu: Cpu
    memory: Memory
    disks: _containers.RepeatedCompositeFieldContainer[Disk]
    temperatures: _containers.RepeatedCompositeFieldContainer[Temperature]
    battery: Battery
    interfaces: _containers.RepeatedCompositeFieldContainer[NetInterface]
    temperature_state: str
    temperature_detail: str
    temperatures_read_at: float
    def __init__(self, host: _Optional[_Union[Host, _Mapping]] = ..., cpu: _Optional[_Union[Cpu, _Mapping]] = ..., memory: _Optional[_Union[Memory, _Mapping]] = ..., disks: _Optional[_Iterable[_Union[Disk, _Mapping]]] = ..., temperatures: _Optional[_Iterable[_Union[Temperature, _Mapping]]] = ..., battery: _Optional[_Union[Battery, _Mapping]] = ..., interfaces: _Optional[_Iterable[_Union[NetInterface, _Mapping]]] = ..., temperature_state: _Optional[str] = ..., temperature_detail: _Optional[str] = ..., temperatures_read_at: _Optional[float] = ...) -> None: ...

class Host(_message.Message):
    __slots__ = ("hostname", "os_name", "os_version", "os_build", "arch", "vendor", "model", "serial", "boot_time", "uptime_seconds")
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    OS_NAME_FIELD_NUMBER: _ClassVar[int]
    OS_VERSION_FIELD_NUMBER: _ClassVar[int]
    OS_BUILD_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    BOOT_TIME_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    hostname: str
    os_name: str
    os_version: str
    os_build: str
    arch: str
    vendor: str
    model: str
    serial: str
    boot_time: float
    uptime_seconds: float
    def __init__(self, hostname: _Optional[str] = ..., os_name: _Optional[str] = ..., os_version: _Optional[str] = ..., os_build: _Optional[str] = ..., arch: _Optional[str] = ..., vendor: _Optional[str] = ..., model: _Optional[str] = ..., serial: _Optional[str] = ..., boot_time: _Optional[float] = ..., uptime_seconds: _Optional[float] = ...) -> None: ...

class Cpu(_message.Message):
    __slots__ = ("model", "physical_cores", "logical_cores", "usage_ratio", "load1", "load5", "load15", "frequency_mhz")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PHYSICAL_CORES_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_CORES_FIELD_NUMBER: _ClassVar[int]
    USAGE_RATIO_FIELD_NUMBER: _ClassVar[int]
    LOAD1_FIELD_NUMBER: _ClassVar[int]
    LOAD5_FIELD_NUMBER: _ClassVar[int]
    LOAD15_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_MHZ_FIELD_NUMBER: _ClassVar[int]
    model: str
    physical_cores: int
    logical_cores: int
    usage_ratio: float
    load1: float
    load5: float
    load15: float
    frequency_mhz: float
    def __init__(self, model: _Optional[str] = ..., physical_cores: _Optional[int] = ..., logical_cores: _Optional[int] = ..., usage_ratio: _Optional[float] = ..., load1: _Optional[float] = ..., load5: _Optional[float] = ..., load15: _Optional[float] = ..., frequency_mhz: _Optional[float] = ...) -> None: ...

class Memory(_message.Message):
    __slots__ = ("total_bytes", "available_bytes", "used_bytes", "swap_total_bytes", "swap_used_bytes")
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_BYTES_FIELD_NUMBER: _ClassVar[int]
    USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    SWAP_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    SWAP_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    total_bytes: int
    available_bytes: int
    used_bytes: int
    swap_total_bytes: int
    swap_used_bytes: int
    def __init__(self, total_bytes: _Optional[int] = ..., available_bytes: _Optional[int] = ..., used_bytes: _Optional[int] = ..., swap_total_bytes: _Optional[int] = ..., swap_used_bytes: _Optional[int] = ...) -> None: ...

class Disk(_message.Message):
    __slots__ = ("mountpoint", "device", "fstype", "total_bytes", "used_bytes", "free_bytes")
    MOUNTPOINT_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    FSTYPE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    mountpoint: str
    device: str
    fstype: str
    total_bytes: int
    used_bytes: int
    free_bytes: int
    def __init__(self, mountpoint: _Optional[str] = ..., device: _Optional[str] = ..., fstype: _Optional[str] = ..., total_bytes: _Optional[int] = ..., used_bytes: _Optional[int] = ..., free_bytes: _Optional[int] = ...) -> None: ...

class Temperature(_message.Message):
    __slots__ = ("sensor", "label", "celsius", "high_celsius", "critical_celsius")
    SENSOR_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CELSIUS_FIELD_NUMBER: _ClassVar[int]
    HIGH_CELSIUS_FIELD_NUMBER: _ClassVar[int]
    CRITICAL_CELSIUS_FIELD_NUMBER: _ClassVar[int]
    sensor: str
    label: str
    celsius: float
    high_celsius: float
    critical_celsius: float
    def __init__(self, sensor: _Optional[str] = ..., label: _Optional[str] = ..., celsius: _Optional[float] = ..., high_celsius: _Optional[float] = ..., critical_celsius: _Optional[float] = ...) -> None: ...

class Battery(_message.Message):
    __slots__ = ("percent", "power_plugged", "seconds_left")
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    POWER_PLUGGED_FIELD_NUMBER: _ClassVar[int]
    SECONDS_LEFT_FIELD_NUMBER: _ClassVar[int]
    percent: float
    power_plugged: bool
    seconds_left: int
    def __init__(self, percent: _Optional[float] = ..., power_plugged: _Optional[bool] = ..., seconds_left: _Optional[int] = ...) -> None: ...

class NetInterface(_message.Message):
    __slots__ = ("name", "up", "speed_mbps", "duplex", "mtu", "mac", "addresses", "bytes_sent", "bytes_recv", "errors_in", "errors_out", "drops_in", "drops_out")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    SPEED_MBPS_FIELD_NUMBER: _ClassVar[int]
    DUPLEX_FIELD_NUMBER: _ClassVar[int]
    MTU_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    BYTES_SENT_FIELD_NUMBER: _ClassVar[int]
    BYTES_RECV_FIELD_NUMBER: _ClassVar[int]
    ERRORS_IN_FIELD_NUMBER: _ClassVar[int]
    ERRORS_OUT_FIELD_NUMBER: _ClassVar[int]
    DROPS_IN_FIELD_NUMBER: _ClassVar[int]
    DROPS_OUT_FIELD_NUMBER: _ClassVar[int]
    name: str
    up: bool
    speed_mbps: int
    duplex: str
    mtu: int
    mac: str
    addresses: _containers.RepeatedScalarFieldContainer[str]
    bytes_sent: int
    bytes_recv: int
    errors_in: int
    errors_out: int
    drops_in: int
    drops_out: int
    def __init__(self, name: _Optional[str] = ..., up: _Optional[bool] = ..., speed_mbps: _Optional[int] = ..., duplex: _Optional[str] = ..., mtu: _Optional[int] = ..., mac: _Optional[str] = ..., addresses: _Optional[_Iterable[str]] = ..., bytes_sent: _Optional[int] = ..., bytes_recv: _Optional[int] = ..., errors_in: _Optional[int] = ..., errors_out: _Optional[int] = ..., drops_in: _Optional[int] = ..., drops_out: _Optional[int] = ...) -> None: ...

class Link(_message.Message):
    __slots__ = ("gateway", "pings", "tcp_checks", "dns_checks", "http_checks", "throughput", "traceroutes", "dhcp_servers", "ip_conflicts", "skipped")
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    PINGS_FIELD_NUMBER: _ClassVar[int]
    TCP_CHECKS_FIELD_NUMBER: _ClassVar[int]
    DNS_CHECKS_FIELD_NUMBER: _ClassVar[int]
    HTTP_CHECKS_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_FIELD_NUMBER: _ClassVar[int]
    TRACEROUTES_FIELD_NUMBER: _ClassVar[int]
    DHCP_SERVERS_FIELD_NUMBER: _ClassVar[int]
    IP_CONFLICTS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    gateway: str
    pings: _containers.RepeatedCompositeFieldContainer[PingResult]
    tcp_checks: _containers.RepeatedCompositeFieldContainer[TcpCheck]
    dns_checks: _containers.RepeatedCompositeFieldContainer[DnsCheck]
    http_checks: _containers.RepeatedCompositeFieldContainer[HttpCheck]
    throughput: ThroughputResult
    traceroutes: _containers.RepeatedCompositeFieldContainer[Traceroute]
    dhcp_servers: _containers.RepeatedCompositeFieldContainer[DhcpServer]
    ip_conflicts: _containers.RepeatedCompositeFieldContainer[IpConflict]
    skipped: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, gateway: _Optional[str] = ..., pings: _Optional[_Iterable[_Union[PingResult, _Mapping]]] = ..., tcp_checks: _Optional[_Iterable[_Union[TcpCheck, _Mapping]]] = ..., dns_checks: _Optional[_Iterable[_Union[DnsCheck, _Mapping]]] = ..., http_checks: _Optional[_Iterable[_Union[HttpCheck, _Mapping]]] = ..., throughput: _Optional[_Union[ThroughputResult, _Mapping]] = ..., traceroutes: _Optional[_Iterable[_Union[Traceroute, _Mapping]]] = ..., dhcp_servers: _Optional[_Iterable[_Union[DhcpServer, _Mapping]]] = ..., ip_conflicts: _Optional[_Iterable[_Union[IpConflict, _Mapping]]] = ..., skipped: _Optional[_Iterable[str]] = ...) -> None: ...

class PingResult(_message.Message):
    __slots__ = ("target", "address", "method", "sent", "received", "loss_ratio", "rtt_min_seconds", "rtt_avg_seconds", "rtt_max_seconds", "jitter_seconds", "error")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    LOSS_RATIO_FIELD_NUMBER: _ClassVar[int]
    RTT_MIN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RTT_AVG_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RTT_MAX_SECONDS_FIELD_NUMBER: _ClassVar[int]
    JITTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    target: str
    address: str
    method: str
    sent: int
    received: int
    loss_ratio: float
    rtt_min_seconds: float
    rtt_avg_seconds: float
    rtt_max_seconds: float
    jitter_seconds: float
    error: str
    def __init__(self, target: _Optional[str] = ..., address: _Optional[str] = ..., method: _Optional[str] = ..., sent: _Optional[int] = ..., received: _Optional[int] = ..., loss_ratio: _Optional[float] = ..., rtt_min_seconds: _Optional[float] = ..., rtt_avg_seconds: _Optional[float] = ..., rtt_max_seconds: _Optional[float] = ..., jitter_seconds: _Optional[float] = ..., error: _Optional[str] = ...) -> None: ...

class TcpCheck(_message.Message):
    __slots__ = ("target", "ok", "connect_seconds", "error")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    CONNECT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    target: str
    ok: bool
    connect_seconds: float
    error: str
    def __init__(self, target: _Optional[str] = ..., ok: _Optional[bool] = ..., connect_seconds: _Optional[float] = ..., error: _Optional[str] = ...) -> None: ...

class DnsCheck(_message.Message):
    __slots__ = ("resolver", "name", "ok", "seconds", "addresses", "error")
    RESOLVER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    resolver: str
    name: str
    ok: bool
    seconds: float
    addresses: _containers.RepeatedScalarFieldContainer[str]
    error: str
    def __init__(self, resolver: _Optional[str] = ..., name: _Optional[str] = ..., ok: _Optional[bool] = ..., seconds: _Optional[float] = ..., addresses: _Optional[_Iterable[str]] = ..., error: _Optional[str] = ...) -> None: ...

class HttpCheck(_message.Message):
    __slots__ = ("name", "url", "ok", "status", "ttfb_seconds", "tls_cert_expires_in_seconds", "error", "service")
    NAME_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TTFB_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TLS_CERT_EXPIRES_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    name: str
    url: str
    ok: bool
    status: int
    ttfb_seconds: float
    tls_cert_expires_in_seconds: float
    error: str
    service: bool
    def __init__(self, name: _Optional[str] = ..., url: _Optional[str] = ..., ok: _Optional[bool] = ..., status: _Optional[int] = ..., ttfb_seconds: _Optional[float] = ..., tls_cert_expires_in_seconds: _Optional[float] = ..., error: _Optional[str] = ..., service: _Optional[bool] = ...) -> None: ...

class ThroughputResult(_message.Message):
    __slots__ = ("bytes", "seconds", "bits_per_second", "error")
    BYTES_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    BITS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    bytes: int
    seconds: float
    bits_per_second: float
    error: str
    def __init__(self, bytes: _Optional[int] = ..., seconds: _Optional[float] = ..., bits_per_second: _Optional[float] = ..., error: _Optional[str] = ...) -> None: ...

class Traceroute(_message.Message):
    __slots__ = ("target", "hops", "last_responding_ttl", "last_responding_address", "reached")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    HOPS_FIELD_NUMBER: _ClassVar[int]
    LAST_RESPONDING_TTL_FIELD_NUMBER: _ClassVar[int]
    LAST_RESPONDING_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    REACHED_FIELD_NUMBER: _ClassVar[int]
    target: str
    hops: _containers.RepeatedCompositeFieldContainer[TracerouteHop]
    last_responding_ttl: int
    last_responding_address: str
    reached: bool
    def __init__(self, target: _Optional[str] = ..., hops: _Optional[_Iterable[_Union[TracerouteHop, _Mapping]]] = ..., last_responding_ttl: _Optional[int] = ..., last_responding_address: _Optional[str] = ..., reached: _Optional[bool] = ...) -> None: ...

class TracerouteHop(_message.Message):
    __slots__ = ("ttl", "address", "rtt_seconds")
    TTL_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    RTT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ttl: int
    address: str
    rtt_seconds: float
    def __init__(self, ttl: _Optional[int] = ..., address: _Optional[str] = ..., rtt_seconds: _Optional[float] = ...) -> None: ...

class DhcpServer(_message.Message):
    __slots__ = ("server_id", "mac", "offered_address", "allowed")
    SERVER_ID_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    OFFERED_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    server_id: str
    mac: str
    offered_address: str
    allowed: bool
    def __init__(self, server_id: _Optional[str] = ..., mac: _Optional[str] = ..., offered_address: _Optional[str] = ..., allowed: _Optional[bool] = ...) -> None: ...

class IpConflict(_message.Message):
    __slots__ = ("address", "macs", "source")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    MACS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    address: str
    macs: _containers.RepeatedScalarFieldContainer[str]
    source: str
    def __init__(self, address: _Optional[str] = ..., macs: _Optional[_Iterable[str]] = ..., source: _Optional[str] = ...) -> None: ...

class Antivirus(_message.Message):
    __slots__ = ("products", "defender", "clamd", "realtime", "signature_updated_at", "notes")
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    DEFENDER_FIELD_NUMBER: _ClassVar[int]
    CLAMD_FIELD_NUMBER: _ClassVar[int]
    REALTIME_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedCompositeFieldContainer[AntivirusProduct]
    defender: Defender
    clamd: Clamd
    realtime: str
    signature_updated_at: float
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, products: _Optional[_Iterable[_Union[AntivirusProduct, _Mapping]]] = ..., defender: _Optional[_Union[Defender, _Mapping]] = ..., clamd: _Optional[_Union[Clamd, _Mapping]] = ..., realtime: _Optional[str] = ..., signature_updated_at: _Optional[float] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...

class AntivirusProduct(_message.Message):
    __slots__ = ("name", "source", "state", "product_state", "owner", "signatures")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_STATE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    name: str
    source: str
    state: str
    product_state: int
    owner: str
    signatures: str
    def __init__(self, name: _Optional[str] = ..., source: _Optional[str] = ..., state: _Optional[str] = ..., product_state: _Optional[int] = ..., owner: _Optional[str] = ..., signatures: _Optional[str] = ...) -> None: ...

class Defender(_message.Message):
    __slots__ = ("status", "reason", "am_service_enabled", "antivirus_enabled", "realtime_protection_enabled", "tamper_protected", "running_mode", "signature_version", "signature_updated_at", "signature_age_days", "quick_scan_age_days", "full_scan_age_days")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    AM_SERVICE_ENABLED_FIELD_NUMBER: _ClassVar[int]
    ANTIVIRUS_ENABLED_FIELD_NUMBER: _ClassVar[int]
    REALTIME_PROTECTION_ENABLED_FIELD_NUMBER: _ClassVar[int]
    TAMPER_PROTECTED_FIELD_NUMBER: _ClassVar[int]
    RUNNING_MODE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_VERSION_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_AGE_DAYS_FIELD_NUMBER: _ClassVar[int]
    QUICK_SCAN_AGE_DAYS_FIELD_NUMBER: _ClassVar[int]
    FULL_SCAN_AGE_DAYS_FIELD_NUMBER: _ClassVar[int]
    status: str
    reason: str
    am_service_enabled: bool
    antivirus_enabled: bool
    realtime_protection_enabled: bool
    tamper_protected: bool
    running_mode: str
    signature_version: str
    signature_updated_at: float
    signature_age_days: int
    quick_scan_age_days: int
    full_scan_age_days: int
    def __init__(self, status: _Optional[str] = ..., reason: _Optional[str] = ..., am_service_enabled: _Optional[bool] = ..., antivirus_enabled: _Optional[bool] = ..., realtime_protection_enabled: _Optional[bool] = ..., tamper_protected: _Optional[bool] = ..., running_mode: _Optional[str] = ..., signature_version: _Optional[str] = ..., signature_updated_at: _Optional[float] = ..., signature_age_days: _Optional[int] = ..., quick_scan_age_days: _Optional[int] = ..., full_scan_age_days: _Optional[int] = ...) -> None: ...

class Clamd(_message.Message):
    __slots__ = ("status", "reason", "version_reply", "engine_version", "database_version", "database_date", "database_built_at", "self_test", "self_test_detail", "self_test_at")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    VERSION_REPLY_FIELD_NUMBER: _ClassVar[int]
    ENGINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    DATABASE_VERSION_FIELD_NUMBER: _ClassVar[int]
    DATABASE_DATE_FIELD_NUMBER: _ClassVar[int]
    DATABASE_BUILT_AT_FIELD_NUMBER: _ClassVar[int]
    SELF_TEST_FIELD_NUMBER: _ClassVar[int]
    SELF_TEST_DETAIL_FIELD_NUMBER: _ClassVar[int]
    SELF_TEST_AT_FIELD_NUMBER: _ClassVar[int]
    status: str
    reason: str
    version_reply: str
    engine_version: str
    database_version: int
    database_date: float
    database_built_at: float
    self_test: str
    self_test_detail: str
    self_test_at: float
    def __init__(self, status: _Optional[str] = ..., reason: _Optional[str] = ..., version_reply: _Optional[str] = ..., engine_version: _Optional[str] = ..., database_version: _Optional[int] = ..., database_date: _Optional[float] = ..., database_built_at: _Optional[float] = ..., self_test: _Optional[str] = ..., self_test_detail: _Optional[str] = ..., self_test_at: _Optional[float] = ...) -> None: ...

class Security(_message.Message):
    __slots__ = ("firewall", "os_updated_at", "os_update_source", "pending_security_updates", "listeners_total", "risky_listeners", "notes")
    FIREWALL_FIELD_NUMBER: _ClassVar[int]
    OS_UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    OS_UPDATE_SOURCE_FIELD_NUMBER: _ClassVar[int]
    PENDING_SECURITY_UPDATES_FIELD_NUMBER: _ClassVar[int]
    LISTENERS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    RISKY_LISTENERS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    firewall: _containers.RepeatedCompositeFieldContainer[FirewallProfile]
    os_updated_at: float
    os_update_source: str
    pending_security_updates: int
    listeners_total: int
    risky_listeners: _containers.RepeatedCompositeFieldContainer[Listener]
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, firewall: _Optional[_Iterable[_Union[FirewallProfile, _Mapping]]] = ..., os_updated_at: _Optional[float] = ..., os_update_source: _Optional[str] = ..., pending_security_updates: _Optional[int] = ..., listeners_total: _Optional[int] = ..., risky_listeners: _Optional[_Iterable[_Union[Listener, _Mapping]]] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...

class FirewallProfile(_message.Message):
    __slots__ = ("name", "state", "default_inbound")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_INBOUND_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: str
    default_inbound: str
    def __init__(self, name: _Optional[str] = ..., state: _Optional[str] = ..., default_inbound: _Optional[str] = ...) -> None: ...

class Listener(_message.Message):
    __slots__ = ("address", "port", "service", "process")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    PROCESS_FIELD_NUMBER: _ClassVar[int]
    address: str
    port: int
    service: str
    process: str
    def __init__(self, address: _Optional[str] = ..., port: _Optional[int] = ..., service: _Optional[str] = ..., process: _Optional[str] = ...) -> None: ...

class DiskHealth(_message.Message):
    __slots__ = ("drives", "notes")
    DRIVES_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    drives: _containers.RepeatedCompositeFieldContainer[DriveHealth]
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, drives: _Optional[_Iterable[_Union[DriveHealth, _Mapping]]] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...

class DriveHealth(_message.Message):
    __slots__ = ("device", "model", "serial", "media", "protocol", "health", "raw_health", "source", "reallocated_sectors", "pending_sectors", "uncorrected_errors", "wear_percent", "power_on_hours", "temperature_celsius", "error")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    RAW_HEALTH_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    REALLOCATED_SECTORS_FIELD_NUMBER: _ClassVar[int]
    PENDING_SECTORS_FIELD_NUMBER: _ClassVar[int]
    UNCORRECTED_ERRORS_FIELD_NUMBER: _ClassVar[int]
    WEAR_PERCENT_FIELD_NUMBER: _ClassVar[int]
    POWER_ON_HOURS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_CELSIUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    device: str
    model: str
    serial: str
    media: str
    protocol: str
    health: str
    raw_health: str
    source: str
    reallocated_sectors: int
    pending_sectors: int
    uncorrected_errors: int
    wear_percent: int
    power_on_hours: int
    temperature_celsius: float
    error: str
    def __init__(self, device: _Optional[str] = ..., model: _Optional[str] = ..., serial: _Optional[str] = ..., media: _Optional[str] = ..., protocol: _Optional[str] = ..., health: _Optional[str] = ..., raw_health: _Optional[str] = ..., source: _Optional[str] = ..., reallocated_sectors: _Optional[int] = ..., pending_sectors: _Optional[int] = ..., uncorrected_errors: _Optional[int] = ..., wear_percent: _Optional[int] = ..., power_on_hours: _Optional[int] = ..., temperature_celsius: _Optional[float] = ..., error: _Optional[str] = ...) -> None: ...

class Power(_message.Message):
    __slots__ = ("supply", "battery", "ups", "notes")
    SUPPLY_FIELD_NUMBER: _ClassVar[int]
    BATTERY_FIELD_NUMBER: _ClassVar[int]
    UPS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    supply: str
    battery: Battery
    ups: _containers.RepeatedCompositeFieldContainer[Ups]
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, supply: _Optional[str] = ..., battery: _Optional[_Union[Battery, _Mapping]] = ..., ups: _Optional[_Iterable[_Union[Ups, _Mapping]]] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...

class Ups(_message.Message):
    __slots__ = ("name", "status", "raw_status", "charge_percent", "runtime_seconds", "load_percent", "error")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RAW_STATUS_FIELD_NUMBER: _ClassVar[int]
    CHARGE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LOAD_PERCENT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    name: str
    status: str
    raw_status: str
    charge_percent: float
    runtime_seconds: int
    load_percent: float
    error: str
    def __init__(self, name: _Optional[str] = ..., status: _Optional[str] = ..., raw_status: _Optional[str] = ..., charge_percent: _Optional[float] = ..., runtime_seconds: _Optional[int] = ..., load_percent: _Optional[float] = ..., error: _Optional[str] = ...) -> None: ...

class Software(_message.Message):
    __slots__ = ("hash", "count", "complete", "programs", "source", "notes")
    HASH_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    PROGRAMS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    hash: str
    count: int
    complete: bool
    programs: _containers.RepeatedCompositeFieldContainer[InstalledProgram]
    source: str
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, hash: _Optional[str] = ..., count: _Optional[int] = ..., complete: _Optional[bool] = ..., programs: _Optional[_Iterable[_Union[InstalledProgram, _Mapping]]] = ..., source: _Optional[str] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...

class InstalledProgram(_message.Message):
    __slots__ = ("name", "version", "publisher", "installed_at", "origin")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    INSTALLED_AT_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    publisher: str
    installed_at: float
    origin: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., publisher: _Optional[str] = ..., installed_at: _Optional[float] = ..., origin: _Optional[str] = ...) -> None: ...

class MeetingRoom(_message.Message):
    __slots__ = ("devices", "device_checks", "apps", "clock", "headroom", "paths", "throughput", "throughput_measured_at", "readiness", "notes", "upload")
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    DEVICE_CHECKS_FIELD_NUMBER: _ClassVar[int]
    APPS_FIELD_NUMBER: _ClassVar[int]
    CLOCK_FIELD_NUMBER: _ClassVar[int]
    HEADROOM_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_MEASURED_AT_FIELD_NUMBER: _ClassVar[int]
    READINESS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_FIELD_NUMBER: _ClassVar[int]
    devices: _containers.RepeatedCompositeFieldContainer[MediaDevice]
    device_checks: _containers.RepeatedCompositeFieldContainer[DeviceCheck]
    apps: _containers.RepeatedCompositeFieldContainer[ConferencingApp]
    clock: ClockOffset
    headroom: Headroom
    paths: _containers.RepeatedCompositeFieldContainer[PingResult]
    throughput: ThroughputResult
    throughput_measured_at: float
    readiness: Readiness
    notes: _containers.RepeatedScalarFieldContainer[str]
    upload: ThroughputResult
    def __init__(self, devices: _Optional[_Iterable[_Union[MediaDevice, _Mapping]]] = ..., device_checks: _Optional[_Iterable[_Union[DeviceCheck, _Mapping]]] = ..., apps: _Optional[_Iterable[_Union[ConferencingApp, _Mapping]]] = ..., clock: _Optional[_Union[ClockOffset, _Mapping]] = ..., headroom: _Optional[_Union[Headroom, _Mapping]] = ..., paths: _Optional[_Iterable[_Union[PingResult, _Mapping]]] = ..., throughput: _Optional[_Union[ThroughputResult, _Mapping]] = ..., throughput_measured_at: _Optional[float] = ..., readiness: _Optional[_Union[Readiness, _Mapping]] = ..., notes: _Optional[_Iterable[str]] = ..., upload: _Optional[_Union[ThroughputResult, _Mapping]] = ...) -> None: ...

class MediaDevice(_message.Message):
    __slots__ = ("kind", "name", "status", "source", "device_id", "raw_status")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    RAW_STATUS_FIELD_NUMBER: _ClassVar[int]
    kind: str
    name: str
    status: str
    source: str
    device_id: str
    raw_status: str
    def __init__(self, kind: _Optional[str] = ..., name: _Optional[str] = ..., status: _Optional[str] = ..., source: _Optional[str] = ..., device_id: _Optional[str] = ..., raw_status: _Optional[str] = ...) -> None: ...

class DeviceCheck(_message.Message):
    __slots__ = ("kind", "pattern", "expected", "found", "faulty")
    KIND_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    FAULTY_FIELD_NUMBER: _ClassVar[int]
    kind: str
    pattern: str
    expected: int
    found: int
    faulty: int
    def __init__(self, kind: _Optional[str] = ..., pattern: _Optional[str] = ..., expected: _Optional[int] = ..., found: _Optional[int] = ..., faulty: _Optional[int] = ...) -> None: ...

class ConferencingApp(_message.Message):
    __slots__ = ("name", "installed", "running", "required")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INSTALLED_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    name: str
    installed: bool
    running: bool
    required: bool
    def __init__(self, name: _Optional[str] = ..., installed: _Optional[bool] = ..., running: _Optional[bool] = ..., required: _Optional[bool] = ...) -> None: ...

class ClockOffset(_message.Message):
    __slots__ = ("known", "offset_seconds", "uncertainty_seconds")
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    OFFSET_SECONDS_FIELD_NUMBER: _ClassVar[int]
    UNCERTAINTY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    known: bool
    offset_seconds: float
    uncertainty_seconds: float
    def __init__(self, known: _Optional[bool] = ..., offset_seconds: _Optional[float] = ..., uncertainty_seconds: _Optional[float] = ...) -> None: ...

class Headroom(_message.Message):
    __slots__ = ("cpu_busy_ratio", "memory_available_ratio", "disk_free_ratio")
    CPU_BUSY_RATIO_FIELD_NUMBER: _ClassVar[int]
    MEMORY_AVAILABLE_RATIO_FIELD_NUMBER: _ClassVar[int]
    DISK_FREE_RATIO_FIELD_NUMBER: _ClassVar[int]
    cpu_busy_ratio: float
    memory_available_ratio: float
    disk_free_ratio: float
    def __init__(self, cpu_busy_ratio: _Optional[float] = ..., memory_available_ratio: _Optional[float] = ..., disk_free_ratio: _Optional[float] = ...) -> None: ...

class Readiness(_message.Message):
    __slots__ = ("state", "reasons", "video_profile")
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    VIDEO_PROFILE_FIELD_NUMBER: _ClassVar[int]
    state: str
    reasons: _containers.RepeatedCompositeFieldContainer[ReadinessReason]
    video_profile: str
    def __init__(self, state: _Optional[str] = ..., reasons: _Optional[_Iterable[_Union[ReadinessReason, _Mapping]]] = ..., video_profile: _Optional[str] = ...) -> None: ...

class ReadinessReason(_message.Message):
    __slots__ = ("code", "severity", "detail")
    CODE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    code: str
    severity: str
    detail: str
    def __init__(self, code: _Optional[str] = ..., severity: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class ThroughputRequest(_message.Message):
    __slots__ = ("bytes", "chunk_bytes")
    BYTES_FIELD_NUMBER: _ClassVar[int]
    CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    bytes: int
    chunk_bytes: int
    def __init__(self, bytes: _Optional[int] = ..., chunk_bytes: _Optional[int] = ...) -> None: ...

class ThroughputChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class UploadResult(_message.Message):
    __slots__ = ("bytes",)
    BYTES_FIELD_NUMBER: _ClassVar[int]
    bytes: int
    def __init__(self, bytes: _Optional[int] = ...) -> None: ...

class GetSettingsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSettingsResponse(_message.Message):
    __slots__ = ("hash", "document")
    HASH_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    hash: str
    document: str
    def __init__(self, hash: _Optional[str] = ..., document: _Optional[str] = ...) -> None: ...

class GetReleaseRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: str
    def __init__(self, version: _Optional[str] = ...) -> None: ...

class GetReleaseResponse(_message.Message):
    __slots__ = ("manifest", "signature")
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    manifest: bytes
    signature: bytes
    def __init__(self, manifest: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class DownloadRequest(_message.Message):
    __slots__ = ("sha256", "offset", "length")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    offset: int
    length: int
    def __init__(self, sha256: _Optional[str] = ..., offset: _Optional[int] = ..., length: _Optional[int] = ...) -> None: ...

class DownloadChunk(_message.Message):
    __slots__ = ("data", "offset", "size")
    DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    offset: int
    size: int
    def __init__(self, data: _Optional[bytes] = ..., offset: _Optional[int] = ..., size: _Optional[int] = ...) -> None: ...
