"""Antivirus probe: SecurityCenter2 and Defender on Windows, clamd and known processes on Linux."""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import psutil

from agent.errors import ProbeFailed
from agent.model import Antivirus, AntivirusProduct, Clamd, Defender
from agent.platform import linux, windows
from agent.platform.clamd import (
    ClamdAddress,
    ClamdClient,
    ClamdUnreachable,
    eicar,
    parse_scan_reply,
    parse_version_reply,
    read_database_built_at,
)
from agent.platform.psbatch import Query
from agent.platform.psjson import as_bool, as_int, as_list, as_text, load_document, parse_date
from agent.probes.base import Probe, ProbeOptions
from agent.settings import Duration, Section, option

__all__ = [
    "ONACCESS_PROCESS",
    "POWERSHELL_SCRIPT",
    "SIGNATURE_MAX_AGE",
    "AntivirusOptions",
    "AntivirusProbe",
    "ClamdLike",
    "ClamdOptions",
    "decode_product_state",
    "parse_clamd_status",
    "parse_defender",
    "parse_linux_antivirus",
    "parse_windows_antivirus",
    "read_process_names",
]

# Defender calls its signatures out of date after 7 days (its ASSignatureDue default);
# the same bar applies to clamd so both OSes read alike.
SIGNATURE_MAX_AGE = 7 * 86400.0

# clamd scans on demand only; on-access (real-time) scanning is this separate daemon.
ONACCESS_PROCESS = "clamonacc"

# One call per cycle. Each source is caught on its own so that a missing SecurityCenter2
# (Windows Server) or a Defender that a third-party product switched off still leaves the other.
POWERSHELL_SCRIPT = "; ".join(
    [
        "$ErrorActionPreference = 'Stop'",
        "function D($d) { if ($d) { ([datetime]$d).ToUniversalTime().ToString('o') } }",
        "$av = $null; $avError = $null; $mp = $null; $mpError = $null",
        "try { $av = @(Get-CimInstance -Namespace root/SecurityCenter2"
        " -ClassName AntiVirusProduct | Select-Object -Property displayName, productState) }"
        " catch { $avError = $_.Exception.Message }",
        "try { $s = Get-MpComputerStatus; $mp = [ordered]@{"
        " AMServiceEnabled = $s.AMServiceEnabled; AntivirusEnabled = $s.AntivirusEnabled;"
        " RealTimeProtectionEnabled = $s.RealTimeProtectionEnabled;"
        " IsTamperProtected = $s.IsTamperProtected; AMRunningMode = $s.AMRunningMode;"
        " AntivirusSignatureVersion = $s.AntivirusSignatureVersion;"
        " AntivirusSignatureLastUpdated = (D $s.AntivirusSignatureLastUpdated);"
        " AntivirusSignatureAge = $s.AntivirusSignatureAge;"
        " QuickScanAge = $s.QuickScanAge; FullScanAge = $s.FullScanAge } }"
        " catch { $mpError = $_.Exception.Message }",
        "[ordered]@{ AntiVirusProduct = $av; AntiVirusProductError = $avError;"
        " MpComputerStatus = $mp; MpComputerStatusError = $mpError }"
        " | ConvertTo-Json -Compress -Depth 4",
    ]
)

# productState nibbles (documented by nobody, agreed on by everybody who decoded them).
_ACTIVITY = {0x0: "off", 0x1: "on", 0x2: "snoozed", 0x3: "expired"}
_OWNER = {0x0: "third_party", 0x1: "microsoft"}
_SIGNATURES = {0x0: "up_to_date", 0x1: "out_of_date"}

_NOT_PROTECTING = frozenset({"off", "snoozed", "expired"})
_NEVER = 4294967295  # (uint32)-1: Defender's "no scan ever ran"


