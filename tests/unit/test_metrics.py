"""/metrics emits exactly what collector.metrics declares, with the declared labels."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from agent.model import (
    Antivirus,
    AntivirusProduct,
    Battery,
    Clamd,
    Cpu,
    DhcpServer,
    Disk,
    DiskHealth,
    DnsCheck,
    DriveHealth,
    FirewallProfile,
    Hardware,
    Host,
    HttpCheck,
    IpConflict,
    Link,
    Listener,
    MeetingRoom,
    Memory,
    NetInterface,
    PingResult,
    Power,
    Readiness,
    ReadinessReason,
    Report,
    Security,
    SettingsState,
    Software,
    TcpCheck,
    Temperature,
    ThroughputResult,
    UpdateState,
    Ups,
)
from agent.transport.encode import to_pb
from collector.decode import decode_report
from collector.errors import CollectorError
from collector.metrics import SPECS, Exposition
from collector.metrics.core import FLEET
from collector.metrics.text import numbers
from collector.metrics.worker import FleetRenderer
from collector.model import Alert, Labels, Placement
from collector.sites import Sites
from collector.store import AlertWrite, MachineFacts, Store

HARDWARE = Hardware(
    host=Host("ubnd-anlac-01", "Windows 10 Pro", "10.0.19045", "19045", "AMD64", boot_time=1.7e9),
    cpu=Cpu("Intel(R) Core(TM) i3-10100", 4, 8, 0.25, 0.5, 0.4, 0.3),
    memory=Memory(8 << 30, 4 << 30, 4 << 30, 2 << 30, 1 << 30),
    disks=(Disk("C:\\", "C:\\", "NTFS", 500 << 30, 400 << 30, 100 << 30),),
    temperatures=(Temperature("coretemp", "Core 0", 55.0), Temperature("coretemp", "Core 1", 61.0)),
    interfaces=(NetInterface("Ethernet", True, 1000, "full", 1500, errors_in=3, errors_out=1),),
)
DISK_HEALTH = DiskHealth(
    drives=(
        DriveHealth(
            "/dev/sda", "warning", "smartctl", media="hdd", reallocated_sectors=8, pending_sectors=2
        ),
        DriveHealth("/dev/nvme0", "ok", "smartctl", media="ssd", wear_percent=12),
    )
)
POWER = Power(
    supply="battery",
    battery=Battery(80.0, False),
    ups=(Ups("ups@localhost", "on_battery", "OB DISCHRG", 64.0, 1380),),
)
SOFTWARE = Software("ab" * 32, 2, False, "windows_registry")

SIGNATURES_AT = 1.75e9
ANTIVIRUS = Antivirus(
    products=(
        AntivirusProduct("ClamAV", "clamd", "on", signatures="up_to_date"),
        AntivirusProduct("BKAV Pro", "process", "not_running"),
        AntivirusProduct("Ghost AV", "security_center", "unknown"),
    ),
    clamd=Clamd("running", self_test="detected", self_test_at=SIGNATURES_AT),
    realtime="off",
    signature_updated_at=SIGNATURES_AT,
)
UPDATED_AT = 1.74e9
SECURITY = Security(
    firewall=(FirewallProfile("Domain", "on"), FirewallProfile("Public", "off")),
    os_updated_at=UPDATED_AT,
    os_update_source="windows_update_history",
    listeners_total=12,
    risky_listeners=(Listener("0.0.0.0", 3389, "rdp"), Listener("::", 445, "smb")),
)


LINK = Link(
    gateway="192.168.1.1",
    pings=(
        PingResult(
            "192.168.1.1", "192.168.1.1", "icmp-raw", 10, 9, 0.1, 0.001, 0.002, 0.004, 0.0005
        ),
        PingResult("tinh.example", "10.9.9.9", "icmp-raw", 10, 0, 1.0),
    ),
    tcp_checks=(TcpCheck("portal:443", True, 0.03),),
    dns_checks=(DnsCheck("10.20.0.53", "portal", True, 0.02, ("10.1.1.1",)),),
    http_checks=(
        HttpCheck("portal", "https://portal/", True, 200, 0.2, 86400.0 * 30),
        HttpCheck("iGate", "https://igate/", False, 503, 0.4, error="HTTP 503", service=True),
    ),
    throughput=ThroughputResult(1 << 20, 4.0, 2097152.0),
    dhcp_servers=(DhcpServer("192.168.1.1", "aa:bb:cc:dd:ee:01", allowed=True),),
    ip_conflicts=(IpConflict("192.168.1.7", ("aa:00:00:00:00:01", "aa:00:00:00:00:02"), "arp"),),
)


MEETING_ROOM = MeetingRoom(
    readiness=Readiness(
        "amber",
        (
            ReadinessReason("rtt_high", "amber", "meet: 120 ms"),
            ReadinessReason("upload_unmeasured", "info", "upload not measured"),
        ),
    )
)


def _store_with_agent(tmp_path: Path, collected_at: float) -> tuple[Store, str]:
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    _, token = store.create_token(
        Placement("Cao Bằng", "Hạ Lang", "An Lạc", "", "workstation"), 60, 0
    )
    e = store.enroll(token, MachineFacts("m", "ubnd-anlac-01", "Windows", "10", "0.1.0"), 1)
    report = Report(
        int(collected_at * 1000),
        "b",
        "0.1.0",
        hardware=HARDWARE,
        antivirus=ANTIVIRUS,
        security=SECURITY,
        link=LINK,
        meeting_room=MEETING_ROOM,
        disk_health=DISK_HEALTH,
        power=POWER,
        software=SOFTWARE,
        update=UpdateState("0.2.0", "downloading", "", 4096, "stable", 1),
        seq=1,
        settings=SettingsState("5f0c1e2d3a4b5c6d", "0123456789abcdef", "probes.link.count: ..."),
    )
    store.ingest(e.agent.agent_id, [decode_report(to_pb(report), collected_at)], collected_at)
    return store, e.agent.agent_id


def _families(
    store: Store, stale_after: float, now: float | None = None
) -> dict[str, list[tuple[dict[str, str], float]]]:
    clock = time.time if now is None else (lambda: now)
    text = Exposition(store, stale_after, clock=clock).render().decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_emitted_equals_declared(tmp_path: Path) -> None:
    store, agent_id = _store_with_agent(tmp_path, time.time())
    # A second agent with the first one's machine id and no proof: a possible clone.
    _, token = store.create_token(Placement("Cao Bằng", "Hạ Lang", "An Lạc", "", "server"), 60, 0)
    clone = store.enroll(token, MachineFacts("m", "ubnd-anlac-02", "Windows", "10", "0.1.0"), 1)
    emitted = _families(store, stale_after=60)
    declared = {s.name: s for s in SPECS}
    histogram_parts = ("_bucket", "_count", "_sum")
    for name, samples in emitted.items():
        if name.endswith("_created"):  # prometheus_client's creation timestamps
            continue
        base = next((name.removesuffix(p) for p in histogram_parts if name.endswith(p)), name)
        spec = declared.get(name) or declared.get(base)
        assert spec is not None, f"{name} is emitted but not declared"
        for labels, _ in samples:
            assert set(labels) - {"le"} == set(spec.labels), name
    per_agent = {s.name for s in SPECS if "agent_id" in s.labels}
    assert per_agent <= set(emitted), f"declared but not emitted: {per_agent - set(emitted)}"
    assert [
        (labels["agent_id"], labels["clone_of"], value)
        for labels, value in emitted["canhgac_agent_clone_suspected"]
    ] == [(clone.agent.agent_id, agent_id, 1.0)]


def test_values_and_rollups(tmp_path: Path) -> None:
    store, agent_id = _store_with_agent(tmp_path, time.time())
    m = _families(store, stale_after=60)
    assert m["canhgac_temperature_celsius"] == [
        (
            {
                "agent_id": agent_id,
                "district": "Hạ Lang",
                "commune": "An Lạc",
                "unit": "",
                "host": "ubnd-anlac-01",
                "role": "workstation",
            },
            61.0,
        )
    ]
    assert m["canhgac_battery_ratio"][0][1] == 0.8
    assert [v for _, v in m["canhgac_power_on_battery"]] == [1.0]
    assert {(lb["ups"], lb["state"]) for lb, v in m["canhgac_ups_status"] if v == 1.0} == {
        ("ups@localhost", "on_battery")
    }
    assert [v for _, v in m["canhgac_ups_runtime_seconds"]] == [1380.0]
    assert [v for _, v in m["canhgac_ups_charge_ratio"]] == [0.64]
    health = {(lb["device"], lb["state"]) for lb, v in m["canhgac_drive_health"] if v == 1.0}
    assert health == {("/dev/sda", "warning"), ("/dev/nvme0", "ok")}
    assert [(lb["device"], v) for lb, v in m["canhgac_drive_wear_ratio"]] == [("/dev/nvme0", 0.12)]
    # Unknown counts (-1) are not exposed: only the drive that reported one.
    assert [(lb["device"], v) for lb, v in m["canhgac_drive_reallocated_sectors"]] == [
        ("/dev/sda", 8.0)
    ]
    assert [lb["device"] for lb, _ in m["canhgac_drive_pending_sectors"]] == ["/dev/sda"]
    assert [v for _, v in m["canhgac_software_programs"]] == [2.0]
    assert m["canhgac_disk_free_bytes"][0][0]["mountpoint"] == "C:\\"
    assert [v for _, v in m["canhgac_interface_errors_total"]] == [4.0]  # 3 in + 1 out
    assert [v for _, v in m["canhgac_swap_used_ratio"]] == [0.5]


def test_a_stale_agent_only_says_it_is_down(tmp_path: Path) -> None:
    store, _ = _store_with_agent(tmp_path, time.time() - 3600)
    m = _families(store, stale_after=60)
    assert [v for _, v in m["canhgac_agent_up"]] == [0.0]
    assert "canhgac_agent_last_report_timestamp_seconds" in m
    assert "canhgac_memory_total_bytes" not in m
    assert "canhgac_probe_success" not in m


def _scrape_at(store: Store, now: float) -> dict[str, list[tuple[dict[str, str], float]]]:
    return _families(store, stale_after=1e12, now=now)


def test_antivirus_and_security_series(tmp_path: Path) -> None:
    store, _ = _store_with_agent(tmp_path, time.time())
    m = _scrape_at(store, SIGNATURES_AT + 3600)
    enabled = {labels["product"]: v for labels, v in m["canhgac_antivirus_enabled"]}
    # "unknown" is not "off": the ghost product has no series at all.
    assert enabled == {"ClamAV": 1.0, "BKAV Pro": 0.0}
    assert [v for _, v in m["canhgac_antivirus_realtime_enabled"]] == [0.0]
    assert [v for _, v in m["canhgac_antivirus_self_test_ok"]] == [1.0]
    firewall = {labels["profile"]: v for labels, v in m["canhgac_firewall_enabled"]}
    assert firewall == {"Domain": 1.0, "Public": 0.0}
    assert [v for _, v in m["canhgac_risky_listeners"]] == [2.0]


def test_ages_are_computed_at_scrape_time(tmp_path: Path) -> None:
    store, _ = _store_with_agent(tmp_path, time.time())
    first = _scrape_at(store, SIGNATURES_AT + 3600)
    later = _scrape_at(store, SIGNATURES_AT + 86400)
    assert [v for _, v in first["canhgac_antivirus_signature_age_seconds"]] == [3600.0]
    assert [v for _, v in later["canhgac_antivirus_signature_age_seconds"]] == [86400.0]
    assert [v for _, v in later["canhgac_os_update_age_seconds"]] == [
        SIGNATURES_AT + 86400 - UPDATED_AT
    ]


def test_alert_firing_and_pass_ratio(tmp_path: Path) -> None:
    store, agent_id = _store_with_agent(tmp_path, time.time())
    disk = Labels("hardware.disk-free", agent_id, "medium", "Hạ Lang", "An Lạc")
    other = Labels("hardware.disk-free", "x", "medium", "Hạ Lang", "An Lạc")
    store.alerts.apply_alerts(
        AlertWrite(
            upserts={(disk.rule_id, disk.subject): Alert(disk, "firing", 1.0, 1.0, fired_at=1.0)},
            results=[(disk, False, 1.0), (other, True, 1.0)],
        )
    )
    fams = _families(store, stale_after=60)
    place = {"district": "Hạ Lang", "commune": "An Lạc", "rule": "hardware.disk-free"}
    assert fams["canhgac_alert_firing"] == [({**place, "severity": "medium"}, 1.0)]
    assert fams["canhgac_compliance_pass_ratio"] == [(place, 0.5)]


def test_meeting_room_series(tmp_path: Path) -> None:
    store, _ = _store_with_agent(tmp_path, time.time())
    m = _families(store, stale_after=60)
    assert [v for _, v in m["canhgac_meeting_room_ready"]] == [1.0]
    checks = {labels["check"]: v for labels, v in m["canhgac_meeting_room_check_ok"]}
    assert checks == {
        "devices": 1.0,
        "path": 0.0,
        "throughput": 1.0,
        "apps": 1.0,
        "clock": 1.0,
        "headroom": 1.0,
    }
    # Informational reasons do not count.
    assert [v for _, v in m["canhgac_meeting_room_reasons"]] == [1.0]


# ---- lines kept between scrapes ---------------------------------------------------------

PLACE = Placement("Cao Bằng", "Hạ Lang", "An Lạc", "", "workstation")


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _parse(body: bytes) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The per-agent samples, in a comparable order."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            if "agent_id" in s.labels:
                out.setdefault(s.name, []).append((s.labels, s.value))
    return {name: sorted(samples, key=repr) for name, samples in out.items()}


def _enroll(store: Store, machine_id: str) -> str:
    _, token = store.create_token(PLACE, 60, 0)
    facts = MachineFacts(machine_id, machine_id, "Windows", "10", "0.1")
    return store.enroll(token, facts, 1).agent.agent_id


def _report(store: Store, agent_id: str, seq: int, at: float, **sections: Any) -> None:
    report = Report(int(at * 1000), "b", "0.1.0", seq=seq, **sections)
    store.ingest(agent_id, [decode_report(to_pb(report), at)], at)


def _cpu(m: dict[str, list[tuple[dict[str, str], float]]]) -> list[float]:
    return [v for _, v in m["canhgac_cpu_usage_ratio"]]


def test_kept_lines_follow_new_reports_and_match_a_fresh_render(tmp_path: Path) -> None:
    now = time.time()
    store, agent_id = _store_with_agent(tmp_path, now)
    exposition = Exposition(store, 60, clock=_Clock(now))
    assert _cpu(_parse(exposition.render())) == [0.25]
    busier = dataclasses.replace(HARDWARE, cpu=dataclasses.replace(HARDWARE.cpu, usage_ratio=0.75))
    _report(store, agent_id, 2, now, hardware=busier)
    kept = _parse(exposition.render())
    assert _cpu(kept) == [0.75]
    assert kept == _parse(Exposition(store, 60, clock=_Clock(now)).render())


def test_a_late_report_of_another_section_is_shown(tmp_path: Path) -> None:
    # A replayed backlog: seq 3 arrives after seq 5 and brings the only security section.
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    agent_id = _enroll(store, "m")
    now = time.time()
    _report(store, agent_id, 5, now, hardware=HARDWARE)
    exposition = Exposition(store, 60, clock=_Clock(now))
    assert "canhgac_firewall_enabled" not in _parse(exposition.render())
    _report(store, agent_id, 3, now, security=SECURITY)
    firewall = _parse(exposition.render())["canhgac_firewall_enabled"]
    assert {labels["profile"]: v for labels, v in firewall} == {"Domain": 1.0, "Public": 0.0}


def test_a_revoked_agent_disappears(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    kept, revoked = _enroll(store, "m1"), _enroll(store, "m2")
    now = time.time()
    for agent_id in (kept, revoked):
        _report(store, agent_id, 1, now, hardware=HARDWARE)
    exposition = Exposition(store, 60, clock=_Clock(now))
    up = _parse(exposition.render())["canhgac_agent_up"]
    assert sorted(labels["agent_id"] for labels, _ in up) == sorted([kept, revoked])
    store.revoke_agent(revoked, now)
    m = _parse(exposition.render())
    assert {labels["agent_id"] for samples in m.values() for labels, _ in samples} == {kept}


def test_shards_joined_family_by_family_equal_one_render(tmp_path: Path) -> None:
    # The collector's renderer processes each draw a shard of the agents.
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    now = time.time()
    # Agent ids are random and shards go by their hash: 40 agents leave a shard empty with a
    # chance of 3 x (2/3)^40 (12 did in about one run in 40).
    agents = [_enroll(store, f"m{i}") for i in range(40)]
    for agent_id in agents:
        _report(store, agent_id, 1, now, hardware=HARDWARE, security=SECURITY)
    whole = Exposition(store, 60, clock=_Clock(now)).render()
    shards = [Exposition(store, 60, shard=(i, 3)) for i in range(3)]
    bodies = [shard.fleet_bodies(now) for shard in shards]
    drawn = [
        {labels["agent_id"] for labels, _ in _parse(b"".join(FLEET.text(b)))["canhgac_agent_up"]}
        for b in bodies
    ]
    assert all(drawn) and sorted(a for d in drawn for a in d) == sorted(agents)  # each once
    joined = [b"".join(parts) for parts in zip(*bodies, strict=True)]
    merged = Exposition(store, 60, clock=_Clock(now), fleet=lambda _: joined).render()
    assert _parse(merged) == _parse(whole)


def test_a_new_placement_relabels_every_series(tmp_path: Path) -> None:
    now = time.time()
    store, agent_id = _store_with_agent(tmp_path, now)
    exposition = Exposition(store, 60, clock=_Clock(now))
    before = _parse(exposition.render())
    moved = dataclasses.replace(PLACE, commune="Đức Quang", unit="Trạm y tế")
    _, token = store.create_token(moved, 60, 0, replaces=agent_id)  # the operator's proof
    again = store.enroll(token, MachineFacts("m", "ubnd-anlac-01", "Windows", "10", "0.1.0"), 1)
    assert again.agent.agent_id == agent_id  # re-placed, not a new agent: no new report either
    after = _parse(exposition.render())
    assert set(after) == set(before)
    places = {(labels["commune"], labels["unit"]) for s in after.values() for labels, _ in s}
    assert places == {("Đức Quang", "Trạm y tế")}


def test_a_report_stored_by_another_collector_is_shown(tmp_path: Path) -> None:
    # Two collectors sharing one store: what is kept follows the store, not this process.
    now = time.time()
    store, agent_id = _store_with_agent(tmp_path, now)
    other = Store(store.url)
    exposition = Exposition(store, 60, clock=_Clock(now))
    assert _cpu(_parse(exposition.render())) == [0.25]
    idle = dataclasses.replace(HARDWARE, cpu=dataclasses.replace(HARDWARE.cpu, usage_ratio=0.0))
    _report(other, agent_id, 2, now, hardware=idle)
    assert _cpu(_parse(exposition.render())) == [0.0]


def test_kept_lines_age_and_go_stale_with_the_scrape_clock(tmp_path: Path) -> None:
    now = time.time()
    store, _ = _store_with_agent(tmp_path, now)
    clock = _Clock(now)
    exposition = Exposition(store, 60, clock=clock)
    first = _parse(exposition.render())
    clock.now = now + 30
    later = _parse(exposition.render())
    age = "canhgac_antivirus_signature_age_seconds"
    assert [v for _, v in later[age]] == [v + 30 for _, v in first[age]]
    clock.now = now + 61  # no delivery within stale_after: only up, last report and info
    stale = _parse(exposition.render())
    assert [v for _, v in stale["canhgac_agent_up"]] == [0.0]
    assert set(stale) == {
        "canhgac_agent_up",
        "canhgac_agent_last_report_timestamp_seconds",
        "canhgac_agent_info",
    }


def test_a_nan_reading_renders_as_nan(tmp_path: Path) -> None:
    # The wire allows NaN (the agent's encoder refuses it, another client may not) and
    # json.dumps stores it, which the fast decoder refuses: the snapshot must still render.
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    agent_id = _enroll(store, "m")
    now = time.time()
    pb = to_pb(Report(int(now * 1000), "b", "0.1.0", hardware=HARDWARE, seq=1))
    pb.hardware.cpu.usage_ratio = math.nan
    store.ingest(agent_id, [decode_report(pb, now)], now)
    [value] = _cpu(_parse(Exposition(store, 60, clock=_Clock(now)).render()))
    assert math.isnan(value)


def test_lines_an_agent_no_longer_has_disappear(tmp_path: Path) -> None:
    # Two agents changed in one scrape: one lost its disk, the other did not.
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    lean, full = _enroll(store, "m1"), _enroll(store, "m2")
    now = time.time()
    for agent_id in (lean, full):
        _report(store, agent_id, 1, now, hardware=HARDWARE)
    exposition = Exposition(store, 60, clock=_Clock(now))
    exposition.render()
    for agent_id in (lean, full):
        hardware = HARDWARE if agent_id == full else dataclasses.replace(HARDWARE, disks=())
        _report(store, agent_id, 2, now, hardware=hardware)
    kept = _parse(exposition.render())
    assert kept == _parse(Exposition(store, 60, clock=_Clock(now)).render())
    assert [labels["agent_id"] for labels, _ in kept["canhgac_disk_free_bytes"]] == [full]
    assert len(kept["canhgac_cpu_usage_ratio"]) == 2


@given(st.lists(st.floats() | st.integers(-(2**63), 2**64 - 1).map(float), max_size=50))
def test_values_read_back_as_the_same_floats(values: list[float]) -> None:
    texts = numbers(values)
    assert len(texts) == len(values) and all(t.endswith(b"\n") for t in texts)
    for value, text in zip(values, texts, strict=True):
        # The exposition format's spellings of the non-finite values; float() reads the rest.
        back = {b"NaN": math.nan, b"+Inf": math.inf, b"-Inf": -math.inf}.get(text[:-1])
        back = float(text) if back is None else back
        assert back == value or (math.isnan(back) and math.isnan(value))


def test_site_targets_once_per_place(tmp_path: Path) -> None:
    # The sites file does not forbid a district listed twice: its targets are written once.
    sites = Sites.model_validate(
        {
            "province": "Cao Bằng",
            "districts": [
                {"name": "Hạ Lang", "communes": [{"name": "An Lạc", "machines": 3}]},
                {"name": "Hạ Lang", "communes": [{"name": "An Lạc", "machines": 5}]},
            ],
        }
    )
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    text = Exposition(store, 60, sites=sites).render().decode()
    [family] = [
        f
        for f in text_string_to_metric_families(text)
        if f.name == "canhgac_site_expected_machines"
    ]
    assert [(s.labels["commune"], s.value) for s in family.samples] == [("An Lạc", 5.0)]


def test_a_renderer_that_cannot_open_the_store_says_why(tmp_path: Path) -> None:
    (tmp_path / "c.db").write_bytes(b"not a database, " * 256)
    renderer = FleetRenderer(f"sqlite:///{tmp_path / 'c.db'}", 60, processes=1)
    with contextlib.closing(renderer), pytest.raises(CollectorError, match="could not start"):
        renderer(time.time())
    assert renderer.pids == []  # nothing left running


def test_public_services_and_settings_have_their_own_series(tmp_path: Path) -> None:
    store, _agent = _store_with_agent(tmp_path, time.time())
    emitted = _families(store, stale_after=60)
    assert [(labels["service"], v) for labels, v in emitted["canhgac_public_service_up"]] == [
        ("iGate", 0.0)
    ]
    assert {labels["check"] for labels, _ in emitted["canhgac_http_check_success"]} == {"portal"}
    assert [labels["settings_hash"] for labels, _ in emitted["canhgac_agent_settings_info"]] == [
        "5f0c1e2d3a4b5c6d"
    ]
    assert [
        (labels["settings_hash"], v) for labels, v in emitted["canhgac_agent_settings_refused"]
    ] == [("0123456789abcdef", 1.0)]
