"""Security-posture probe: firewall, last OS update, pending security updates, risky listeners."""

from __future__ import annotations

import ipaddress
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import psutil

from agent.errors import ProbeFailed
from agent.model import FirewallProfile, Listener, Security
from agent.platform import linux, windows
from agent.platform.linux import read_text as read_text_file
from agent.platform.psbatch import Query
from agent.platform.psjson import as_int, as_list, as_text, load_document, parse_date
from agent.probes.base import Probe, ProbeOptions
from agent.settings import Duration, option

__all__ = [
    "APT_HISTORY_PATHS",
    "POWERSHELL_SCRIPT",
    "RISKY_PORTS",
    "UFW_CONF_PATH",
    "UPDATE_NOTIFIER_PATH",
    "RawListener",
    "SecurityOptions",
    "SecurityProbe",
    "parse_apt_history",
    "parse_apt_simulation",
    "parse_iptables",
    "parse_listeners",
    "parse_nft_ruleset",
    "parse_ufw_conf",
    "parse_update_notifier",
    "parse_windows_security",
    "read_listeners",
]

UFW_CONF_PATH = "/etc/ufw/ufw.conf"
APT_HISTORY_PATHS = ("/var/log/apt/history.log", "/var/log/apt/history.log.1.gz")
UPDATE_NOTIFIER_PATH = "/var/lib/update-notifier/updates-available"

# Services nobody should expose beyond the machine itself in a commune office.
RISKY_PORTS: Mapping[int, str] = {
    23: "telnet",
    139: "smb",
    445: "smb",
    3389: "rdp",
    **{port: "vnc" for port in range(5900, 5910)},
}

# Defender signature and platform updates land in the Windows Update history too; they say
# nothing about the OS being patched. KB2267602 is the signature update in every locale.
_DEFENDER_UPDATE = re.compile(
    r"KB2267602|KB2461484|KB4052623|KB915597|Defender|Security Intelligence|"
    r"Definition Update|Trí tuệ Bảo mật|Bản cập nhật định nghĩa",
    re.IGNORECASE,
)
# "Inst libssl3 [3.0.11-1~deb12u1] (3.0.11-1~deb12u2 Debian-Security:12/stable-security [amd64])"
_SECURITY_ORIGIN = re.compile(r"\(.*[-/]security\b", re.IGNORECASE)
_WU_SUCCEEDED = {2, 3}  # orcSucceeded, orcSucceededWithErrors
_WU_INSTALLATION = 1  # uoInstallation

POWERSHELL_SCRIPT = "; ".join(
    [
        "$ErrorActionPreference = 'Stop'",
        "function D($d) { if ($d) { ([datetime]$d).ToUniversalTime().ToString('o') } }",
        "$fw = $null; $fwError = $null; $wu = $null; $wuError = $null; $hf = $null",
        "try { $fw = @(Get-NetFirewallProfile -PolicyStore ActiveStore | Select-Object -Property"
        " Name, @{n='Enabled';e={[string]$_.Enabled}},"
        " @{n='DefaultInboundAction';e={[string]$_.DefaultInboundAction}}) }"
        " catch { $fwError = $_.Exception.Message }",
        "try { $h = (New-Object -ComObject Microsoft.Update.Session).CreateUpdateSearcher();"
        " $n = $h.GetTotalHistoryCount(); $wu = @(if ($n -gt 0) {"
        " $h.QueryHistory(0, [Math]::Min($n, 200)) | Select-Object -Property"
        " @{n='Date';e={D $_.Date}}, Title, ResultCode, Operation }) }"
        " catch { $wuError = $_.Exception.Message }",
        "try { $hf = @(Get-HotFix | Select-Object -Property HotFixID,"
        " @{n='InstalledOn';e={D $_.InstalledOn}}) } catch { $hf = $null }",
        "[ordered]@{ FirewallProfile = $fw; FirewallError = $fwError; UpdateHistory = $wu;"
        " UpdateHistoryError = $wuError; HotFix = $hf } | ConvertTo-Json -Compress -Depth 4",
    ]
)


