"""Software inventory probe: installed programs (Uninstall registry keys, dpkg, rpm), the list
sent only when it changed, the hash in every report."""

from __future__ import annotations

import platform
import shutil
import time
import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import ClassVar

from agent.errors import ProbeFailed
from agent.model import InstalledProgram, Software
from agent.platform import windows
from agent.platform.command import Completed, run_command
from agent.platform.psbatch import Query
from agent.platform.psjson import as_list, as_text, load_document
from agent.probes.base import Probe, ProbeOptions
from agent.settings import Duration, option

__all__ = [
    "DPKG_FORMAT",
    "POWERSHELL_SCRIPT",
    "RPM_FORMAT",
    "SoftwareOptions",
    "SoftwareProbe",
    "inventory_hash",
    "parse_dpkg",
    "parse_rpm",
    "parse_windows_programs",
]

# Both registry views (64-bit and WOW6432Node) and every loaded user hive (the service runs as
# LocalSystem, whose own HKCU holds nobody's programs). Entries without DisplayName, system
# components and updates of another entry (ParentKeyName) are what "Apps & features" hides too.
POWERSHELL_SCRIPT = "; ".join(
    [
        "$ErrorActionPreference = 'Stop'",
        "$key = '\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\*'",
        "$views = @(@('hklm64', \"HKLM:\\SOFTWARE$key\"),"
        " @('hklm32', \"HKLM:\\SOFTWARE\\WOW6432Node$key\"),"
        " @('hkcu', \"Registry::HKEY_USERS\\*\\Software$key\"))",
        "$programs = @(foreach ($v in $views) {"
        " Get-ItemProperty -Path $v[1] -ErrorAction SilentlyContinue"
        " | Where-Object { $_.DisplayName -and $_.SystemComponent -ne 1"
        " -and -not $_.ParentKeyName }"
        " | ForEach-Object { [ordered]@{ Origin = $v[0]; DisplayName = $_.DisplayName;"
        " DisplayVersion = $_.DisplayVersion; Publisher = $_.Publisher;"
        " InstallDate = $_.InstallDate } } })",
        "[ordered]@{ Programs = $programs } | ConvertTo-Json -Compress -Depth 3",
    ]
)
DPKG_FORMAT = (
    "${db:Status-Abbrev}\\t${binary:Package}\\t${Version}\\t${Maintainer}"
    "\\t${db-fsys:Last-Modified}\\n"
)
RPM_FORMAT = "%{NAME}\\t%{VERSION}-%{RELEASE}\\t%{VENDOR}\\t%{INSTALLTIME}\\n"


class SoftwareOptions(ProbeOptions):
    # Programs change when someone installs one; an hour is soon enough for compliance.
    interval: Duration | None = option(default=3600.0, gt=0)
    # The whole list also goes this often when unchanged, so a collector that lost it (a store
    # restored from an older backup, a spool evicted before delivery) has it again.
    full_every: Duration = option(default=86400.0, gt=0)
    timeout: Duration = option(default=120.0, gt=0)


