"""Rule packs: exact loader messages; a passing and a failing snapshot for every shipped rule."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import cel
import pytest

from collector.compliance.evaluate import MEMO_MAX_ITEMS, Memo, agent_variables, judge
from collector.compliance.loader import load_pack
from collector.errors import RuleError
from collector.model import AgentRecord, Placement

FIXTURES = Path(__file__).parent.parent / "fixtures" / "rules"
DEFAULT = Path(__file__).parent.parent.parent / "rules" / "default.yaml"
GiB = 1024**3


def test_valid_pack_loads_with_durations_scope_and_sections() -> None:
    pack = load_pack(FIXTURES / "valid.yaml")
    (rule,) = pack.rules
    assert (rule.id, rule.kind, rule.severity) == ("ram", "agent", "low")
    assert (rule.for_seconds, rule.hold_seconds) == (600.0, 60.0)
    assert rule.sections == frozenset({"hardware"})
    assert rule.scope.matches(Placement("", "Hạ Lang", "Thanh Nhật", "", "workstation"))
    assert not rule.scope.matches(Placement("", "Hạ Lang", "An Lạc", "", "workstation"))
    assert rule.source == f"{FIXTURES / 'valid.yaml'}:3"


def test_invalid_pack_names_file_line_and_rule_in_every_message() -> None:
    f = FIXTURES / "invalid.yaml"
    with pytest.raises(RuleError) as e:
        load_pack(f)
    assert e.value.problems == [
        f"{f}:8: rule typo-field: unknown snapshot field hardware.memory.totl_bytes",
        f"{f}:14: rule typo-in-loop: unknown snapshot field d.fre_bytes",
        f"{f}:20: rule bad-syntax: CEL syntax error at column 30: mismatched input '<EOF>' "
        "expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, "
        "NUM_UINT, STRING, BYTES, IDENTIFIER}",
        f"{f}:26: rule bad-type: CEL type error: No such overload: the operation is not "
        "defined for the given operand types",
        f"{f}:32: rule not-bool: condition must be true or false, not int",
        f"{f}:33: rule unknown-key: missing field 'condition'",
        f"{f}:38: rule unknown-key: unknown field 'condtion'",
        f"{f}:43: rule bad-severity: severity: Input should be 'critical', 'high', 'medium', "
        "'low' or 'info'",
        f"{f}:50: rule unknown-variable: unknown variable 'antivirus_x' "
        "(known: agent, antivirus, disk_health, hardware, link, meeting_room, now, power, probes,"
        " security, software, spool)",
        f"{f}:58: rule unknown-agent-rule: unknown agent rule 'x' in passing[...]",
        f"{f}:58: rule unknown-agent-rule: unknown agent rule 'x' in judged[...]",
        f"{f}:66: rule unquoted-agent-rule: judged takes a quoted agent rule id: "
        'judged["antivirus.present"]',
        f"{f}:72: rule applies-typo: unknown snapshot field link.pngs",
        f"{f}:81: rule applies-on-fleet: applies is for agent rules only",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nrules: [\n  - {id: a\n", ":3: invalid YAML: "),
        ("version: 2\nrules: []\n", ":1: version must be 1, not 2"),
        ("version: 1\nrules: {}\nextra: 1\n", ":3: unknown field 'extra'"),
        ("version: 1\nversion: 1\nrules: []\n", ":2: invalid YAML: duplicate key 'version'"),
    ],
)
def test_pack_level_errors(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "pack.yaml"
    f.write_text(text)
    with pytest.raises(RuleError) as e:
        load_pack(f)
    assert any(p.startswith(f"{f}{message}") for p in e.value.problems), e.value.problems


def test_duplicate_rule_ids_across_files(tmp_path: Path) -> None:
    text = (FIXTURES / "valid.yaml").read_text()
    (tmp_path / "a.yaml").write_text(text)
    (tmp_path / "b.yaml").write_text(text)
    with pytest.raises(
        RuleError, match=r"b\.yaml:3: rule ram: duplicate id \(first at .*a\.yaml:3\)"
    ):
        load_pack(tmp_path)


# ---- the shipped default pack ---------------------------------------------------------------

AGENT = AgentRecord(
    "a1", "m1", "pc-01", "Windows", "10", "0.1.0",
    Placement("Cao Bằng", "Hạ Lang", "Thanh Nhật", "", "workstation"),
    0.0, None, 0.0, 0.0, 1,
)  # fmt: skip


def _hardware(**over: Any) -> dict[str, Any]:
    hw: dict[str, Any] = {
        "host": {"os_name": "Windows 10 Pro", "os_version": "10.0.19045"},
        "memory": {"total_bytes": 8 * GiB},
        "disks": [{"mountpoint": "C:\\", "total_bytes": 100 * GiB, "free_bytes": 40 * GiB}],
    }
    hw.update(over)
    return hw


def _agent_vars(snapshot: dict[str, Any], silent: float = 0.0) -> dict[str, Any]:
    return agent_variables(AGENT, snapshot, 1e9, 15.0, silent)


def _group(agents: int, silent: int, machines: int | None = None) -> dict[str, Any]:
    return {
        "group": {
            "province": "Cao Bằng", "district": "Hạ Lang", "commune": "An Lạc",
            "expected_machines": machines or 0, "expected_meeting_rooms": 1,
            "machines": machines or agents, "agents": agents, "reporting": agents - silent,
            "silent": silent, "meeting_rooms_reporting": 0,
        },
        "members": [],
        "passing": {},
        "judged": {},
        "now": 1e9,
    }  # fmt: skip


NOW = 1e9
DAY = 86400.0


def _product(state: str = "on", signatures: str = "up_to_date") -> dict[str, Any]:
    return {"name": "Windows Defender", "source": "security_center", "state": state,
            "product_state": 397568, "owner": "microsoft", "signatures": signatures}  # fmt: skip


def _av(**over: Any) -> dict[str, Any]:
    av: dict[str, Any] = {
        "products": [_product()], "realtime": "on", "signature_updated_at": NOW - DAY, "notes": [],
    }  # fmt: skip
    av.update(over)
    return {"antivirus": av}


def _clamd(self_test: str, status: str = "running") -> dict[str, Any]:
    return _av(clamd={"status": status, "self_test": self_test, "database_date": NOW - DAY})


def _sec(**over: Any) -> dict[str, Any]:
    profiles = [{"name": n, "state": "on", "default_inbound": "block"}
                for n in ("Domain", "Private", "Public")]  # fmt: skip
    sec: dict[str, Any] = {
        "firewall": profiles, "os_updated_at": NOW - 10 * DAY, "os_update_source": "apt_history",
        "pending_security_updates": -1, "listeners_total": 5, "risky_listeners": [], "notes": [],
    }  # fmt: skip
    sec.update(over)
    return {"security": sec}


def _ping(target: str, loss: float = 0.0, rtt: float = 0.02, error: str = "") -> dict[str, Any]:
    received = 0 if error else round(10 * (1 - loss))
    return {"target": target, "address": target, "method": "icmp-dgram", "sent": 10,
            "received": received, "loss_ratio": loss, "rtt_min_seconds": rtt,
            "rtt_avg_seconds": rtt if received else 0.0, "rtt_max_seconds": rtt,
            "jitter_seconds": 0.001, "error": error}  # fmt: skip


def _link(*pings: dict[str, Any], **over: Any) -> dict[str, Any]:
    link: dict[str, Any] = {
        "gateway": "10.1.0.1", "pings": list(pings), "dhcp_servers": [], "ip_conflicts": [],
        "skipped": [],
    }  # fmt: skip
    link.update(over)
    return {"link": link}


def _as_member(snapshot: dict[str, Any], silent: float = 0.0) -> dict[str, Any]:
    m = _agent_vars(snapshot, silent=silent)
    del m["now"]
    return m


def _member(silent: float, *pings: dict[str, Any]) -> dict[str, Any]:
    return _as_member(_link(*pings) if pings else {}, silent)


def _pinging(reachable: int, cut: int, silent: int = 0, gateway_only: int = 0) -> dict[str, Any]:
    """A commune group whose reporting members reach the district, lose every ping to it, or
    ping only their gateway: link.district-reachable's verdicts counted as the engine does
    (over reporting members only; silent ones do not count)."""
    g = _group(reachable + cut + silent + gateway_only, silent)
    snapshots = (
        [_link(_ping("10.1.0.1"), _ping("collector"))] * reachable
        + [_link(_ping("10.1.0.1"), _ping("collector", loss=1.0))] * cut
        + [_link(_ping("10.1.0.1"))] * gateway_only
    )
    rule = load_pack(DEFAULT).get("link.district-reachable")
    assert rule is not None
    verdicts = [judge(rule, _agent_vars(s)) for s in snapshots]
    g["passing"]["link.district-reachable"] = sum(v is True for v in verdicts)
    g["judged"]["link.district-reachable"] = sum(v is not None for v in verdicts)
    return g


def _http(name: str, ok: bool, service: bool = True) -> dict[str, Any]:
    return {"name": name, "url": f"https://{name}.example/", "ok": ok, "service": service}


def _services(reaching: int, failing: int) -> dict[str, Any]:
    """A commune whose reporting machines reach every public service, or fail one."""
    g = _group(reaching + failing, 0)
    ok = [_http("igate", True), _http("ioffice", True)]
    snapshots = [_link(http_checks=ok)] * reaching + [
        _link(http_checks=[_http("igate", True), _http("ioffice", False)])
    ] * failing
    rule = load_pack(DEFAULT).get("link.public-services")
    assert rule is not None
    verdicts = [judge(rule, _agent_vars(s)) for s in snapshots]
    g["passing"]["link.public-services"] = sum(v is True for v in verdicts)
    g["judged"]["link.public-services"] = sum(v is not None for v in verdicts)
    return g


def _signatures(snapshots: list[dict[str, Any]], machines: int) -> dict[str, Any]:
    """A commune of `machines` planned machines whose enrolled members report these snapshots:
    the verdict counts of the agent rules on them, as the alert engine keeps them."""
    g = _group(len(snapshots), 0, machines=machines)
    pack = load_pack(DEFAULT)
    for rule_id in ("antivirus.present", "antivirus.signatures"):
        rule = pack.get(rule_id)
        assert rule is not None
        verdicts = [judge(rule, _agent_vars(s)) for s in snapshots]
        g["passing"][rule_id] = sum(v is True for v in verdicts)
        g["judged"][rule_id] = sum(v is not None for v in verdicts)
    return g


CURRENT = _av()  # updated a day ago
STALE = _av(signature_updated_at=NOW - 4 * DAY)


def _room(state: str) -> dict[str, Any]:
    reasons = (
        [{"code": "path_down", "severity": "red", "detail": "no reply"}] if state == "red" else []
    )
    return {"meeting_room": {"readiness": {"state": state, "reasons": reasons}}}


def _rooms(expected: int, reporting: int, states: tuple[str, ...] = ()) -> dict[str, Any]:
    """A commune planning `expected` rooms, `reporting` of them reporting these readiness
    states (meeting-room.ready's verdicts counted as the engine does)."""
    g = _group(3, 0)
    g["group"].update(expected_meeting_rooms=expected, meeting_rooms_reporting=reporting)
    rule = load_pack(DEFAULT).get("meeting-room.ready")
    assert rule is not None
    verdicts = [judge(rule, _agent_vars(_room(s))) for s in states]
    g["passing"]["meeting-room.ready"] = sum(v is True for v in verdicts)
    g["judged"]["meeting-room.ready"] = sum(v is not None for v in verdicts)
    return g


OK_STATUS = {"status:hardware": {"ok": True, "error": ""}}
BAD_STATUS = {"status:hardware": {"ok": False, "error": "PowerShell timed out"}}


def _drive(health: str = "ok", wear: int = -1) -> dict[str, Any]:
    return {"device": "/dev/sda", "health": health, "wear_percent": wear, "source": "smartctl"}


def _power(supply: str = "mains", **over: Any) -> dict[str, Any]:
    # As decoded: repeated fields are lists even when empty.
    return {"power": {"supply": supply, "ups": [], **over}}


def _ups(status: str) -> dict[str, Any]:
    return {"name": "ups@localhost", "status": status}


def _programs(*names: str) -> dict[str, Any]:
    """A report carrying the whole list (what the software rules are judged on)."""
    return {
        "software": {
            "hash": "h",
            "count": len(names),
            "complete": True,
            "programs": [{"name": n, "version": "1"} for n in names],
        }
    }


OFFICE_PC = ("Google Chrome", "VNPT-CA Plugin", "Phần mềm Quản lý văn bản (VNPT-iOffice)")

CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "hardware.disk-free": (
        _agent_vars({"hardware": _hardware()}),
        _agent_vars(
            {"hardware": _hardware(disks=[{"total_bytes": 100 * GiB, "free_bytes": 9 * GiB}])}
        ),
    ),
    "hardware.min-ram": (
        _agent_vars({"hardware": _hardware(memory={"total_bytes": 4 * 10**9})}),
        _agent_vars({"hardware": _hardware(memory={"total_bytes": 2 * GiB})}),
    ),
    "hardware.supported-os": (
        _agent_vars({"hardware": _hardware(host={"os_name": "Debian GNU/Linux 12 (bookworm)"})}),
        _agent_vars({"hardware": _hardware(host={"os_name": "Windows 7 Professional"})}),
    ),
    "agent.silent": (_agent_vars({}, silent=30.0), _agent_vars({}, silent=46.0)),
    "agent.probe-failing": (_agent_vars(OK_STATUS), _agent_vars(BAD_STATUS)),
    "commune.link-down": (
        _pinging(reachable=2, cut=11, silent=17),
        _pinging(reachable=2, cut=10, silent=18),
    ),
    "antivirus.present": (_agent_vars(_av()), _agent_vars(_av(products=[], realtime="unknown"))),
    "antivirus.enabled": (
        _agent_vars(_av(products=[_product("off"), _product("unknown")])),
        _agent_vars(_av(products=[_product("off"), _product("expired")])),
    ),
    "antivirus.realtime": (
        _agent_vars(_av(realtime="not_configured")),
        _agent_vars(_av(realtime="off")),
    ),
    "antivirus.realtime-not-configured": (
        _agent_vars(_av(realtime="off")),  # antivirus.realtime's finding, not this one's
        _agent_vars(_av(realtime="not_configured")),
    ),
    "antivirus.self-test": (_agent_vars(_clamd("not_run")), _agent_vars(_clamd("missed"))),
    "antivirus.signatures": (
        _agent_vars(_av(signature_updated_at=NOW - 2.9 * DAY)),
        _agent_vars(_av(signature_updated_at=NOW - 3.1 * DAY)),
    ),
    "antivirus.state-unknown": (
        _agent_vars(_av(products=[_product("on"), _product("unknown")])),
        _agent_vars(_av(products=[_product("off"), _product("unavailable")])),
    ),
    "security.firewall": (
        _agent_vars(
            _sec(firewall=[{"name": "nftables", "state": "on"}, {"name": "ufw", "state": "off"}])
        ),
        _agent_vars(
            _sec(firewall=[{"name": "Domain", "state": "on"}, {"name": "Public", "state": "off"}])
        ),
    ),
    "security.os-updates": (
        _agent_vars(_sec(os_updated_at=NOW - 29 * DAY)),
        _agent_vars(_sec(os_updated_at=NOW - 31 * DAY)),
    ),
    "security.state-unknown": (_agent_vars(_sec()), _agent_vars(_sec(os_updated_at=0.0))),
    "security.risky-listeners": (
        _agent_vars(_sec()),
        _agent_vars(_sec(risky_listeners=[{"address": "0.0.0.0", "port": 445, "service": "smb"}])),
    ),
    "link.district-loss": (
        _agent_vars(_link(_ping("10.1.0.1", loss=0.5), _ping("collector", loss=0.2))),
        _agent_vars(_link(_ping("10.1.0.1"), _ping("collector", loss=0.3))),
    ),
    "link.district-reachable": (
        _agent_vars(_link(_ping("10.1.0.1"), _ping("collector", loss=0.9), _ping("hue", loss=1.0))),
        _agent_vars(_link(_ping("10.1.0.1"), _ping("collector", error="no route to host"))),
    ),
    # A failing check of the agent's own (service false) is not a public service.
    "link.public-services": (
        _agent_vars(_link(http_checks=[_http("igate", True), _http("intranet", False, False)])),
        _agent_vars(_link(http_checks=[_http("igate", False)])),
    ),
    "commune.public-services": (_services(reaching=1, failing=9), _services(0, 3)),
    "link.district-latency": (
        _agent_vars(_link(_ping("10.1.0.1", rtt=0.5), _ping("collector", loss=1.0))),
        _agent_vars(_link(_ping("10.1.0.1"), _ping("collector", rtt=0.25))),
    ),
    "link.rogue-dhcp": (
        _agent_vars(_link(dhcp_servers=[{"server_id": "10.1.0.1", "allowed": True}])),
        _agent_vars(_link(dhcp_servers=[{"server_id": "192.168.0.1", "allowed": False}])),
    ),
    "link.ip-conflict": (
        _agent_vars(_link()),
        _agent_vars(
            _link(ip_conflicts=[{"address": "10.1.0.9", "macs": ["a", "b"], "source": "arp"}])
        ),
    ),
    "disk.failing": (
        _agent_vars({"disk_health": {"drives": [_drive("warning"), _drive("unknown")]}}),
        _agent_vars({"disk_health": {"drives": [_drive(), _drive("failing")]}}),
    ),
    "disk.ssd-worn": (
        _agent_vars({"disk_health": {"drives": [_drive(wear=89), _drive(wear=-1)]}}),
        _agent_vars({"disk_health": {"drives": [_drive(wear=3), _drive(wear=97)]}}),
    ),
    "power.on-battery": (
        _agent_vars(_power("mains", ups=[_ups("online")])),
        _agent_vars(_power("battery", ups=[_ups("on_battery")])),
    ),
    "power.battery-low": (
        _agent_vars(_power("battery", battery={"percent": 35.0, "power_plugged": False})),
        _agent_vars(_power("battery", ups=[_ups("low_battery")])),
    ),
    "software.signing-tool": (
        _agent_vars(_programs("Google Chrome", "VGCA Sign Service")),
        _agent_vars(_programs("Google Chrome", "Zalo")),
    ),
    "software.document-client": (
        _agent_vars(_programs(*OFFICE_PC)),
        _agent_vars(_programs("Google Chrome", "VNPT-CA Plugin")),
    ),
    "software.supported-browser": (
        _agent_vars(_programs("firefox-esr", "libreoffice-core")),
        _agent_vars(_programs("Internet Explorer 11", "VNPT-CA Plugin")),
    ),
    "district.uplink-down": (_group(100, 79), _group(100, 80)),
    "commune.coverage": (_group(19, 0, machines=20), _group(20, 2)),
    # 19 of 20 planned machines current is 95 %; 18 enrolled and current of 20 planned is not.
    "commune.signatures": (
        _signatures([CURRENT] * 19 + [STALE], machines=20),
        _signatures([CURRENT] * 18, machines=20),
    ),
    "meeting-room.ready": (_agent_vars(_room("amber")), _agent_vars(_room("red"))),
    "commune.meeting-room": (_rooms(expected=1, reporting=1), _rooms(expected=1, reporting=0)),
    "commune.meeting-room-ready": (
        _rooms(expected=2, reporting=2, states=("red", "amber")),
        _rooms(expected=2, reporting=2, states=("red", "red")),
    ),
}