class SecurityOptions(ProbeOptions):
    # Firewall, updates and listeners change slowly; scanning sockets and processes each
    # 15 s would cost more CPU than everything else the agent does.
    interval: Duration | None = option(default=300.0, gt=0)
    # Linux without update-notifier (Debian): count pending security updates with
    # `apt-get -s upgrade`. Off by default: it reads only local lists but takes seconds, and the
    # runner collects probes one after another.
    apt_simulation: bool = False
    command_timeout: Duration = option(default=60.0, gt=0)
    powershell_timeout: Duration = option(default=60.0, gt=0)


@dataclass(frozen=True)
class RawListener:
    address: str
    port: int
    pid: int | None


class SecurityProbe(Probe[SecurityOptions]):
    """Reports the machine's security posture beyond the antivirus."""

    name: ClassVar[str] = "security"

    def __init__(
        self,
        options: SecurityOptions | None = None,
        *,
        powershell: windows.PowerShell | None = None,
        run: Callable[[list[str], float], str | None] | None = None,
        read_text: Callable[[str], str | None] = read_text_file,
        listeners: Callable[[], list[RawListener]] | None = None,
        process_name: Callable[[int], str] | None = None,
        system: Callable[[], str] = platform.system,
    ) -> None:
        super().__init__(options)
        self._powershell = powershell or windows.shared_batch()
        self._run = run or _run_command
        self._read_text = read_text
        self._listeners = listeners or read_listeners
        self._process_name = process_name or _process_name
        self._system = system
        # The apt history changes a few times a month: parse it again only when it did.
        self._apt_history: tuple[str, float] = ("", 0.0)

    def _query(self) -> Query:
        return Query(self.name, POWERSHELL_SCRIPT, self._options.powershell_timeout)

    def prepare(self) -> None:
        if self._system() == "Windows":
            self._powershell.declare(self._query())

    def collect(self) -> Security:
        system = self._system()
        total, risky = parse_listeners(self._listeners(), self._process_name)
        if system == "Windows":
            base = parse_windows_security(self._powershell.result(self._query()))
        elif system == "Linux":
            base = self._linux()
        else:
            raise ProbeFailed(f"security probe does not support {system or 'this OS'}")
        return Security(
            firewall=base.firewall,
            os_updated_at=base.os_updated_at,
            os_update_source=base.os_update_source,
            pending_security_updates=base.pending_security_updates,
            listeners_total=total,
            risky_listeners=risky,
            notes=base.notes,
        )

    def _parse_apt_history(self, text: str) -> float:
        if text != self._apt_history[0]:
            self._apt_history = (text, parse_apt_history(text))
        return self._apt_history[1]

    def _linux(self) -> Security:
        timeout = self._options.command_timeout
        firewall: list[FirewallProfile] = []
        notes: list[str] = []
        nft = self._run(["nft", "list", "ruleset"], timeout)
        if nft is not None:
            firewall.append(FirewallProfile("nftables", *parse_nft_ruleset(nft)))
        else:
            iptables = self._run(["iptables", "-S", "INPUT"], timeout)
            if iptables is not None:
                firewall.append(FirewallProfile("iptables", *parse_iptables(iptables)))
            else:
                notes.append("nft and iptables unreadable (not installed or not root)")
        ufw = self._read_text(UFW_CONF_PATH)
        if ufw is not None:
            firewall.append(FirewallProfile("ufw", parse_ufw_conf(ufw)))
        updated_at = 0.0
        for path in APT_HISTORY_PATHS:
            text = _read_maybe_gzip(path) if path.endswith(".gz") else self._read_text(path)
            if text and (updated_at := self._parse_apt_history(text)):
                break
        pending = -1
        notifier = self._read_text(UPDATE_NOTIFIER_PATH)
        if notifier is not None:
            pending = parse_update_notifier(notifier)
        if pending < 0 and self._options.apt_simulation:
            simulation = self._run(
                ["apt-get", "-s", "-o", "Debug::NoLocking=1", "upgrade"], timeout
            )
            if simulation is not None:
                pending = parse_apt_simulation(simulation)
        return Security(
            firewall=tuple(firewall),
            os_updated_at=updated_at,
            os_update_source="apt_history" if updated_at else "",
            pending_security_updates=pending,
            notes=tuple(notes),
        )


