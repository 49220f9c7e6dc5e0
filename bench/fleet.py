"""Fleet simulator: agents with realistic reports across the org tree, enrolled for real over gRPC.

Used by tests (a fleet behind a real Prometheus), benchmarks and demos. Each simulated agent
has its own credential and seq and speaks the real wire contract through the real client.

    python -m bench.fleet --collector 127.0.0.1:4317 --config configs/collector.local.yaml \
        --agents 60 --rounds 0 --interval 15s

Scenarios: steady state (default); `--outage-commune "Kim Loan" --outage-rounds 3:240` (the
commune's uplink down for hours, then its backlog replayed in order); `--herd-rounds 20` (a
province-wide outage, then every agent at once); a collector restart needs no option: restart
it while the simulator runs, and the agents keep their backlog and retry.
"""

from __future__ import annotations

import argparse
import random
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from agent.model import (
    Antivirus,
    AntivirusProduct,
    ConferencingApp,
    Cpu,
    Defender,
    DeviceCheck,
    DhcpServer,
    Disk,
    DiskHealth,
    DriveHealth,
    FirewallProfile,
    Hardware,
    Host,
    HttpCheck,
    InstalledProgram,
    Link,
    Listener,
    MediaDevice,
    MeetingRoom,
    Memory,
    NetInterface,
    PingResult,
    Power,
    Readiness,
    ReadinessReason,
    Report,
    Security,
    Software,
    Temperature,
    ThroughputResult,
    Ups,
)
from agent.probes.software import inventory_hash
from agent.transport.client import CollectorClient, DeliveryError, MachineFacts
from agent.transport.encode import encode_report
from canhgac_common.units import duration_option
from collector.config import load_config
from collector.model import Placement
from collector.sites import Sites, load_sites
from collector.store import Store

__all__ = [
    "Place",
    "SimAgent",
    "enroll_fleet",
    "enroll_rooms",
    "places",
    "simulated_antivirus",
    "simulated_hardware",
    "simulated_link",
    "simulated_meeting_room",
    "simulated_security",
    "tokens_for",
]

_MODELS = (
    ("Dell Inc.", "OptiPlex 3050", "Intel(R) Core(TM) i3-7100 CPU @ 3.90GHz", 4, 4),
    ("HP", "ProDesk 400 G6", "Intel(R) Core(TM) i5-9500 CPU @ 3.00GHz", 6, 6),
    ("Lenovo", "ThinkCentre M70t", "Intel(R) Core(TM) i5-10400 CPU @ 2.90GHz", 6, 12),
    ("ASUSTeK COMPUTER INC.", "ExpertCenter D5", "Intel(R) Pentium(R) Gold G6400", 2, 4),
)
_OSES = (
    ("Microsoft Windows 10 Pro", "10.0.19045", "19045"),
    ("Microsoft Windows 11 Pro", "10.0.22631", "22631"),
    ("Microsoft Windows 7 Professional", "6.1.7601", "7601"),
)


@dataclass(frozen=True)
class Place:
    district: str
    commune: str  # "" for a district department
    unit: str  # "" for a commune office
    machines: int
    meeting_rooms: int = 0


def places(sites: Sites) -> list[Place]:
    """Every place of the tree that should have machines, with how many."""
    out = []
    for d in sites.districts:
        out += [
            Place(d.name, "", u.name, u.machines, u.meeting_rooms)
            for u in d.units
            if u.machines or u.meeting_rooms
        ]
        out += [
            Place(d.name, c.name, "", c.machines, c.meeting_rooms)
            for c in d.communes
            if c.machines or c.meeting_rooms
        ]
    return out


# One machine in ten is a Linux PC or server (the design guide: "some Linux servers and PCs").
LINUX_EVERY = 10
_LINUX_OS = ("Debian GNU/Linux 12 (bookworm)", "12", "6.1.0-26-amd64")