@pytest.mark.parametrize(
    ("group", "ok"),
    [
        (_rooms(expected=0, reporting=0), True),  # the plan expects no room
        (_rooms(expected=1, reporting=0), True),  # none reports: commune.meeting-room's finding
        (_rooms(expected=1, reporting=1, states=("green",)), True),
        (_rooms(expected=1, reporting=1, states=("red",)), False),
    ],
)
def test_commune_meeting_room_ready(group: dict[str, Any], ok: bool) -> None:
    rule = load_pack(DEFAULT).get("commune.meeting-room-ready")
    assert rule is not None
    assert judge(rule, group) is ok


def test_every_shipped_rule_has_a_case() -> None:
    assert {r.id for r in load_pack(DEFAULT).rules} == set(CASES)


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_shipped_rule_passes_and_fails(rule_id: str) -> None:
    rule = load_pack(DEFAULT).get(rule_id)
    assert rule is not None
    passing, failing = CASES[rule_id]
    assert judge(rule, passing) is True
    assert judge(rule, failing) is False


def test_software_rules_give_no_verdict_on_a_hash_only_report() -> None:
    hash_only = _agent_vars({"software": {"hash": "h", "count": 3, "complete": False}})
    for rule_id in ("software.signing-tool", "software.document-client"):
        rule = load_pack(DEFAULT).get(rule_id)
        assert rule is not None
        assert judge(rule, hash_only) is None