# ---- pure parsers ---------------------------------------------------------------------


def _firewall_state(value: object) -> str:
    # GpoBoolean: True/False, or 1/0 when the enum is not turned into text; NotConfigured (2)
    # cannot remain in the active store, and if it does it means nothing certain.
    text = as_text(value).lower()
    return {"true": "on", "1": "on", "false": "off", "0": "off"}.get(text, "unknown")


def _inbound(value: object) -> str:
    text = as_text(value).lower()
    return {"block": "block", "allow": "allow", "4": "block", "2": "allow"}.get(text, "")


def parse_windows_security(document: str) -> Security:
    """Firewall profiles and the last OS update from POWERSHELL_SCRIPT's document."""
    doc = load_document(document, "security")
    notes: list[str] = []
    fw_error = as_text(doc.get("FirewallError"))
    firewall = tuple(
        FirewallProfile(
            name=as_text(p.get("Name")) or "(no name)",
            state=_firewall_state(p.get("Enabled")),
            default_inbound=_inbound(p.get("DefaultInboundAction")),
        )
        for p in as_list(doc.get("FirewallProfile"))
    )
    if fw_error:
        notes.append(f"firewall profiles unreadable: {fw_error}")
    updated_at = 0.0
    source = ""
    for entry in as_list(doc.get("UpdateHistory")):
        when = parse_date(entry.get("Date"))
        if (
            when is not None
            and as_int(entry.get("ResultCode")) in _WU_SUCCEEDED
            and as_int(entry.get("Operation")) == _WU_INSTALLATION
            and not _DEFENDER_UPDATE.search(as_text(entry.get("Title")))
            and when > updated_at
        ):
            updated_at, source = when, "windows_update_history"
    wu_error = as_text(doc.get("UpdateHistoryError"))
    if wu_error:
        notes.append(f"Windows Update history unreadable: {wu_error}")
    if not updated_at:
        # Get-HotFix misses feature and driver updates: a fallback, and said to be one.
        for hotfix in as_list(doc.get("HotFix")):
            when = parse_date(hotfix.get("InstalledOn"))
            if when is not None and when > updated_at:
                updated_at, source = when, "hotfix"
    if not firewall and not updated_at and notes:
        raise ProbeFailed("security status unreadable: " + "; ".join(notes))
    return Security(
        firewall=firewall,
        os_updated_at=max(0.0, updated_at),
        os_update_source=source,
        notes=tuple(notes),
    )


def parse_nft_ruleset(text: str) -> tuple[str, str]:
    """(state, default_inbound) from `nft list ruleset`: on when an input hook filters anything."""
    state, inbound = "off", ""
    in_input = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("chain "):
            in_input = False
        elif line.startswith("type filter hook input"):
            in_input = True
            policy = re.search(r"policy (\w+)", line)
            if policy and policy.group(1) == "drop":
                state, inbound = "on", "block"
            elif policy:
                inbound = inbound or "allow"
        elif in_input and line and line != "}" and not line.startswith(("type ", "policy ")):
            state = "on"
    return state, inbound


