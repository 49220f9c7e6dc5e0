"""One PowerShell run per cycle: the script builder and output splitter on written batch outputs,
the capped process edge with a stand-in executable, PowerShellBatch, and the runner's cycle."""

from __future__ import annotations

import json
import logging
import re
import stat
import subprocess
from pathlib import Path

import pytest

from agent.errors import ProbeFailed
from agent.platform import icmp, psbatch
from agent.platform.psbatch import (
    COMMAND_LINE_LIMIT,
    STARTUP_ALLOWANCE,
    Outcome,
    Query,
    build_script,
    outer_timeout,
    split_output,
)
from agent.platform.windows import (
    PowerShellBatch,
    RawRun,
    decode_batch_output,
    run_batch,
)
from agent.probes import PROBES
from agent.probes.antivirus import POWERSHELL_SCRIPT as ANTIVIRUS_SCRIPT
from agent.probes.antivirus import AntivirusProbe
from agent.probes.base import Probe
from agent.probes.disk_health import POWERSHELL_SCRIPT as DISK_SCRIPT
from agent.probes.disk_health import DiskHealthProbe
from agent.probes.hardware import POWERSHELL_SCRIPT as HARDWARE_SCRIPT
from agent.probes.hardware import THERMAL_SCRIPT, HardwareProbe
from agent.probes.link import POWERSHELL_SCRIPT as LINK_SCRIPT
from agent.probes.link import LinkProbe
from agent.probes.meeting_room import POWERSHELL_SCRIPT as ROOM_SCRIPT
from agent.probes.security import POWERSHELL_SCRIPT as SECURITY_SCRIPT
from agent.probes.security import SecurityProbe
from agent.probes.software import POWERSHELL_SCRIPT as SOFTWARE_SCRIPT
from agent.probes.software import SoftwareProbe
from agent.runner import collect

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BATCH = FIXTURES / "psbatch"

# Every probe's query as the agent declares it, with its default budget.
ALL_QUERIES = [
    Query("hardware", HARDWARE_SCRIPT, 30.0),
    Query("link", LINK_SCRIPT, 15.0),
    Query("antivirus", ANTIVIRUS_SCRIPT, 60.0),
    Query("security", SECURITY_SCRIPT, 60.0),
    Query("meeting_room", ROOM_SCRIPT, 30.0),
    Query("disk_health", DISK_SCRIPT, 30.0),
    Query("software", SOFTWARE_SCRIPT, 120.0),
]
CYCLE = [q for q in ALL_QUERIES if q.name != "meeting_room"]

# The hand-written per-probe documents (their READMEs say where each comes from).
DOCUMENTS = {
    "hardware": FIXTURES / "hardware" / "windows11_vi-VN.json",
    "link": FIXTURES / "link" / "windows_link_vi-VN.json",
    "antivirus": FIXTURES / "antivirus" / "win10-vi-defender-healthy.json",
    "security": FIXTURES / "security" / "win10-vi-security.json",
    "disk_health": FIXTURES / "disk_health" / "windows_physicaldisk.json",
    "software": FIXTURES / "software" / "windows_uninstall.json",
}


def _document(name: str) -> str:
    return DOCUMENTS[name].read_text(encoding="utf-8-sig").strip()


def _names_in(script: str) -> list[str]:
    return re.findall(r"@\{ Name = '([a-z_]+)'", script)


# ---- build_script -------------------------------------------------------------------------


def test_script_carries_each_query_once_quoted_with_its_budget() -> None:
    script = build_script([Query("a", "Write-Output 'it''s'", 2.5), Query("b", "1", 0.0001)])
    assert _names_in(script) == ["a", "b"]
    # A quote inside a query is doubled, never ends the string early.
    assert "Script = 'Write-Output ''it''''s'''" in script
    assert "Budget = 2500;" in script and "Budget = 1;" in script  # at least 1 ms
    assert script.isascii() and "\n" not in script  # one line, as -Command always was


def test_every_probe_query_together_fits_one_windows_command_line() -> None:
    script = build_script(ALL_QUERIES)
    assert len(script) <= COMMAND_LINE_LIMIT
    assert _names_in(script) == [q.name for q in ALL_QUERIES]
    # The thermal-only script is the other one hardware can declare.
    assert len(build_script([Query("hardware", THERMAL_SCRIPT, 30.0), *CYCLE[1:]])) < len(script)