def test_laptop_battery_low_and_unknown_power_are_told_apart() -> None:
    rule = load_pack(DEFAULT).get("power.battery-low")
    assert rule is not None
    low = {"percent": 12.0, "power_plugged": False}
    assert judge(rule, _agent_vars(_power("battery", battery=low))) is False
    charging = {"percent": 12.0, "power_plugged": True}
    assert judge(rule, _agent_vars(_power("mains", battery=charging))) is True
    assert judge(rule, _agent_vars(_power("unknown", ups=[_ups("unreachable")]))) is True


def test_forbidden_software_example_is_shipped_off_and_works() -> None:
    example = DEFAULT.parent / "examples" / "forbidden-software.yaml"
    assert load_pack(DEFAULT).get("software.forbidden") is None  # not in the default pack
    rule = load_pack(example).get("software.forbidden")
    assert rule is not None
    assert judge(rule, _agent_vars(_programs(*OFFICE_PC))) is True
    assert judge(rule, _agent_vars(_programs("Google Chrome", "UltraViewer 6.6"))) is False


def test_rule_without_its_section_gives_no_verdict() -> None:
    rule = load_pack(DEFAULT).get("hardware.min-ram")
    assert rule is not None
    assert judge(rule, _agent_vars({})) is None


def test_a_rule_sees_only_what_it_reads_and_judges_as_on_everything() -> None:
    pack = load_pack(DEFAULT)
    disk = pack.get("hardware.disk-free")
    assert disk is not None
    assert disk.inputs(CASES[disk.id][0]) == {
        "hardware": {"disks": [{"total_bytes": 100 * GiB, "free_bytes": 40 * GiB}]}
    }
    for rule in pack.rules:
        for variables in CASES[rule.id]:
            whole = rule.program.execute(variables)
            assert judge(rule, variables) is whole, rule.id