def simulated_hardware(rng: random.Random, hostname: str, linux: bool = False) -> Hardware:
    """A commune office PC. Windows desktops expose no thermal zone (MSAcpi_ThermalZone-
    Temperature is absent on most), so they report temperatures "unavailable", never a
    reading; Linux ones read the CPU's coretemp sensor."""
    vendor, model, cpu_model, phys, logical = rng.choice(_MODELS)
    os_name, os_version, os_build = rng.choices(_OSES, weights=(70, 25, 5))[0]
    if linux:
        os_name, os_version, os_build = _LINUX_OS
    ram = rng.choice((4, 8, 8, 16)) << 30
    disk = rng.choice((256, 500, 1000)) << 30
    free = int(disk * rng.uniform(0.03, 0.7))
    boot = time.time() - rng.uniform(600, 30 * 86400)
    mount = ("/", "/dev/sda1", "ext4") if linux else ("C:\\", "C:\\", "NTFS")
    temperatures = (Temperature("coretemp", "Package id 0", rng.uniform(38, 85)),) if linux else ()
    return Hardware(
        host=Host(
            hostname,
            os_name,
            os_version,
            os_build,
            "x86_64" if linux else "AMD64",
            vendor,
            model,
            f"SN{rng.randrange(10**8):08d}",
            boot,
            time.time() - boot,
        ),
        cpu=Cpu(cpu_model, phys, logical, rng.uniform(0.02, 0.9), 0.0, 0.0, 0.0, 3000.0),
        memory=Memory(ram, int(ram * rng.uniform(0.1, 0.6)), int(ram * 0.5), 2 << 30, 1 << 28),
        disks=(Disk(*mount, disk, disk - free, free),),
        temperatures=temperatures,
        interfaces=(
            NetInterface(
                "eno1" if linux else "Ethernet",
                True,
                rng.choice((100, 1000)),
                "full",
                1500,
                errors_in=rng.randrange(5),
                errors_out=0,
            ),
        ),
        temperature_state="ok" if linux else "unavailable",
        temperature_detail="" if linux else "MSAcpi_ThermalZoneTemperature: no reading at boot",
    )


def simulated_disk_health(rng: random.Random, linux: bool) -> DiskHealth:
    """One drive; an old commune PC's disk is sometimes counting bad sectors or failing."""
    health = rng.choices(("ok", "warning", "failing"), weights=(90, 7, 3))[0]
    ssd = rng.random() < 0.4
    bad = 0 if health == "ok" else rng.randrange(1, 400)
    if linux:  # smartctl: sector counts for ATA, wear for SSDs
        return DiskHealth(
            drives=(
                DriveHealth(
                    "/dev/sda",
                    health,
                    "smartctl",
                    media="ssd" if ssd else "hdd",
                    protocol="ATA",
                    raw_health="failed" if health == "failing" else "passed",
                    reallocated_sectors=bad,
                    pending_sectors=bad // 4,
                    wear_percent=rng.randrange(1, 60) if ssd else -1,
                    power_on_hours=rng.randrange(2000, 60000),
                    temperature_celsius=rng.uniform(28, 45),
                ),
            )
        )
    raw = {
        "ok": "Healthy, OK",
        "warning": "Warning, OK",
        "failing": "Unhealthy, Predictive Failure",
    }
    return DiskHealth(  # Storage cmdlets: no sector counts
        drives=(
            DriveHealth(
                "0",
                health,
                "storage",
                media="ssd" if ssd else "hdd",
                protocol="SATA",
                raw_health=raw[health],
                wear_percent=rng.randrange(1, 60) if ssd else -1,
                power_on_hours=rng.randrange(2000, 60000),
            ),
        )
    )


def simulated_power(rng: random.Random, linux: bool) -> Power:
    """Windows desktops have no battery and no NUT: their supply is unknown. Linux ones here
    hang on a USB UPS served by their own upsd, sometimes during a power cut."""
    if not linux:
        return Power("unknown", notes=("no battery and no UPS configured (probes.power.ups)",))
    cut = rng.random() < 0.2
    charge = rng.uniform(20, 90) if cut else 100.0
    ups = Ups(
        "ups@localhost",
        "on_battery" if cut else "online",
        "OB DISCHRG" if cut else "OL",
        charge,
        int(charge * 30),
        rng.uniform(10, 40),
    )
    return Power("battery" if cut else "mains", ups=(ups,))