class SoftwareProbe(Probe[SoftwareOptions]):
    """The installed programs; the full list on change, at start and every `full_every`."""

    name: ClassVar[str] = "software"

    def __init__(
        self,
        options: SoftwareOptions | None = None,
        *,
        run: Callable[[list[str], float], Completed] = run_command,
        powershell: windows.PowerShell | None = None,
        which: Callable[[str], str | None] = shutil.which,
        system: Callable[[], str] = platform.system,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(options)
        self._run = run
        self._powershell = powershell or windows.shared_batch()
        self._which = which
        self._system = system
        self._clock = clock
        self._sent_hash = ""  # of the last full list handed to the spool
        self._sent_at = 0.0

    def collect(self) -> Software:
        source, programs = self._read()
        digest = inventory_hash(programs)
        now = self._clock()
        full = digest != self._sent_hash or now - self._sent_at >= self._options.full_every
        if full:
            self._sent_hash, self._sent_at = digest, now
        return Software(
            hash=digest,
            count=len(programs),
            complete=full,
            source=source,
            programs=tuple(programs) if full else (),
        )

    def _query(self) -> Query:
        return Query(self.name, POWERSHELL_SCRIPT, self._options.timeout)

    def prepare(self) -> None:
        if self._system() == "Windows":
            self._powershell.declare(self._query())

    def _read(self) -> tuple[str, list[InstalledProgram]]:
        timeout = self._options.timeout
        if self._system() == "Windows":
            document = self._powershell.result(self._query())
            return "windows_registry", parse_windows_programs(document)
        if self._which("dpkg-query"):
            done = self._run(["dpkg-query", "--show", "--showformat", DPKG_FORMAT], timeout)
            if done.returncode != 0:
                raise ProbeFailed(f"dpkg-query failed: {' '.join(done.stderr.split())[:300]}")
            return "dpkg", parse_dpkg(done.stdout)
        if self._which("rpm"):
            done = self._run(["rpm", "--query", "--all", "--queryformat", RPM_FORMAT], timeout)
            if done.returncode != 0:
                raise ProbeFailed(f"rpm failed: {' '.join(done.stderr.split())[:300]}")
            return "rpm", parse_rpm(done.stdout)
        raise ProbeFailed("no package database: neither dpkg-query nor rpm is installed")


# ---- pure parsers ---------------------------------------------------------------------


def inventory_hash(programs: Sequence[InstalledProgram]) -> str:
    """A 64-bit change detector of the list (CRC-32 and Adler-32), in an order and form that do
    not depend on how it was read. Not a signature: nothing trusts it, it only tells that the
    list changed. zlib, not hashlib: the service maps zlib for gzip already, and hashlib would
    map OpenSSL into it (docs/performance.md, agent memory).

    Install dates are left out: dpkg moves them on a reconfigure that changes nothing."""
    lines = sorted(f"{p.origin}\t{p.name}\t{p.version}\t{p.publisher}" for p in programs)
    data = "\n".join(lines).encode()
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


def _unix(text: str) -> float:
    try:
        return float(text) if text.strip() else 0.0
    except ValueError:
        return 0.0


def _person(maintainer: str) -> str:
    # "Debian Adduser Developers <adduser@packages.debian.org>": the name is the publisher.
    return maintainer.split("<", 1)[0].strip()


def parse_dpkg(text: str) -> list[InstalledProgram]:
    """DPKG_FORMAT lines; only packages whose status is installed ("ii", "hi")."""
    programs = []
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) < 5 or fields[0].strip() not in ("ii", "hi"):
            continue
        programs.append(
            InstalledProgram(
                name=fields[1],
                version=fields[2],
                publisher=_person(fields[3]),
                installed_at=_unix(fields[4]),
                origin="dpkg",
            )
        )
    return programs


def parse_rpm(text: str) -> list[InstalledProgram]:
    """RPM_FORMAT lines (gpg-pubkey entries are keys, not programs)."""
    programs = []
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) < 4 or fields[0] == "gpg-pubkey":
            continue
        vendor = "" if fields[2] == "(none)" else fields[2]
        programs.append(
            InstalledProgram(
                name=fields[0],
                version=fields[1],
                publisher=vendor,
                installed_at=_unix(fields[3]),
                origin="rpm",
            )
        )
    return programs


def _install_date(value: object) -> float:
    """InstallDate as installers write it: "20240115" (most), sometimes "15/01/2024"."""
    text = as_text(value)
    for layout in ("%Y%m%d", "%d/%m/%Y", "%m/%d/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, layout).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return 0.0


def parse_windows_programs(document: str) -> list[InstalledProgram]:
    """The POWERSHELL_SCRIPT document; one entry per Uninstall key shown to users."""
    doc = load_document(document, "software")
    return [
        InstalledProgram(
            name=as_text(p.get("DisplayName")),
            version=as_text(p.get("DisplayVersion")),
            publisher=as_text(p.get("Publisher")),
            installed_at=_install_date(p.get("InstallDate")),
            origin=as_text(p.get("Origin")),
        )
        for p in as_list(doc.get("Programs"))
        if as_text(p.get("DisplayName"))
    ]