def test_a_machine_cut_off_from_the_district_fails_one_link_rule_not_two() -> None:
    pack = load_pack(DEFAULT)
    ids = ("link.district-loss", "link.district-reachable")
    rules = [r for r in pack.agent_rules() if r.id in ids]
    cut = _agent_vars(_link(_ping("10.1.0.1"), _ping("collector", loss=1.0)))
    half = _agent_vars(_link(_ping("10.1.0.1"), _ping("collector"), _ping("hue", loss=1.0)))
    gateway = _agent_vars(_link(_ping("10.1.0.1", loss=1.0)))
    assert {r.id: judge(r, cut) for r in rules} == {
        "link.district-loss": True,
        "link.district-reachable": False,
    }
    # One district target lost entirely while another answers: that is loss, not a cut.
    assert {r.id: judge(r, half) for r in rules} == {
        "link.district-loss": False,
        "link.district-reachable": True,
    }
    # No district target at all: reachability does not apply (no verdict, not a pass).
    assert {r.id: judge(r, gateway) for r in rules} == {
        "link.district-loss": True,
        "link.district-reachable": None,
    }


@pytest.mark.parametrize(
    ("group", "ok"),
    [
        (_pinging(reachable=1, cut=9), True),  # one machine still reaches the district
        (_pinging(reachable=0, cut=2, silent=1), True),  # too few machines ping to judge
        (_pinging(reachable=0, cut=4, silent=2), False),  # every reporting machine is cut off
        # Machines pinging only their gateway say nothing about the district link.
        (_pinging(reachable=0, cut=3, gateway_only=5), False),
        (_pinging(reachable=0, cut=2, gateway_only=5), True),
    ],
)
def test_commune_link_down_on_failed_district_pings(group: dict[str, Any], ok: bool) -> None:
    rule = load_pack(DEFAULT).get("commune.link-down")
    assert rule is not None
    assert judge(rule, group) is ok