def parse_iptables(text: str) -> tuple[str, str]:
    """(state, default_inbound) from `iptables -S INPUT`."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    inbound = ""
    for line in lines:
        if line.startswith("-P INPUT "):
            inbound = "block" if line.split()[-1] in ("DROP", "REJECT") else "allow"
    rules = [line for line in lines if line.startswith("-A ")]
    return ("on" if rules or inbound == "block" else "off"), inbound


def parse_ufw_conf(text: str) -> str:
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key.strip() == "ENABLED":
            return "on" if value.strip().strip("\"'").lower() == "yes" else "off"
    return "unknown"


def parse_apt_history(
    text: str, local_to_epoch: Callable[[time.struct_time], float] = time.mktime
) -> float:
    """End time (Unix seconds) of the newest apt run that upgraded packages; 0 when none."""
    newest = 0.0
    for block in re.split(r"\n\s*\n", text):
        if "\nUpgrade: " not in "\n" + block:
            continue
        match = re.search(r"^End-Date: (\d{4}-\d\d-\d\d)\s+(\d\d:\d\d:\d\d)", block, re.MULTILINE)
        if match:
            try:
                when = local_to_epoch(
                    time.strptime(f"{match.group(1)} {match.group(2)}", "%Y-%m-%d %H:%M:%S")
                )
            except (ValueError, OverflowError):
                continue
            newest = max(newest, when)
    return newest


def parse_update_notifier(text: str) -> int:
    """Security updates from Ubuntu's update-notifier text (English); -1 when not stated."""
    match = re.search(
        r"(\d+) (?:of these )?updates? (?:is|are) (?:a )?(?:standard )?security", text
    )
    if match:
        return int(match.group(1))
    if re.search(r"^0 updates can be applied", text, re.MULTILINE):
        return 0
    return -1


def parse_apt_simulation(text: str) -> int:
    """Packages `apt-get -s upgrade` would take from a security archive."""
    count = 0
    for line in text.splitlines():
        if line.startswith("Inst ") and _SECURITY_ORIGIN.search(line):
            count += 1
    return count


def parse_listeners(
    listeners: Iterable[RawListener], process_name: Callable[[int], str]
) -> tuple[int, tuple[Listener, ...]]:
    """(distinct listening sockets, the risky ones reachable from the network), sorted."""
    seen: set[tuple[str, int]] = set()
    risky: list[Listener] = []
    for raw in listeners:
        key = (raw.address, raw.port)
        if key in seen:
            continue
        seen.add(key)
        service = _risky_service(raw.address, raw.port)
        if service is None:
            continue
        risky.append(
            Listener(
                address=raw.address,
                port=raw.port,
                service=service,
                process=process_name(raw.pid) if raw.pid else "",
            )
        )
    return len(seen), tuple(sorted(risky, key=lambda x: (x.port, x.address)))


def _risky_service(address: str, port: int) -> str | None:
    """The risky service listening there when it is reachable from the network."""
    service = RISKY_PORTS.get(port)
    if service is None:
        return None
    try:
        loopback = ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        loopback = False
    return None if loopback else service


# ---- OS boundary ----------------------------------------------------------------------


def read_listeners() -> list[RawListener]:
    """Listening TCP sockets; without privileges we still see addresses, not every pid."""
    if sys.platform == "linux":
        found = linux.read_proc_listeners()
        # Only a risky listener is reported with its process: find the owners of those alone.
        owners = linux.socket_owners(
            {s.inode for s in found if _risky_service(s.address, s.port) is not None}
        )
        return [RawListener(s.address, s.port, owners.get(s.inode)) for s in found]
    try:
        connections: list[Any] = list(psutil.net_connections(kind="tcp"))
    except (psutil.AccessDenied, OSError) as e:
        raise ProbeFailed(f"listening sockets unreadable: {e}") from e
    return [
        RawListener(address=str(c.laddr.ip), port=int(c.laddr.port), pid=c.pid)
        for c in connections
        if c.status == psutil.CONN_LISTEN and c.laddr
    ]


def _process_name(pid: int) -> str:
    try:
        return str(psutil.Process(pid).name())
    except (psutil.Error, OSError):
        return ""


def _run_command(argv: list[str], timeout: float) -> str | None:
    """stdout of a command, or None when it is missing, fails or takes too long."""
    try:
        done = subprocess.run(
            argv, capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", errors="replace")


def _read_maybe_gzip(path: str) -> str | None:
    import gzip  # noqa: PLC0415 (read only when the current apt history has no upgrade)

    try:
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
            return f.read()
    except (OSError, EOFError):
        return None
