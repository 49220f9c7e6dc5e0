"""Antivirus probe: productState decoder, every Windows fixture, clamd replies, Linux products."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.errors import ProbeFailed
from agent.model import Clamd
from agent.platform.clamd import (
    ClamdUnreachable,
    eicar,
    parse_database_header,
    parse_scan_reply,
    parse_version_reply,
    read_database_built_at,
)
from agent.platform.psjson import parse_date
from agent.platform.windows import PerScript
from agent.probes.antivirus import (
    AntivirusOptions,
    AntivirusProbe,
    decode_product_state,
    parse_linux_antivirus,
    parse_windows_antivirus,
    read_process_names,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "antivirus"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        (397568, ("on", "microsoft", "up_to_date")),  # Defender on
        (393472, ("off", "microsoft", "up_to_date")),  # Defender off
        (397584, ("on", "microsoft", "out_of_date")),
        (393488, ("off", "microsoft", "out_of_date")),
        (266240, ("on", "third_party", "up_to_date")),
        (266256, ("on", "third_party", "out_of_date")),
        (262144, ("off", "third_party", "up_to_date")),
        (262160, ("off", "third_party", "out_of_date")),
        (397312, ("on", "third_party", "up_to_date")),
        (0x062100, ("snoozed", "microsoft", "up_to_date")),
        (0x063100, ("expired", "microsoft", "up_to_date")),
        (0x06A5F0, ("unknown", "unknown", "unknown")),
    ],
)
def test_product_state_decoder(raw: int, decoded: tuple[str, str, str]) -> None:
    assert decode_product_state(raw) == decoded


def test_defender_healthy_windows_powershell_51_shape() -> None:
    av = parse_windows_antivirus(fixture("win10-vi-defender-healthy.json"))
    [product] = av.products
    assert (product.name, product.state, product.product_state) == (
        "Windows Defender",
        "on",
        397568,
    )
    assert product.owner == "microsoft"
    assert av.defender is not None
    assert av.defender.status == "ok"
    assert av.defender.signature_updated_at == 1732500000.0  # from \/Date(ms)\/
    assert av.defender.full_scan_age_days == -1  # 4294967295: never
    assert av.defender.quick_scan_age_days == 1
    assert av.realtime == "on"
    assert av.signature_updated_at == 1732500000.0
    assert av.notes == ()


def test_third_party_active_defender_unavailable_not_disabled() -> None:
    av = parse_windows_antivirus(fixture("win11-vi-bkav-defender-off.json"))
    states = {p.name: (p.state, p.owner) for p in av.products}
    assert states == {
        "Windows Defender": ("off", "microsoft"),
        "Bkav Pro Internet Security": ("on", "third_party"),
    }
    assert av.defender is not None
    assert av.defender.status == "unavailable"
    assert "0x800106ba" in av.defender.reason
    assert av.realtime == "on"
    assert av.signature_updated_at == 0.0  # BKAV does not say when; no made-up age


def test_out_of_date_signatures() -> None:
    av = parse_windows_antivirus(fixture("win10-vi-signatures-out-of-date.json"))
    assert av.products[0].signatures == "out_of_date"
    assert av.defender is not None
    assert av.defender.signature_age_days == 12
    assert av.defender.tamper_protected is False
    assert av.signature_updated_at == 1731463200.0  # 2024-11-13T02:00:00Z, 7 fraction digits


def test_ghost_product_and_passive_defender() -> None:
    av = parse_windows_antivirus(fixture("win11-vi-eset-kaspersky-ghost.json"))
    assert [(p.name, p.state) for p in av.products] == [
        ("ESET Security", "on"),
        ("Kaspersky Endpoint Security cho Windows", "off"),
        ("Windows Defender", "off"),
    ]
    assert av.defender is not None
    assert av.defender.running_mode == "Passive Mode"
    # Passive Defender's signatures do not protect anything: no signature age claimed.
    assert av.signature_updated_at == 0.0
    assert av.realtime == "on"


def test_windows_server_falls_back_to_defender_and_says_so() -> None:
    av = parse_windows_antivirus(fixture("winserver2019-defender.json"))
    [product] = av.products
    assert (product.source, product.state, product.signatures) == ("defender", "on", "up_to_date")
    assert product.product_state == 0
    assert "SecurityCenter2 not available" in av.notes[0]
    assert "Không gian tên" in av.notes[0]
    assert av.realtime == "on"
    assert av.signature_updated_at == 1732500000.0


def test_windows_server_realtime_comes_from_defender() -> None:
    doc = json.loads(fixture("winserver2019-defender.json"))
    doc["MpComputerStatus"]["RealTimeProtectionEnabled"] = False
    av = parse_windows_antivirus(json.dumps(doc))
    assert (av.products[0].state, av.realtime) == ("on", "off")


def test_unknown_nibble_and_null_state_decode_to_unknown() -> None:
    av = parse_windows_antivirus(fixture("win10-vi-unknown-nibble.json"))
    assert [(p.name, p.state, p.product_state) for p in av.products] == [
        ("Phần mềm diệt virus lạ", "unknown", 0x0A5F20),
        ("Hỏng", "unknown", 0),
    ]
    assert av.realtime == "unknown"  # nothing known to be on, nor certainly off
    assert av.defender is not None and av.defender.status == "unavailable"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("malformed-truncated.json", "not valid JSON"),
        ("malformed-array.json", "not an object"),
        ("malformed-empty.json", "empty"),
        ("malformed-both-failed.json", "Invalid namespace; Access denied"),
    ],
)
def test_malformed_documents_fail_with_the_reason(name: str, reason: str) -> None:
    with pytest.raises(ProbeFailed, match=reason):
        parse_windows_antivirus(fixture(name))


def test_powershell_failure_is_a_probe_error_not_off() -> None:
    def timeout(script: str, seconds: float) -> str:
        raise ProbeFailed(f"PowerShell did not finish within {seconds:g} s")

    probe = AntivirusProbe(powershell=PerScript(timeout), system=lambda: "Windows")
    with pytest.raises(ProbeFailed, match="within 60 s"):
        probe.collect()


@given(st.text(max_size=300))
def test_fuzz_windows_parser_raises_only_probe_failed(document: str) -> None:
    with contextlib.suppress(ProbeFailed):
        parse_windows_antivirus(document)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
_keys = st.sampled_from(
    [
        "AntiVirusProduct",
        "AntiVirusProductError",
        "MpComputerStatus",
        "MpComputerStatusError",
        "displayName",
        "productState",
        "AntivirusSignatureLastUpdated",
        "QuickScanAge",
        "AMRunningMode",
    ]
)


@given(st.dictionaries(_keys, _json | st.dictionaries(_keys, _json, max_size=5), max_size=4))
def test_fuzz_windows_parser_on_shaped_documents(doc: dict[str, object]) -> None:
    with contextlib.suppress(ProbeFailed):
        parse_windows_antivirus(json.dumps(doc))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/Date(1732500000000)/", 1732500000.0),
        ("\\/Date(1732500000000+0700)\\/", 1732500000.0),
        ("2024-11-25T02:00:00Z", 1732500000.0),
        ("2024-11-25T09:00:00+07:00", 1732500000.0),
        ("2024-11-25T02:00:00.1234567Z", 1732500000.123456),
        ("2024-11-25T02:00:00", 1732500000.0),
        ("hôm qua", None),
        ("", None),
    ],
)
def test_powershell_dates(text: str, expected: float | None) -> None:
    assert parse_date(text) == expected


# ---- clamd ------------------------------------------------------------------------------


def test_version_replies() -> None:
    daily = parse_version_reply(fixture("clamd-version-daily.txt"))
    assert (daily.engine, daily.database_version) == ("1.4.6", 27001)
    expected = time.mktime(time.strptime("Fri Nov 27 15:05:14 2026", "%a %b %d %H:%M:%S %Y"))
    assert daily.database_date == expected
    bare = parse_version_reply(fixture("clamd-version-bare.txt") + "\0")
    assert (bare.engine, bare.database_version, bare.database_date) == ("1.4.6", 0, 0.0)
    official = parse_version_reply(fixture("clamd-version-official.txt"), lambda t: 1.0)
    assert (official.engine, official.database_version, official.database_date) == (
        "1.0.7",
        27470,
        1.0,
    )
    with pytest.raises(ProbeFailed, match="not understood"):
        parse_version_reply("UNKNOWN COMMAND")


def test_scan_replies() -> None:
    found = parse_scan_reply(fixture("clamd-scan-found.txt"))
    assert (found.detected, found.signature) == (True, "Canhgac.Test.EICAR.UNOFFICIAL")
    assert parse_scan_reply(fixture("clamd-scan-ok.txt")).detected is False
    with pytest.raises(ProbeFailed, match="size limit"):
        parse_scan_reply(fixture("clamd-scan-error.txt"))


def test_database_header(tmp_path: Path) -> None:
    header = fixture("daily-cud-header.txt").encode()
    assert parse_database_header(header) == 1795791914.0
    (tmp_path / "daily.cud").write_bytes(header + b"\x1f\x8b rest of the archive")
    assert read_database_built_at(tmp_path) == 1795791914.0
    assert read_database_built_at(tmp_path / "missing") == 0.0
    with pytest.raises(ProbeFailed, match="not a ClamAV database header"):
        parse_database_header(b"\x1f\x8b\x08 gzip")


def test_eicar_is_the_68_byte_test_string() -> None:
    data = eicar()
    assert len(data) == 68
    assert data.startswith(b"X5O!") and data.endswith(b"H+H*")


@given(st.text(max_size=200))
def test_fuzz_clamd_reply_parsers_raise_only_probe_failed(reply: str) -> None:
    for parse in (parse_version_reply, parse_scan_reply):
        with contextlib.suppress(ProbeFailed):
            parse(reply)
    with contextlib.suppress(ProbeFailed):
        parse_database_header(reply.encode("utf-8", errors="replace"))


# ---- Linux ------------------------------------------------------------------------------


class FakeClamd:
    """Test double with clamd's three commands; `up` toggles a stopped daemon."""

    def __init__(self, scan_reply: str) -> None:
        self.up = True
        self.scans = 0
        self._scan_reply = scan_reply

    def ping(self) -> None:
        if not self.up:
            raise ClamdUnreachable("clamd does not answer on unix:/x: Connection refused")

    def version(self) -> str:
        return "ClamAV 1.4.6/27001/Fri Nov 27 15:05:14 2026"

    def instream(self, data: bytes) -> str:
        assert data == eicar()
        self.scans += 1
        return self._scan_reply