def test_unknown_antivirus_state_is_not_a_failure_of_enabled_or_realtime() -> None:
    pack = load_pack(DEFAULT)
    unknown = _agent_vars(_av(products=[_product("unknown")], realtime="unknown"))
    ids = ("antivirus.enabled", "antivirus.realtime", "antivirus.state-unknown")
    verdicts = {r.id: judge(r, unknown) for r in pack.agent_rules() if r.id in ids}
    assert verdicts == {
        "antivirus.enabled": True,
        "antivirus.realtime": True,
        "antivirus.state-unknown": False,
    }


@pytest.mark.parametrize(
    ("member", "counts"),
    [
        (CURRENT, True),
        (STALE, False),
        # Third-party products give no timestamp: Security Center's flag decides.
        (_av(signature_updated_at=0.0), True),
        (_av(signature_updated_at=0.0, products=[_product(signatures="out_of_date")]), False),
        (_av(products=[], realtime="unknown"), False),  # no antivirus at all
        ({}, False),  # no antivirus section reported
    ],
)
def test_commune_signatures_counts_only_current_machines(
    member: dict[str, Any], counts: bool
) -> None:
    rule = load_pack(DEFAULT).get("commune.signatures")
    assert rule is not None
    # 19 planned machines, 18 current: 95 % is reached exactly when this one counts.
    assert judge(rule, _signatures([CURRENT] * 18 + [member], machines=19)) is counts