@pytest.mark.parametrize(
    ("queries", "reason"),
    [
        ([], "at least one query"),
        ([Query("a", "1", 1.0), Query("a", "2", 1.0)], "appears twice"),
        ([Query("a", "Write-Output 'Máy'", 1.0)], "must be ASCII"),
        ([Query("a", "#" * COMMAND_LINE_LIMIT, 1.0)], "command line"),
    ],
)
def test_script_that_cannot_be_built_says_why(queries: list[Query], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        build_script(queries)


def test_outer_timeout_is_the_longest_budget_and_the_start() -> None:
    # The queries run at once in the batch, so the longest one bounds the run.
    assert outer_timeout(ALL_QUERIES) == 120.0 + STARTUP_ALLOWANCE


# ---- split_output on written outputs -------------------------------------------------------


def test_a_cycle_splits_into_each_probes_document_or_error() -> None:
    text = (BATCH / "batch-cycle.txt").read_text(encoding="ascii")
    outcomes = split_output(text, CYCLE)
    assert list(outcomes) == [q.name for q in CYCLE]
    for name in ("antivirus", "link", "disk_health", "software", "hardware"):
        assert outcomes[name] == Outcome(_document(name), "", outcomes[name].elapsed_ms)
        assert json.loads(outcomes[name].document or "")
    security = outcomes["security"]
    assert security.document is None and security.elapsed_ms == 1430
    # Escaped in the output, Vietnamese again once read.
    assert security.error.startswith("Truy cập bị từ chối.")


def test_a_killed_run_keeps_the_lines_written_before_it_ended() -> None:
    text = (BATCH / "batch-killed.txt").read_text(encoding="ascii")
    failure = "PowerShell did not finish within 150 s"
    outcomes = split_output(text, CYCLE, failure)
    assert outcomes["antivirus"].document == _document("antivirus")
    assert outcomes["link"].error == "did not finish within its budget of 15 s"
    # The cut line and the queries never reached take the run's reason.
    for name in ("software", "security", "disk_health", "hardware"):
        assert outcomes[name] == Outcome(None, failure)


def test_missing_lines_without_a_run_failure_say_the_output_was_cut() -> None:
    outcomes = split_output("WARNING: nothing else\n##canhgac {not json", CYCLE[:1])
    assert "no result" in outcomes["hardware"].error


def test_constrained_language_mode_is_each_querys_error() -> None:
    text = (BATCH / "batch-constrained.txt").read_text(encoding="ascii")
    outcomes = split_output(text, [Query("antivirus", "1", 1), Query("security", "1", 1)])
    assert all("ConstrainedLanguage" in o.error and o.document is None for o in outcomes.values())


def test_raw_code_page_bytes_make_that_line_garbled_and_leave_the_others() -> None:
    text = decode_batch_output((BATCH / "batch-codepage.bin").read_bytes())
    outcomes = split_output(text, [Query("antivirus", "1", 1), Query("security", "1", 1)])
    assert outcomes["antivirus"].document == _document("antivirus")
    assert "not ASCII" in outcomes["security"].error


def test_utf16_output_with_a_byte_order_mark_is_read() -> None:
    text = decode_batch_output((BATCH / "batch-utf16.bin").read_bytes())
    assert split_output(text, [Query("antivirus", "1", 1)])["antivirus"].document == _document(
        "antivirus"
    )


@pytest.mark.parametrize(
    "line",
    [
        '##canhgac {"query":"a"}',  # neither document nor error
        '##canhgac {"query":"a","document":{"x":1}}',  # a document that is not text
        '##canhgac ["a"]',
        '##canhgac {"query":7,"document":"{}"}',
    ],
)
def test_result_lines_of_the_wrong_shape_are_never_documents(line: str) -> None:
    assert split_output(line, [Query("a", "1", 1)])["a"].document is None


def test_first_line_of_a_query_wins_and_unknown_names_are_ignored() -> None:
    text = (
        '##canhgac {"query":"x","document":"{}"}\n'
        '##canhgac {"query":"a","document":"{\\"n\\":1}","ms":true}\n'
        '##canhgac {"query":"a","document":"{\\"n\\":2}"}\n'
    )
    outcomes = split_output(text, [Query("a", "1", 1)])
    assert outcomes == {"a": Outcome('{"n":1}', "", None)}  # a bool is no elapsed time


# ---- run_batch with a stand-in executable -------------------------------------------------


def _fake_powershell(tmp_path: Path, body: str) -> str:
    exe = tmp_path / "powershell"
    exe.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return str(exe)


def test_run_batch_passes_the_flags_and_returns_the_bytes(tmp_path: Path) -> None:
    exe = _fake_powershell(
        tmp_path,
        'printf "%s\\n" "$@" > "$(dirname "$0")/argv"\nprintf "##canhgac {}\\r\\n"; echo oops >&2',
    )
    raw = run_batch("Get-Date", 10.0, executable=exe)
    assert raw == RawRun(b"##canhgac {}\r\n", b"oops\n", 0, "")
    argv = (tmp_path / "argv").read_text(encoding="utf-8").splitlines()
    assert argv == ["-NoProfile", "-NonInteractive", "-Command", "Get-Date"]


def test_run_batch_timeout_keeps_what_was_written(tmp_path: Path) -> None:
    # exec: the shell must not leave a child holding the output pipe after the kill.
    exe = _fake_powershell(tmp_path, 'printf "##canhgac {\\"query\\":\\"a\\"}\\n"\nexec sleep 30')
    raw = run_batch("x", 0.5, executable=exe)
    assert raw.failure == "PowerShell did not finish within 0.5 s"
    assert raw.stdout == b'##canhgac {"query":"a"}\n'


def test_run_batch_output_past_the_bound_is_cut_and_the_process_ended(tmp_path: Path) -> None:
    exe = _fake_powershell(tmp_path, "exec yes canhgac")
    raw = run_batch("x", 30.0, max_bytes=100_000, executable=exe)
    assert raw.failure == "PowerShell wrote more than 100000 bytes; its output was cut there"
    assert len(raw.stdout) == 100_000


def test_run_batch_missing_powershell(tmp_path: Path) -> None:
    with pytest.raises(ProbeFailed, match="PowerShell not found"):
        run_batch("x", 1.0, executable=str(tmp_path / "no-such-powershell"))


def test_run_batch_that_cannot_start(tmp_path: Path) -> None:
    exe = tmp_path / "powershell"
    exe.write_text("not a program", encoding="utf-8")  # no execute bit: PermissionError
    with pytest.raises(ProbeFailed, match="could not start"):
        run_batch("x", 1.0, executable=str(exe))


def test_run_batch_blocked_by_policy_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    # What CreateProcess gives when AppLocker or a Software Restriction Policy forbids the
    # program (ERROR_ACCESS_DISABLED_BY_POLICY); only Windows sets winerror, so it is built here.
    def refuse(*args: object, **kwargs: object) -> None:
        error = OSError(13, "This program is blocked by group policy")
        error.winerror = 1260  # type: ignore[attr-defined]
        raise error

    monkeypatch.setattr(subprocess, "Popen", refuse)
    with pytest.raises(ProbeFailed, match="PowerShell blocked by policy"):
        run_batch("x", 1.0)


# ---- PowerShellBatch ------------------------------------------------------------------------


class SimulatedPowerShell:
    """Answers a batch script as the real one would: one escaped result line per query named
    in it, the recorded document by name; `errors` and `silent` names fail or never answer."""

    def __init__(self, *, errors: dict[str, str] | None = None, silent: set[str] | None = None):
        self.scripts: list[str] = []
        self.errors = errors or {}
        self.silent = silent or set()
        self.exit: RawRun | None = None
        self.failure = ""

    def __call__(self, script: str, timeout: float) -> RawRun:
        self.scripts.append(script)
        if self.exit is not None:
            return self.exit
        lines = []
        for name in _names_in(script):
            if name in self.silent:
                continue
            entry: dict[str, object] = {"query": name}
            if name in self.errors:
                entry["error"] = self.errors[name]
            else:
                entry["document"] = _document(name)
            lines.append("##canhgac " + json.dumps(entry, ensure_ascii=True))
        return RawRun("\r\n".join(lines).encode("ascii"), failure=self.failure)


def test_declared_queries_run_once_on_the_first_result() -> None:
    run = SimulatedPowerShell()
    batch = PowerShellBatch(run)
    for query in CYCLE:
        batch.declare(query)
    assert run.scripts == []  # nothing runs until a probe asks
    assert batch.result(CYCLE[2]) == _document("antivirus")
    rest = [q for q in CYCLE if q.name != "antivirus"]
    assert [batch.result(q) for q in rest] == [_document(q.name) for q in rest]
    assert len(run.scripts) == 1 and _names_in(run.scripts[0]) == [q.name for q in CYCLE]
    batch.result(CYCLE[2])  # taken once: a second ask runs it again
    assert len(run.scripts) == 2


def test_a_failing_query_fails_only_its_probe() -> None:
    run = SimulatedPowerShell(errors={"security": "Truy cập bị từ chối."}, silent={"link"})
    batch = PowerShellBatch(run)
    for query in CYCLE:
        batch.declare(query)
    with pytest.raises(ProbeFailed, match=r"^PowerShell: Truy cập bị từ chối\.$"):
        batch.result(CYCLE[3])
    with pytest.raises(ProbeFailed, match="wrote no result"):
        batch.result(CYCLE[1])
    assert batch.result(CYCLE[4]) == _document("disk_health")
    assert len(run.scripts) == 1


def test_an_undeclared_query_runs_then_with_whatever_is_pending() -> None:
    run = SimulatedPowerShell()
    batch = PowerShellBatch(run)
    assert batch.result(CYCLE[0]) == _document("hardware")  # a probe collected on its own
    batch.declare(CYCLE[2])
    assert batch.result(CYCLE[3]) == _document("security")
    assert batch.result(CYCLE[2]) == _document("antivirus")
    assert [_names_in(s) for s in run.scripts] == [["hardware"], ["antivirus", "security"]]


def test_a_new_cycle_drops_what_the_last_one_left_and_a_changed_script_runs_again() -> None:
    run = SimulatedPowerShell()
    batch = PowerShellBatch(run)
    batch.declare(CYCLE[0])
    batch.declare(CYCLE[1])
    batch.result(CYCLE[1])  # hardware's document is left untaken
    batch.declare(CYCLE[2])  # the next cycle
    batch.result(CYCLE[2])
    batch.result(CYCLE[0])  # not served from the cycle before: run again
    thermal = Query("hardware", THERMAL_SCRIPT, 30.0)
    batch.declare(CYCLE[0])
    batch.result(thermal)  # declared with the identity script, asked with the thermal one
    assert [_names_in(s) for s in run.scripts] == [
        ["hardware", "link"],
        ["antivirus"],
        ["hardware"],
        ["hardware"],
    ]
    assert THERMAL_SCRIPT.replace("'", "''") in run.scripts[-1]


def test_powershell_missing_is_every_querys_error_logged_once_per_spell(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    def missing(script: str, timeout: float) -> RawRun:
        calls.append(script)
        raise ProbeFailed("PowerShell not found (powershell): [WinError 2]")

    batch = PowerShellBatch(missing)
    caplog.set_level(logging.INFO, logger="agent.platform.windows")
    for _ in range(3):  # three cycles
        for query in CYCLE[:2]:
            batch.declare(query)
        for query in CYCLE[:2]:
            with pytest.raises(ProbeFailed, match="not found"):
                batch.result(query)
    assert len(calls) == 3  # one start per cycle, even when it fails
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "not found" in errors[0].getMessage()


def test_a_run_that_exits_non_zero_names_the_code_and_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = SimulatedPowerShell()
    run.exit = RawRun(b"", "Không thể tải tệp.\r\n".encode(), 1)
    batch = PowerShellBatch(run)
    caplog.set_level(logging.INFO, logger="agent.platform.windows")
    with pytest.raises(ProbeFailed, match=r"exited with code 1: Không thể tải tệp\.$"):
        batch.result(CYCLE[2])
    run.exit = None
    assert batch.result(CYCLE[2]) == _document("antivirus")
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "PowerShell runs again (antivirus)"
    ]


def test_an_outer_timeout_keeps_the_finished_queries() -> None:
    run = SimulatedPowerShell(silent={"software"})
    run.failure = "PowerShell did not finish within 150 s"
    batch = PowerShellBatch(run)
    for query in CYCLE:
        batch.declare(query)
    assert batch.result(CYCLE[2]) == _document("antivirus")
    with pytest.raises(ProbeFailed, match="within 150 s"):
        batch.result(CYCLE[5])


def test_a_script_that_cannot_be_built_is_an_error_entry_not_a_crash() -> None:
    run = SimulatedPowerShell()
    with pytest.raises(ProbeFailed, match="must be ASCII"):
        PowerShellBatch(run).result(Query("x", "Write-Output 'Máy'", 1.0))
    assert run.scripts == []


# ---- the runner's cycle ---------------------------------------------------------------------


def _windows_probes(batch: PowerShellBatch) -> dict[str, Probe]:
    def windows() -> str:
        return "Windows"

    def pinger(address: str, count: int, interval: float, timeout: float) -> icmp.PingRun:
        return icmp.PingRun("icmp_echo", tuple(0.002 for _ in range(count)))

    return {
        "hardware": HardwareProbe(powershell=batch, system=windows),
        "link": LinkProbe(powershell=batch, system=windows, pinger=pinger),
        "antivirus": AntivirusProbe(powershell=batch, system=windows),
        "security": SecurityProbe(powershell=batch, listeners=list, system=windows),
        "disk_health": DiskHealthProbe(powershell=batch, system=windows),
        "software": SoftwareProbe(powershell=batch, system=windows),
    }


def test_a_cycle_of_six_windows_probes_starts_one_powershell() -> None:
    run = SimulatedPowerShell()
    probes = _windows_probes(PowerShellBatch(run))
    report = collect(probes, "boot-1", 1_700_000_000_000)
    assert report.errors == ()
    assert len(run.scripts) == 1
    assert sorted(_names_in(run.scripts[0])) == sorted(probes)
    assert report.antivirus is not None and report.antivirus.defender is not None
    assert report.link is not None and report.link.gateway
    assert report.software is not None and report.software.count > 0
    assert report.hardware is not None and report.hardware.host.model


def test_one_failing_query_is_that_probes_error_entry_only() -> None:
    run = SimulatedPowerShell(errors={"antivirus": "Invalid namespace"}, silent={"software"})
    report = collect(_windows_probes(PowerShellBatch(run)), "b", 0)
    assert len(run.scripts) == 1
    assert sorted(e.probe for e in report.errors) == ["antivirus", "software"]
    assert "Invalid namespace" in next(e.message for e in report.errors if e.probe == "antivirus")
    assert report.security is not None and report.disk_health is not None


def test_later_cycles_run_only_what_is_due() -> None:
    # Identity once per boot, link's gateway every 5 minutes: a 15 s cycle after the first
    # one, with only the 15 s probes due, starts no PowerShell at all.
    now = [0.0]
    run = SimulatedPowerShell()
    batch = PowerShellBatch(run)

    def windows() -> str:
        return "Windows"

    def pinger(address: str, count: int, interval: float, timeout: float) -> icmp.PingRun:
        return icmp.PingRun("icmp_echo", (0.002,) * count)

    hardware = HardwareProbe(powershell=batch, system=windows, clock=lambda: now[0])
    link = LinkProbe(powershell=batch, system=windows, pinger=pinger, clock=lambda: now[0])
    antivirus = AntivirusProbe(powershell=batch, system=windows)
    first = collect({"hardware": hardware, "link": link, "antivirus": antivirus}, "b", 0)
    assert first.errors == () and len(run.scripts) == 1
    for step in range(1, 20):  # 15 s cycles up to 285 s
        now[0] = 15.0 * step
        report = collect({"hardware": hardware, "link": link}, "b", 0)
        assert report.errors == () and report.link is not None and report.link.gateway
    assert len(run.scripts) == 1
    now[0] = 299.2  # a little short of 5 minutes, as the cycle's own work makes it
    collect({"hardware": hardware, "link": link, "antivirus": antivirus}, "b", 0)
    assert len(run.scripts) == 2
    assert sorted(_names_in(run.scripts[1])) == ["antivirus", "link"]  # no thermal zone here


def test_every_windows_probe_declares_before_collecting() -> None:
    # A probe added later that starts PowerShell in collect() would not share the run.
    run = SimulatedPowerShell()
    batch = PowerShellBatch(run)
    for name, probe in _windows_probes(batch).items():
        probe.prepare()
        assert name in PROBES
    assert run.scripts == []
    assert sorted(batch._pending) == sorted(DOCUMENTS)


def test_max_document_bound_is_in_the_script() -> None:
    script = build_script([Query("a", "1", 1.0, max_chars=5)])
    assert "Max = 5;" in script
    assert str(psbatch.MAX_DOCUMENT_CHARS) in build_script([Query("a", "1", 1.0)])


def test_link_carries_a_failed_read_as_skipped_until_its_next_read() -> None:
    now = [0.0]
    run = SimulatedPowerShell(errors={"link": "Quyền truy cập bị từ chối"})

    def pinger(address: str, count: int, interval: float, timeout: float) -> icmp.PingRun:
        return icmp.PingRun("icmp_echo", (0.002,) * count)

    link = LinkProbe(
        powershell=PowerShellBatch(run),
        system=lambda: "Windows",
        pinger=pinger,
        clock=lambda: now[0],
    )
    for at in (0.0, 15.0, 280.0):
        now[0] = at
        report = collect({"link": link}, "b", 0)
        assert report.errors == () and report.link is not None
        assert report.link.gateway == ""  # never a gateway guessed from nothing
        assert report.link.skipped[0] == (
            "gateway and conflict events: PowerShell: Quyền truy cập bị từ chối"
        )
    assert len(run.scripts) == 1
    now[0] = 296.0  # due: 5 minutes less the slack
    run.errors.clear()
    report = collect({"link": link}, "b", 0)
    assert len(run.scripts) == 2 and report.link is not None and report.link.gateway