def _linux_probe(clamd: FakeClamd, now: list[float], running: set[str]) -> AntivirusProbe:
    options = AntivirusOptions.model_validate(
        {"clamd": {"self_test_interval": "1d"}, "processes": {"ESET": ["esets_daemon"]}}
    )
    return AntivirusProbe(
        options,
        system=lambda: "Linux",
        clamd=clamd,
        process_names=lambda: running,
        clock=lambda: now[0],
    )


def test_self_test_runs_once_per_interval_and_reports_its_result() -> None:
    clamd, now = FakeClamd("stream: Eicar-Signature FOUND"), [time.time()]
    probe = _linux_probe(clamd, now, {"clamd", "esets_daemon"})
    first = probe.collect()
    assert first.clamd is not None
    assert (first.clamd.self_test, first.clamd.self_test_detail) == ("detected", "Eicar-Signature")
    now[0] += 3600
    assert probe.collect().clamd == first.clamd  # not due yet: same result, no new scan
    assert clamd.scans == 1
    now[0] += 86400
    probe.collect()
    assert clamd.scans == 2
    assert [(p.name, p.state) for p in first.products] == [("ClamAV", "on"), ("ESET", "on")]
    assert first.realtime == "on"  # ESET scans on access


def test_on_but_detecting_nothing_is_a_missed_self_test() -> None:
    clamd, now = FakeClamd("stream: OK"), [time.time()]
    av = _linux_probe(clamd, now, set()).collect()
    assert av.clamd is not None and av.clamd.self_test == "missed"
    assert [(p.name, p.state) for p in av.products] == [("ClamAV", "on"), ("ESET", "not_running")]
    assert av.realtime == "off"  # clamd alone scans on demand only