def test_signatures_leave_a_machine_without_antivirus_to_antivirus_present() -> None:
    pack = load_pack(DEFAULT)
    none = _agent_vars(_av(products=[], realtime="unknown", signature_updated_at=NOW - 9 * DAY))
    ids = ("antivirus.present", "antivirus.signatures")
    verdicts = {r.id: judge(r, none) for r in pack.agent_rules() if r.id in ids}
    assert verdicts == {"antivirus.present": False, "antivirus.signatures": True}


def test_commune_signatures_needs_some_antivirus_data() -> None:
    rule = load_pack(DEFAULT).get("commune.signatures")
    assert rule is not None
    assert judge(rule, _signatures([{}] * 20, machines=20)) is True  # antivirus probe off
    assert judge(rule, _signatures([{}] * 19 + [STALE], machines=20)) is False


def test_meeting_room_rules_look_at_meeting_rooms_only() -> None:
    pack = load_pack(DEFAULT)
    ready, coverage = pack.get("meeting-room.ready"), pack.get("commune.meeting-room")
    assert ready is not None and coverage is not None
    room = Placement("Cao Bằng", "Hạ Lang", "Thanh Nhật", "", "meeting-room")
    assert ready.scope.matches(room)
    assert not ready.scope.matches(
        Placement("Cao Bằng", "Hạ Lang", "Thanh Nhật", "", "workstation")
    )
    assert judge(ready, _agent_vars(_room(""))) is True  # not judged is not "red"
    assert judge(ready, _agent_vars({"hardware": _hardware()})) is None
    assert judge(coverage, _rooms(expected=0, reporting=0)) is True  # the plan expects none