class ClamdOptions(Section):
    """Where clamd listens and how often the EICAR self-test runs (Linux)."""

    enabled: bool = True
    socket: str = "/var/run/clamav/clamd.ctl"
    # "host:port" to use TCP instead of the unix socket.
    tcp: str | None = None
    database_dir: Path = Path("/var/lib/clamav")
    timeout: Duration = option(default=10.0, gt=0)
    # 0 turns the self-test off.
    self_test_interval: Duration = option(default=86400.0, ge=0)

    def address(self) -> ClamdAddress:
        if self.tcp is None:
            return ClamdAddress(path=self.socket)
        host, sep, port = self.tcp.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"clamd.tcp must be host:port, not {self.tcp!r}")
        return ClamdAddress(host=host.strip("[]"), port=int(port))


class AntivirusOptions(ProbeOptions):
    # Posture changes slowly and one Windows PowerShell call costs a few hundred ms: every
    # 5 minutes is plenty for compliance and keeps the agent's average CPU low.
    interval: Duration | None = option(default=300.0, gt=0)
    clamd: ClamdOptions = option(default_factory=ClamdOptions)
    # Other products on Linux: display name -> process names that mean it is running.
    processes: dict[str, list[str]] = option(default_factory=dict)
    powershell_timeout: Duration = option(default=60.0, gt=0)


class ClamdLike(Protocol):
    def ping(self) -> None: ...
    def version(self) -> str: ...
    def instream(self, data: bytes) -> str: ...