def test_stopped_clamd_is_not_running() -> None:
    clamd, now = FakeClamd("stream: Eicar-Signature FOUND"), [time.time()]
    probe = _linux_probe(clamd, now, set())
    probe.collect()
    clamd.up = False
    av = probe.collect()
    assert av.clamd is not None
    assert (av.clamd.status, av.clamd.self_test) == ("not_running", "not_run")
    assert "Connection refused" in av.clamd.reason
    assert av.products[0].state == "not_running"
    assert av.signature_updated_at == 0.0


def test_linux_signature_freshness_uses_the_database_date() -> None:
    clamd = Clamd("running", database_date=1_000_000.0)
    fresh = parse_linux_antivirus(clamd, {}, {"clamonacc"}, 1_000_000.0 + 86400)
    stale = parse_linux_antivirus(clamd, {}, set(), 1_000_000.0 + 8 * 86400)
    assert (fresh.products[0].signatures, fresh.realtime) == ("up_to_date", "on")
    assert (stale.products[0].signatures, stale.realtime) == ("out_of_date", "not_configured")
    bare = parse_linux_antivirus(Clamd("running", database_built_at=5.0), {}, set(), 10.0)
    assert bare.signature_updated_at == 5.0  # header time when VERSION is bare


def test_clamd_without_on_access_is_not_configured_not_off() -> None:
    """clamd alone scans on demand by its setup: "not_configured", never the "off" of a
    product that was switched off; a stopped clamd or an expected product not running is."""
    running = Clamd("running", database_date=1_000_000.0)
    at = 1_000_000.0 + 3600
    assert parse_linux_antivirus(running, {}, set(), at).realtime == "not_configured"
    assert parse_linux_antivirus(running, {}, {"clamonacc"}, at).realtime == "on"
    stopped = Clamd("not_running")
    assert parse_linux_antivirus(stopped, {}, {"clamonacc"}, at).realtime == "off"
    eset = {"ESET": ["esets_daemon"]}
    assert parse_linux_antivirus(running, eset, set(), at).realtime == "off"
    assert parse_linux_antivirus(running, eset, {"esets_daemon"}, at).realtime == "on"
    assert parse_linux_antivirus(None, {}, set(), at).realtime == "unknown"