# ---- memoized verdicts ----------------------------------------------------------------------


def _disks(free_gib: int) -> dict[str, Any]:
    return _agent_vars({"hardware": _hardware(disks=[{"total_bytes": 100 * GiB,
                                                      "free_bytes": free_gib * GiB}])})  # fmt: skip


def test_memo_keeps_a_verdict_only_for_the_same_rule_inputs() -> None:
    rule = load_pack(DEFAULT).get("hardware.disk-free")
    assert rule is not None
    memo = Memo()
    assert memo.judge(rule, _disks(40)) is True
    # The same rule id with a condition that cannot be computed: only a re-run shows it.
    broken = dataclasses.replace(rule, program=cel.compile("1 / 0 == 1"))
    uptime = _disks(40)
    uptime["hardware"]["host"]["uptime_seconds"] = 99.0  # not read by the rule
    uptime["agent"]["id"] = "another agent"
    assert memo.judge(broken, uptime) is True  # kept: CEL did not run
    assert memo.judge(broken, _disks(39)) is None  # a changed input runs it
    assert memo.judge(rule, _disks(9)) is False
    assert memo.judge(rule, _disks(40)) is True
    assert memo.judge(rule, _agent_vars({})) is None  # no section: no verdict, nothing kept


def test_memo_is_bounded_per_rule() -> None:
    rule = load_pack(DEFAULT).get("hardware.disk-free")
    assert rule is not None
    memo = Memo(per_rule=3)
    for free in (10, 20, 30, 40):  # the fourth value empties the full cache first
        assert memo.judge(rule, _disks(free)) is True
    broken = dataclasses.replace(rule, program=cel.compile("1 / 0 == 1"))
    assert memo.judge(broken, _disks(40)) is True
    assert memo.judge(broken, _disks(10)) is None  # forgotten: run again