class AntivirusProbe(Probe[AntivirusOptions]):
    """Reports every antivirus product and whether it protects the machine now."""

    name: ClassVar[str] = "antivirus"

    def __init__(
        self,
        options: AntivirusOptions | None = None,
        *,
        powershell: windows.PowerShell | None = None,
        system: Callable[[], str] = platform.system,
        clamd: ClamdLike | None = None,
        process_names: Callable[[], set[str]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(options)
        clamd_options = self._options.clamd
        self._clamd: ClamdLike = clamd or ClamdClient(
            clamd_options.address(), clamd_options.timeout
        )
        self._powershell = powershell or windows.shared_batch()
        self._system = system
        self._process_names = process_names or read_process_names
        self._clock = clock
        # The self-test result stands until the next one is due.
        self._self_test: tuple[str, str, float] = ("not_run", "", 0.0)

    def _query(self) -> Query:
        return Query(self.name, POWERSHELL_SCRIPT, self._options.powershell_timeout)

    def prepare(self) -> None:
        if self._system() == "Windows":
            self._powershell.declare(self._query())

    def collect(self) -> Antivirus:
        system = self._system()
        if system == "Windows":
            return parse_windows_antivirus(self._powershell.result(self._query()))
        if system == "Linux":
            clamd = self._read_clamd() if self._options.clamd.enabled else None
            return parse_linux_antivirus(
                clamd, self._options.processes, self._process_names(), self._clock()
            )
        raise ProbeFailed(f"antivirus probe does not support {system or 'this OS'}")

    def _read_clamd(self) -> Clamd:
        try:
            self._clamd.ping()
            version = self._clamd.version()
        except ClamdUnreachable as e:
            # The self-test result belonged to the daemon that stopped.
            self._self_test = ("not_run", "", 0.0)
            return Clamd(status="not_running", reason=str(e))
        now = self._clock()
        interval = self._options.clamd.self_test_interval
        last_at = self._self_test[2]
        if interval > 0 and (last_at == 0.0 or now - last_at >= interval):
            self._self_test = self._run_self_test(now)
        return parse_clamd_status(
            version,
            read_database_built_at(self._options.clamd.database_dir),
            self._self_test,
        )

    def _run_self_test(self, now: float) -> tuple[str, str, float]:
        try:
            result = parse_scan_reply(self._clamd.instream(eicar()))
        except ProbeFailed as e:
            return ("error", str(e), now)
        if result.detected:
            return ("detected", result.signature, now)
        return ("missed", "EICAR test string streamed to clamd was not detected", now)


# ---- pure parsers ---------------------------------------------------------------------


def decode_product_state(product_state: int) -> tuple[str, str, str]:
    """(state, owner, signatures) of a SecurityCenter2 productState; "unknown" for odd nibbles."""
    state = _ACTIVITY.get((product_state >> 12) & 0xF, "unknown")
    owner = _OWNER.get((product_state >> 8) & 0xF, "unknown")
    signatures = _SIGNATURES.get((product_state >> 4) & 0xF, "unknown")
    return state, owner, signatures


def parse_defender(status: Mapping[str, Any] | None, error: str) -> Defender | None:
    """Defender from Get-MpComputerStatus; "unavailable" (never "off") when the cmdlet failed."""
    if status is None:
        return Defender(status="unavailable", reason=error) if error else None

    def age(key: str) -> int:
        value = as_int(status.get(key))
        return -1 if value is None or value < 0 or value >= _NEVER else value

    updated = parse_date(status.get("AntivirusSignatureLastUpdated"))
    return Defender(
        status="ok",
        am_service_enabled=as_bool(status.get("AMServiceEnabled")) is True,
        antivirus_enabled=as_bool(status.get("AntivirusEnabled")) is True,
        realtime_protection_enabled=as_bool(status.get("RealTimeProtectionEnabled")) is True,
        tamper_protected=as_bool(status.get("IsTamperProtected")) is True,
        running_mode=as_text(status.get("AMRunningMode")),
        signature_version=as_text(status.get("AntivirusSignatureVersion")),
        signature_updated_at=updated if updated and updated > 0 else 0.0,
        signature_age_days=age("AntivirusSignatureAge"),
        quick_scan_age_days=age("QuickScanAge"),
        full_scan_age_days=age("FullScanAge"),
    )


def _defender_protects(d: Defender | None) -> bool:
    # Passive / SxS passive / EDR block mode: installed, but another product is the antivirus.
    return (
        d is not None
        and d.status == "ok"
        and d.am_service_enabled
        and d.antivirus_enabled
        and not d.running_mode.lower().startswith(("passive", "sxs", "edr"))
    )


def parse_windows_antivirus(document: str) -> Antivirus:
    """Parse POWERSHELL_SCRIPT's document; ProbeFailed when neither source could be read."""
    doc = load_document(document, "antivirus")
    sc_error = as_text(doc.get("AntiVirusProductError"))
    mp_error = as_text(doc.get("MpComputerStatusError"))
    mp = doc.get("MpComputerStatus")
    defender = parse_defender(mp if isinstance(mp, dict) else None, mp_error)
    has_sc = "AntiVirusProduct" in doc and not sc_error
    if not has_sc and (defender is None or defender.status != "ok"):
        reasons = [r for r in (sc_error, mp_error) if r] or ["the document has neither source"]
        raise ProbeFailed("antivirus status unreadable: " + "; ".join(reasons))
    notes: list[str] = []
    products: list[AntivirusProduct] = []
    if has_sc:
        for item in as_list(doc.get("AntiVirusProduct")):
            raw = as_int(item.get("productState"))
            if raw is None or not 0 <= raw < 1 << 32:
                state, owner, signatures, raw = "unknown", "unknown", "unknown", 0
            else:
                state, owner, signatures = decode_product_state(raw)
            products.append(
                AntivirusProduct(
                    name=as_text(item.get("displayName")) or "(no name)",
                    source="security_center",
                    state=state,
                    product_state=raw,
                    owner=owner,
                    signatures=signatures,
                )
            )
    elif defender is not None:  # always so here: without SecurityCenter2, Defender was read
        notes.append(
            "SecurityCenter2 not available (Windows Server has none): Defender status only"
            + (f" ({sc_error})" if sc_error else "")
        )
        products.append(_defender_product(defender))
    if defender is not None and defender.status == "unavailable":
        notes.append(f"Get-MpComputerStatus failed, Defender unavailable: {defender.reason}")
    # SecurityCenter2's "on" is real-time protection on; Defender says so itself.
    if any(p.state == "on" and p.source == "security_center" for p in products):
        realtime = "on"
    elif defender is not None and _defender_protects(defender):
        realtime = "on" if defender.realtime_protection_enabled else "off"
    elif products and all(p.state in _NOT_PROTECTING for p in products):
        realtime = "off"
    else:
        realtime = "unknown"
    signature_updated_at = (
        defender.signature_updated_at
        if defender is not None and _defender_protects(defender)
        else 0.0
    )
    return Antivirus(
        products=tuple(products),
        defender=defender,
        realtime=realtime,
        signature_updated_at=signature_updated_at,
        notes=tuple(notes),
    )


def _defender_product(d: Defender) -> AntivirusProduct:
    signatures = "unknown"
    if d.signature_age_days >= 0:
        stale = d.signature_age_days * 86400.0 > SIGNATURE_MAX_AGE
        signatures = "out_of_date" if stale else "up_to_date"
    return AntivirusProduct(
        name="Microsoft Defender Antivirus",
        source="defender",
        state="on" if _defender_protects(d) else "off",
        owner="microsoft",
        signatures=signatures,
    )


def parse_clamd_status(
    version_reply: str, database_built_at: float, self_test: tuple[str, str, float]
) -> Clamd:
    """A running clamd: its VERSION reply decoded, the daily header's build time, the self-test."""
    version = parse_version_reply(version_reply)
    outcome, detail, at = self_test
    return Clamd(
        status="running",
        version_reply=version_reply.strip(),
        engine_version=version.engine,
        database_version=version.database_version,
        database_date=version.database_date,
        database_built_at=database_built_at,
        self_test=outcome,
        self_test_detail=detail,
        self_test_at=at,
    )


def parse_linux_antivirus(
    clamd: Clamd | None,
    processes: Mapping[str, Sequence[str]],
    running: Iterable[str],
    now: float,
) -> Antivirus:
    """ClamAV (when watched) and every configured product, judged by its processes."""
    running_set = set(running)
    products: list[AntivirusProduct] = []
    signature_updated_at = 0.0
    if clamd is not None:
        signatures = "unknown"
        if clamd.status == "running":
            # VERSION's date is the loaded database's; the header is what is on disk.
            signature_updated_at = clamd.database_date or clamd.database_built_at
            if signature_updated_at:
                fresh = now - signature_updated_at <= SIGNATURE_MAX_AGE
                signatures = "up_to_date" if fresh else "out_of_date"
        products.append(
            AntivirusProduct(
                name="ClamAV",
                source="clamd",
                state="on" if clamd.status == "running" else "not_running",
                signatures=signatures,
            )
        )
    for name, names in sorted(processes.items()):
        found = any(n in running_set for n in names)
        products.append(
            AntivirusProduct(name=name, source="process", state="on" if found else "not_running")
        )
    return Antivirus(
        products=tuple(products),
        clamd=clamd,
        realtime=_linux_realtime(clamd, products, running_set),
        signature_updated_at=signature_updated_at,
    )


def _linux_realtime(
    clamd: Clamd | None, products: Sequence[AntivirusProduct], running: set[str]
) -> str:
    """Third-party Linux products scan on access; clamd does only with clamonacc beside it.
    A running clamd without clamonacc, and no third-party product expected, is on-demand by
    its setup, not switched off: "not_configured" (its own, lower-severity rule)."""
    clamd_running = clamd is not None and clamd.status == "running"
    third_party = [p for p in products if p.source == "process"]
    if any(p.state == "on" for p in third_party) or (clamd_running and ONACCESS_PROCESS in running):
        return "on"
    if clamd_running and not third_party:
        return "not_configured"
    return "off" if products else "unknown"


# ---- OS boundary ----------------------------------------------------------------------


def read_process_names() -> set[str]:
    if sys.platform == "linux":
        return linux.process_names()
    names: set[str] = set()
    for proc in psutil.process_iter(["name"]):
        name = proc.info.get("name")
        if name:
            names.add(str(name))
    return names