def test_tcp_address_option() -> None:
    options = AntivirusOptions.model_validate({"clamd": {"tcp": "127.0.0.1:3310"}})
    assert str(options.clamd.address()) == "tcp://127.0.0.1:3310"
    with pytest.raises(ValueError, match="host:port"):
        AntivirusOptions.model_validate({"clamd": {"tcp": "3310"}}).clamd.address()


@pytest.mark.skipif(sys.platform != "linux", reason="reads this machine's /proc")
def test_linux_process_names_match_psutil_including_names_past_fifteen_bytes(
    tmp_path: Path,
) -> None:
    # The kernel keeps 15 bytes of this name; the full one must come back as psutil gives it.
    program = tmp_path / "canhgac-antivirus-daemon"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", program)
    with subprocess.Popen([str(program), "30"]) as proc:
        try:
            # Until the child has exec'd it still carries pytest's name: wait for the new one.
            deadline = time.monotonic() + 10
            while psutil.Process(proc.pid).name() != program.name:
                assert time.monotonic() < deadline, "the child never took its name"
                time.sleep(0.01)
            names = read_process_names()
            expected = {p.info["name"] for p in psutil.process_iter(["name"]) if p.info["name"]}
            # Processes may start or end between the two reads; the long name is in both.
            assert "canhgac-antivirus-daemon" in names & expected
            assert len(names ^ expected) <= 4
        finally:
            proc.kill()