_WINDOWS_PROGRAMS = (
    ("Google Chrome", "131.0.6778.86", "Google LLC", "hklm64", 1.0),
    ("Microsoft Edge", "131.0.2903.70", "Microsoft Corporation", "hklm32", 1.0),
    ("Microsoft Office Standard 2016", "16.0.4266.1001", "Microsoft Corporation", "hklm32", 0.8),
    ("VNPT-CA Plugin", "1.0.5.2", "VNPT", "hklm64", 0.6),
    ("Viettel-CA Token Manager", "2.3.1", "Viettel Group", "hklm32", 0.2),
    ("Bkav Pro", "5.8.3", "Bkav Corporation", "hklm32", 0.3),
    ("Zalo", "24.11.1", "VNG Corporation", "hkcu", 0.7),
    ("UltraViewer version 6.6.107", "6.6.107", "DucFabulous", "hklm32", 0.15),
)
_LINUX_PACKAGES = (
    ("bash", "5.2.15-2+b8", "Matthias Klose"),
    ("firefox-esr", "128.5.0esr-1~deb12u1", "Debian Mozilla Team"),
    ("openssh-server", "1:9.2p1-2+deb12u3", "Debian OpenSSH Maintainers"),
    ("nut-client", "2.8.0-7", "Laurent Bigonville"),
)


def simulated_software(rng: random.Random, linux: bool, full: bool) -> Software:
    """The machine's programs (a fixed draw per machine); the list only when `full` (the
    agent's first report), else the hash, as the agent sends it."""
    if linux:
        programs = [InstalledProgram(n, v, p, origin="dpkg") for n, v, p in _LINUX_PACKAGES]
    else:
        programs = [
            InstalledProgram(n, v, p, origin=o)
            for n, v, p, o, share in _WINDOWS_PROGRAMS
            if rng.random() < share
        ]
    return Software(
        inventory_hash(programs),
        len(programs),
        full,
        "dpkg" if linux else "windows_registry",
        tuple(programs) if full else (),
    )