def test_memo_gives_the_verdicts_of_judge_in_any_order() -> None:
    pack = load_pack(DEFAULT)
    memo = Memo()
    # A replayed backlog arrives after newer reports: interleave passing and failing inputs.
    sequence = [v for pair in CASES.values() for v in pair] * 2
    sequence += [v for pair in reversed(CASES.values()) for v in reversed(pair)]
    for variables in sequence:
        for rule in pack.agent_rules():
            assert memo.judge(rule, variables) is judge(rule, variables), rule.id


def test_memo_does_not_keep_verdicts_over_long_lists() -> None:
    rule = load_pack(DEFAULT).get("software.signing-tool")
    assert rule is not None
    memo = Memo()
    many = [f"Program {i}" for i in range(MEMO_MAX_ITEMS + 1)]
    assert memo.judge(rule, _agent_vars(_programs(*many))) is False
    assert memo.judge(rule, _agent_vars(_programs(*many, "VNPT-CA Plugin"))) is True
    assert memo._verdicts.get(rule.id, {}) == {}  # neither kept (each key would hold the list)
    assert memo.judge(rule, _agent_vars(_programs("VNPT-CA Plugin"))) is True
    assert len(memo._verdicts[rule.id]) == 1  # a short list is remembered as before


def test_public_services_are_judged_only_where_they_are_checked() -> None:
    pack = load_pack(DEFAULT)
    machine, commune = pack.get("link.public-services"), pack.get("commune.public-services")
    assert machine is not None and commune is not None
    own_only = _agent_vars(_link(http_checks=[_http("intranet", False, service=False)]))
    assert judge(machine, own_only) is None
    assert judge(machine, _agent_vars(_link())) is None
    # No machine of the commune checks them (no services declared): nothing to fire.
    assert judge(commune, _services(reaching=0, failing=0)) is True
