"""Security probe: Windows documents, Linux firewall/apt/update-notifier texts, listeners."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
import sys
import time
from pathlib import Path

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.errors import ProbeFailed
from agent.model import Listener
from agent.platform.linux import (
    inet_diag_request,
    parse_inet_diag,
    parse_proc_net_tcp,
    read_proc_listeners,
    socket_owners,
)
from agent.platform.windows import PerScript
from agent.probes.security import (
    APT_HISTORY_PATHS,
    UFW_CONF_PATH,
    UPDATE_NOTIFIER_PATH,
    RawListener,
    SecurityOptions,
    SecurityProbe,
    parse_apt_history,
    parse_apt_simulation,
    parse_iptables,
    parse_listeners,
    parse_nft_ruleset,
    parse_ufw_conf,
    parse_update_notifier,
    parse_windows_security,
    read_listeners,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "security"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def test_windows_profiles_and_last_os_update_excluding_defender_signatures() -> None:
    sec = parse_windows_security(fixture("win10-vi-security.json"))
    assert [(p.name, p.state, p.default_inbound) for p in sec.firewall] == [
        ("Domain", "on", "block"),
        ("Private", "on", "block"),
        ("Public", "off", ""),
    ]
    # Newest entry is the Defender signature update, then a failed cumulative update,
    # then an uninstall: the answer is the successful installation of 2024-11-14.
    assert sec.os_updated_at == 1731555000.0
    assert sec.os_update_source == "windows_update_history"
    assert sec.notes == ()


def test_powershell_7_numbers_and_single_objects() -> None:
    sec = parse_windows_security(fixture("win11-vi-security-ps7-numbers.json"))
    assert [(p.name, p.state, p.default_inbound) for p in sec.firewall] == [
        ("Public", "on", "block")
    ]
    assert sec.os_updated_at == 1732000000.0  # succeeded with errors still installed


def test_windows_server_without_update_history_falls_back_to_hotfix() -> None:
    sec = parse_windows_security(fixture("winserver2019-security-hotfix-only.json"))
    assert sec.os_update_source == "hotfix"
    assert sec.os_updated_at == 1731456000.0  # 2024-11-13
    assert "E_ACCESSDENIED" in sec.notes[0]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("malformed-all-failed.json", "Truy cập bị từ chối"),
        ("malformed-truncated.json", "not valid JSON"),
    ],
)
def test_malformed_windows_documents(name: str, reason: str) -> None:
    with pytest.raises(ProbeFailed, match=reason):
        parse_windows_security(fixture(name))


@given(st.text(max_size=300))
def test_fuzz_windows_security_parser(document: str) -> None:
    with contextlib.suppress(ProbeFailed):
        parse_windows_security(document)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("nft-ruleset-drop.txt", ("on", "block")),
        ("nft-ruleset-default-accept.txt", ("off", "allow")),
        ("nft-ruleset-empty.txt", ("off", "")),
    ],
)
def test_nft_ruleset(name: str, expected: tuple[str, str]) -> None:
    assert parse_nft_ruleset(fixture(name)) == expected


def test_iptables_ufw_apt_and_notifier() -> None:
    assert parse_iptables(fixture("iptables-s-input.txt")) == ("on", "allow")
    assert parse_iptables("-P INPUT ACCEPT\n") == ("off", "allow")
    assert parse_ufw_conf(fixture("ufw.conf")) == "on"
    assert parse_ufw_conf("ENABLED=no\n") == "off"
    assert parse_ufw_conf("") == "unknown"
    expected = time.mktime(time.strptime("2024-11-18 09:00:42", "%Y-%m-%d %H:%M:%S"))
    assert parse_apt_history(fixture("apt-history.log")) == expected  # the install is not an update
    assert parse_apt_history("") == 0.0
    assert parse_apt_simulation(fixture("apt-simulate-upgrade.txt")) == 2
    assert parse_update_notifier(fixture("updates-available.txt")) == 3
    assert parse_update_notifier("0 updates can be applied immediately.\n") == 0
    assert parse_update_notifier("something else") == -1


def test_listeners_flag_only_risky_services_beyond_loopback() -> None:
    raw = [
        RawListener("0.0.0.0", 3389, 100),
        RawListener("0.0.0.0", 3389, 100),  # psutil lists a socket once per process sharing it
        RawListener("127.0.0.1", 5900, None),
        RawListener("::1", 445, None),
        RawListener("192.168.1.10", 445, None),
        RawListener("fe80::1%eth0", 23, None),
        RawListener("0.0.0.0", 22, 1),
    ]
    total, risky = parse_listeners(raw, lambda pid: {100: "svchost.exe"}[pid])
    assert total == 6
    assert risky == (
        Listener("fe80::1%eth0", 23, "telnet"),
        Listener("192.168.1.10", 445, "smb"),
        Listener("0.0.0.0", 3389, "rdp", "svchost.exe"),
    )


def test_linux_collect_reads_every_source_through_its_boundary() -> None:
    files = {
        UFW_CONF_PATH: fixture("ufw.conf"),
        APT_HISTORY_PATHS[0]: fixture("apt-history.log"),
        UPDATE_NOTIFIER_PATH: None,
    }
    commands = {
        "nft": fixture("nft-ruleset-drop.txt"),
        "apt-get": fixture("apt-simulate-upgrade.txt"),
    }
    probe = SecurityProbe(
        SecurityOptions(apt_simulation=True),
        run=lambda argv, timeout: commands.get(argv[0]),
        read_text=files.get,
        listeners=lambda: [RawListener("0.0.0.0", 5901, None)],
        system=lambda: "Linux",
    )
    sec = probe.collect()
    assert [(p.name, p.state) for p in sec.firewall] == [("nftables", "on"), ("ufw", "on")]
    assert sec.pending_security_updates == 2
    assert sec.os_update_source == "apt_history"
    assert [(x.port, x.service) for x in sec.risky_listeners] == [(5901, "vnc")]
    assert sec.listeners_total == 1


def test_linux_without_firewall_tools_says_so_instead_of_off() -> None:
    probe = SecurityProbe(
        SecurityOptions(),
        run=lambda argv, timeout: None,
        read_text=lambda path: None,
        listeners=list,
        system=lambda: "Linux",
    )
    sec = probe.collect()
    assert sec.firewall == ()
    assert sec.pending_security_updates == -1
    assert "nft and iptables unreadable" in sec.notes[0]


def test_windows_collect_uses_one_powershell_call() -> None:
    calls: list[str] = []

    def run(script: str, timeout: float) -> str:
        calls.append(script)
        return fixture("win10-vi-security.json")

    sec = SecurityProbe(
        powershell=PerScript(run), listeners=list, system=lambda: "Windows"
    ).collect()
    assert len(calls) == 1 and "ActiveStore" in calls[0]
    assert len(sec.firewall) == 3


def test_proc_net_tcp_tables_give_the_listening_sockets_only() -> None:
    ipv4 = parse_proc_net_tcp(fixture("proc-net-tcp.txt"), little_endian=True)
    ipv6 = parse_proc_net_tcp(fixture("proc-net-tcp6.txt"), little_endian=True)
    assert [(x.address, x.port) for x in ipv4] == [("0.0.0.0", 2024), ("127.0.0.1", 5901)]
    assert ipv4[1].inode == 597679
    assert [(x.address, x.port, x.inode) for x in ipv6] == [("::1", 3389, 597680)]


@pytest.mark.skipif(sys.platform != "linux", reason="reads this machine's sockets and /proc")
def test_linux_listeners_through_sock_diag_and_proc_agree_and_owners_are_found() -> None:
    with contextlib.ExitStack() as stack:
        mine = {}
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            s = stack.enter_context(socket.socket(family))
            s.bind((host, 0))
            s.listen()
            mine[(host, s.getsockname()[1])] = os.fstat(s.fileno()).st_ino
        found = {(x.address, x.port): x.inode for x in read_proc_listeners()}
        table = {
            (x.address, x.port): x.inode
            for path in ("/proc/net/tcp", "/proc/net/tcp6")
            for x in parse_proc_net_tcp(Path(path).read_text())
        }
        diag: dict[tuple[str, int], int] = {}
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 4) as netlink:  # sock_diag
            for family in (socket.AF_INET, socket.AF_INET6):
                netlink.send(inet_diag_request(family, 1))
                complete = False
                while not complete:
                    listeners, complete = parse_inet_diag(netlink.recv(65536))
                    diag.update({(x.address, x.port): x.inode for x in listeners})
        # Other processes open and close sockets meanwhile: compare on the sockets made here.
        assert {k: diag.get(k) for k in mine} == mine
        assert {k: found.get(k) for k in mine} == mine
        assert {k: table.get(k) for k in mine} == mine
        assert socket_owners(set(mine.values())) == dict.fromkeys(mine.values(), os.getpid())
        # read_listeners sees what psutil sees, without psutil's pid lookup through every fd.
        listening = {
            (c.laddr.ip, c.laddr.port)
            for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr
        }
        assert set(mine) <= listening
        assert set(mine) <= {(x.address, x.port) for x in read_listeners()}


def test_apt_history_is_parsed_again_when_it_changes() -> None:
    history = fixture("apt-history.log")
    files: dict[str, str | None] = {APT_HISTORY_PATHS[0]: history}
    probe = SecurityProbe(
        SecurityOptions(),
        run=lambda argv, timeout: None,
        read_text=files.get,
        listeners=list,
        system=lambda: "Linux",
    )
    first = probe.collect().os_updated_at
    assert first == parse_apt_history(history) > 0
    assert probe.collect().os_updated_at == first
    later = "\nStart-Date: 2025-01-02  08:00:00\nUpgrade: curl:amd64 (1, 2)\n"
    later += "End-Date: 2025-01-02  08:00:09\n"
    files[APT_HISTORY_PATHS[0]] = history + later
    assert probe.collect().os_updated_at == parse_apt_history(history + later) > first


def test_sock_diag_reply_end_and_refusal() -> None:
    done = struct.pack("=IHHII", 20, 3, 2, 1, 0) + struct.pack("=i", 0)
    assert parse_inet_diag(done) == ([], True)
    refused = struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", -errno.EPERM) + bytes(16)
    with pytest.raises(OSError, match="sock_diag"):
        parse_inet_diag(refused)