def simulated_antivirus(rng: random.Random, now: float) -> Antivirus:
    """Mostly Defender on and current; some BKAV with Defender passive; a few off or stale."""
    updated = now - rng.choice((3600.0, 86400.0, 2 * 86400.0, 9 * 86400.0))
    if rng.random() < 0.2:
        products = (
            AntivirusProduct(
                "BKAV Pro", "security_center", "on", 266240, "third_party", "up_to_date"
            ),
            AntivirusProduct("Windows Defender", "security_center", "off", 393472, "microsoft"),
        )
        return Antivirus(products=products, realtime="on")
    state = "on" if rng.random() < 0.9 else "off"
    product = AntivirusProduct(
        "Windows Defender",
        "security_center",
        state,
        397568 if state == "on" else 393472,
        "microsoft",
        "up_to_date" if now - updated < 7 * 86400 else "out_of_date",
    )
    defender = Defender(
        "ok",
        am_service_enabled=True,
        antivirus_enabled=state == "on",
        realtime_protection_enabled=state == "on",
        signature_updated_at=updated,
        signature_age_days=int((now - updated) // 86400),
    )
    return Antivirus((product,), defender, realtime=state, signature_updated_at=updated)


def simulated_security(rng: random.Random, now: float) -> Security:
    public = "on" if rng.random() < 0.85 else "off"
    risky = (Listener("0.0.0.0", 3389, "rdp", "svchost.exe"),) if rng.random() < 0.1 else ()
    return Security(
        firewall=(
            FirewallProfile("Domain", "on"),
            FirewallProfile("Private", "on"),
            FirewallProfile("Public", public),
        ),
        os_updated_at=now - rng.uniform(1, 60) * 86400,
        os_update_source="windows_update_history",
        listeners_total=rng.randrange(8, 30),
        risky_listeners=risky,
    )


def simulated_link(rng: random.Random, commune_down: bool = False) -> Link:
    """Pings to the commune router and the district, a portal check, sometimes throughput."""

    def ping(target: str, address: str, rtt: float, loss: float) -> PingResult:
        received = 0 if commune_down else round(10 * (1 - loss))
        if not received:
            return PingResult(target, address, "windows-icmp", 10, 0, 1.0)
        return PingResult(
            target,
            address,
            "windows-icmp",
            10,
            received,
            1 - received / 10,
            rtt * 0.8,
            rtt,
            rtt * 1.5,
            rtt * rng.uniform(0.05, 0.3),
        )

    return Link(
        gateway="192.168.1.1",
        pings=(
            ping("gateway", "192.168.1.1", rng.uniform(0.0005, 0.003), 0.0),
            ping("huyen", "10.20.0.1", rng.uniform(0.01, 0.12), rng.choice((0, 0, 0, 0.1, 0.3))),
        ),
        http_checks=(
            # The district's own web portal, in this machine's http_checks.
            HttpCheck(
                "cong-thong-tin-huyen",
                "https://halang.caobang.gov.vn/",
                not commune_down,
                200 if not commune_down else 0,
                rng.uniform(0.1, 0.9),
                rng.uniform(20, 300) * 86400,
            ),
            # A public service of configs/collector.example.yaml's `services:`, pushed to every
            # agent with its central settings.
            HttpCheck(
                "Cổng dịch vụ công tỉnh",
                "https://dichvucong.caobang.gov.vn/",
                not commune_down,
                200 if not commune_down else 0,
                rng.uniform(0.1, 0.9),
                rng.uniform(20, 300) * 86400,
                service=True,
            ),
        ),
        throughput=ThroughputResult(1 << 20, 1.0, rng.uniform(2e6, 3e7))
        if rng.random() < 0.5
        else None,
        dhcp_servers=(
            DhcpServer("192.168.1.1", "aa:bb:cc:00:00:01", "192.168.1.50", allowed=True),
        ),
    )


def simulated_meeting_room(rng: random.Random) -> MeetingRoom:
    """Mostly ready rooms; some AMBER on a slow link, a few RED with the camera missing."""
    state = rng.choices(("green", "amber", "red"), weights=(70, 20, 10))[0]
    reasons = {
        "green": (),
        "amber": (ReadinessReason("rtt_high", "amber", "RTT 120 ms to the district ≥ 100 ms"),),
        "red": (ReadinessReason("device_missing", "red", "camera: 0 of 1 expected"),),
    }[state]
    cameras = 0 if state == "red" else 1
    return MeetingRoom(
        devices=(
            *((MediaDevice("camera", "Logitech ConferenceCam", "ok", "pnp"),) if cameras else ()),
            MediaDevice("microphone", "Jabra Speak 510", "ok", "pnp"),
            MediaDevice("display", "Samsung 65", "ok", "pnp"),
        ),
        device_checks=(DeviceCheck("camera", "*", 1, cameras),),
        apps=(ConferencingApp("Zoom", True, rng.random() < 0.5),),
        readiness=Readiness(state, reasons),
    )


@dataclass
class SimAgent:
    agent_id: str
    place: Place
    hardware: Hardware
    client: CollectorClient
    seq: int = 0
    meeting_room: bool = False
    # Reports not yet acknowledged, oldest first: what the real agent keeps in its spool.
    backlog: list[bytes] = field(default_factory=list)

    def report(
        self, rng: random.Random, now: float | None = None, online: bool = True
    ) -> list[int]:
        """Collect one simulated report (CPU usage wanders); when online, deliver the backlog
        oldest first in batches of 50, as the agent replays its spool. Returns stored seqs."""
        self.seq += 1
        at = now or time.time()
        cpu = replace(self.hardware.cpu, usage_ratio=min(1.0, rng.uniform(0.0, 0.9)))
        linux = self.hardware.host.os_name.startswith("Debian")
        report = Report(
            collected_at_ms=int(at * 1000),
            boot_id="sim",
            agent_version="sim",
            hardware=replace(self.hardware, cpu=cpu),
            # Posture is a property of the machine: the same draw every report.
            antivirus=simulated_antivirus(random.Random(self.agent_id), at),
            security=simulated_security(random.Random(self.agent_id), at),
            link=simulated_link(rng),
            meeting_room=simulated_meeting_room(rng) if self.meeting_room else None,
            disk_health=simulated_disk_health(random.Random(self.agent_id), linux),
            power=simulated_power(rng, linux),
            software=simulated_software(random.Random(self.agent_id), linux, self.seq == 1),
            seq=self.seq,
        )
        self.backlog.append(encode_report(report))
        stored: list[int] = []
        while online and self.backlog:
            try:
                acked = self.client.submit(self.backlog[:50]).stored
            except DeliveryError:
                break  # collector down or restarting: keep everything, retry next round
            stored += acked
            self.backlog = self.backlog[len(acked) :]
        return stored


def tokens_for(store: Store, sites: Sites, role: str = "workstation") -> dict[Place, str]:
    """One enrollment token per place, created directly in the collector's store."""
    now = time.time()
    out = {}
    for p in places(sites):
        placement = Placement(sites.province, p.district, p.commune, p.unit, role)
        out[p] = store.create_token(placement, 86400, now, note="fleet simulator")[1]
    return out


def _spread(tokens: dict[Place, str], n: int) -> Iterator[tuple[Place, str]]:
    """n agents over the places, every place at least once while n allows."""
    ordered = sorted(tokens.items(), key=lambda kv: (kv[0].commune == "", -kv[0].machines))
    for i in range(n):
        yield ordered[i % len(ordered)]


def enroll_fleet(
    address: str, tokens: dict[Place, str], n: int, seed: int = 1
) -> tuple[list[SimAgent], random.Random]:
    rng = random.Random(seed)
    agents = []
    for i, (place, token) in enumerate(_spread(tokens, n)):
        slug = "".join(ch for ch in (place.commune or place.unit).lower() if ch.isalnum())[:10]
        hostname = f"pc-{slug}-{i:03d}"
        with CollectorClient(address) as c:
            linux = i % LINUX_EVERY == LINUX_EVERY - 1
            facts = MachineFacts(
                f"sim-{seed}-{i}", hostname, "Linux" if linux else "Windows", "10", "sim"
            )
            e = c.enroll(token, facts)
        agents.append(
            SimAgent(
                e.agent_id,
                place,
                simulated_hardware(rng, hostname, linux),
                CollectorClient(address, secret=e.secret),
            )
        )
    return agents, rng


def enroll_rooms(address: str, tokens: dict[Place, str], rng: random.Random) -> list[SimAgent]:
    """One meeting-room agent per room the sites file plans (tokens with role meeting-room)."""
    rooms = []
    for place, token in tokens.items():
        for k in range(place.meeting_rooms):
            slug = "".join(ch for ch in (place.commune or place.unit).lower() if ch.isalnum())
            hostname = f"phonghop-{slug[:10]}-{k + 1}"
            with CollectorClient(address) as c:
                facts = MachineFacts(f"room-{hostname}", hostname, "Windows", "10", "sim")
                e = c.enroll(token, facts)
            rooms.append(
                SimAgent(
                    e.agent_id,
                    place,
                    simulated_hardware(rng, hostname),
                    CollectorClient(address, secret=e.secret),
                    meeting_room=True,
                )
            )
    return rooms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--collector", required=True, metavar="HOST:PORT")
    ap.add_argument("--config", type=Path, required=True, help="the collector's config (store)")
    ap.add_argument("--sites", type=Path, help="default: the config's sites_file")
    ap.add_argument("--agents", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=1, help="0 = until interrupted")
    ap.add_argument("--interval", type=duration_option, default="15s")
    ap.add_argument("--outage-commune", help="scenario: this commune's uplink goes down ...")
    ap.add_argument(
        "--outage-rounds", default="3:10", metavar="FIRST:LAST", help="... for these rounds"
    )
    ap.add_argument(
        "--herd-rounds",
        type=int,
        default=0,
        help="scenario: province-wide outage for the first N rounds, then everyone at once",
    )
    args = ap.parse_args()
    # Started in the background by a script (`make demo`), Python inherits SIGINT ignored and
    # Ctrl-C would leave the simulator running: stop on SIGINT and SIGTERM alike.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    first, _, last = args.outage_rounds.partition(":")
    outage = range(int(first), int(last) + 1)
    cfg = load_config(args.config)
    sites_file = args.sites or cfg.sites_file
    if sites_file is None:
        ap.error("no sites file: pass --sites or set sites_file in the config")
    store = Store(cfg.store.url, cfg.store.sqlite_synchronous)
    sites = load_sites(sites_file)
    tokens = tokens_for(store, sites)
    room_tokens = tokens_for(store, sites, role="meeting-room")
    store.close()
    agents, rng = enroll_fleet(args.collector, tokens, args.agents)
    agents += enroll_rooms(args.collector, room_tokens, rng)
    print(f"enrolled {len(agents)} simulated agents (meeting rooms too) over {len(tokens)} places")
    done = 0
    try:
        while args.rounds == 0 or done < args.rounds:
            start = time.monotonic()
            done += 1
            for a in agents:
                commune_down = a.place.commune == args.outage_commune and done in outage
                a.report(rng, online=not commune_down and done > args.herd_rounds)
            waiting = sum(len(a.backlog) for a in agents)
            print(f"round {done}: {time.monotonic() - start:.2f}s, {waiting} reports waiting")
            if args.rounds == 0 or done < args.rounds:
                time.sleep(max(0.0, args.interval - (time.monotonic() - start)))
    except KeyboardInterrupt:
        pass
    finally:
        # Stopping: a second signal (Ctrl-C, then the script's TERM) must not cut it short.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
        for a in agents:
            a.client.close()


if __name__ == "__main__":
    main()
