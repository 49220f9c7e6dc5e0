"""Config loading: strict models, errors naming file and key path, and every example config."""

from __future__ import annotations

import dataclasses
import fnmatch
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import agent.config
import collector.config
from canhgac_common.config import ConfigError, StrictModel, load_model
from collector.sites import Sites, load_sites

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _load_agent(tmp_path: Path, text: str) -> agent.config.AgentConfig:
    return agent.config.load_config(_write(tmp_path, "agent.yaml", text))


def _load_collector(tmp_path: Path, text: str) -> collector.config.CollectorConfig:
    return collector.config.load_config(_write(tmp_path, "collector.yaml", text))


# --- errors name the file and the key path ---------------------------------------------------


def test_unknown_key_names_file_and_dotted_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        _load_agent(tmp_path, "spool:\n  max_bytez: 1MiB\n")
    assert "agent.yaml: spool.max_bytez: unknown key" in str(exc.value)
    assert str(tmp_path / "agent.yaml") in str(exc.value)


def test_unknown_top_level_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"collector\.yaml: grpc_listn: unknown key"):
        _load_collector(tmp_path, "grpc_listn: 0.0.0.0:4317\n")


def test_unknown_nested_key_in_collector(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"collector\.yaml: limits\.max_workers: unknown key"):
        _load_collector(tmp_path, "limits:\n  max_workers: 3\n")


def test_a_reserve_that_leaves_no_worker_for_measurements_names_file_and_keys(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError) as exc:
        _load_collector(tmp_path, "limits:\n  workers: 2\n  reserved_workers: 2\n")
    assert "collector.yaml: limits: " in str(exc.value)
    assert "reserved_workers (2) must be less than workers (2)" in str(exc.value)


def test_mtls_client_ca_without_tls_names_file_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"collector\.yaml: tls: .*client_ca_file needs"):
        _load_collector(tmp_path, "tls:\n  client_ca_file: /etc/canhgac/agents-ca.crt\n")


def test_every_bad_key_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        _load_agent(tmp_path, "spool:\n  max_bytez: 1\ndelivery:\n  batch: 3\n")
    lines = str(exc.value).splitlines()
    assert len(lines) == 2
    assert any("spool.max_bytez: unknown key" in line for line in lines)
    assert any("delivery.batch: unknown key" in line for line in lines)


def test_bad_duration_names_its_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        _load_agent(tmp_path, "spool:\n  max_age: two weeks\n")
    msg = str(exc.value)
    assert "agent.yaml: spool.max_age:" in msg
    assert "not a duration" in msg
    assert "two weeks" in msg


def test_bad_size_names_its_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        _load_collector(tmp_path, "limits:\n  max_message_bytes: 4 megs\n")
    msg = str(exc.value)
    assert "collector.yaml: limits.max_message_bytes:" in msg
    assert "not a size" in msg


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_store_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match=r"collector\.yaml: store: .*in-memory SQLite"):
        _load_collector(tmp_path, f"store:\n  url: '{url}'\n")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("hourly: 500d", r"retention: .*hourly must not be longer than rollups"),
        ("timezone: UTC", r"\(top level\): .*retention\.timezone: set the top-level `timezone`"),
        ("raw: 0s", r"retention\.raw: .*greater than 0"),
    ],
)
def test_bad_retention_names_the_key(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"collector\.yaml: " + message):
        _load_collector(tmp_path, f"retention:\n  {body}\n")


def test_one_timezone_for_every_local_time(tmp_path: Path) -> None:
    cfg = _load_collector(tmp_path, "timezone: Asia/Bangkok\n")
    assert {cfg.timezone, cfg.notify.timezone, cfg.meetings.timezone, cfg.retention.timezone} == {
        "Asia/Bangkok"
    }
    with pytest.raises(ConfigError, match=r"timezone: unknown time zone 'Asia/Hanoii'"):
        _load_collector(tmp_path, "timezone: Asia/Hanoii\n")
    with pytest.raises(ConfigError, match=r"notify\.timezone: set the top-level `timezone`"):
        _load_collector(tmp_path, "notify:\n  timezone: UTC\n")


def test_bool_is_not_a_duration(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"collector\.timeout:.*not a duration"):
        _load_agent(tmp_path, "collector:\n  timeout: true\n")


def test_durations_and_sizes_are_converted(tmp_path: Path) -> None:
    cfg = _load_agent(
        tmp_path,
        "spool:\n  max_bytes: 8MiB\n  max_age: 2d\n"
        "delivery:\n  pace: 250ms\n  backoff_max: 10m\n"
        "probes:\n  hardware:\n    interval: 1m\n",
    )
    assert cfg.spool.max_bytes == 8 * 1024 * 1024
    assert cfg.spool.max_age == 172800.0
    assert cfg.delivery.pace == 0.25
    assert cfg.delivery.backoff_max == 600.0
    assert cfg.probes.hardware.interval == 60.0


def test_out_of_range_value_names_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent\.yaml: delivery\.batch_size: .*500"):
        _load_agent(tmp_path, "delivery:\n  batch_size: 501\n")


def test_list_index_in_key_path(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "sites.yaml",
        "province: Cao Bằng\ndistricts:\n  - name: Hạ Lang\n    communes:\n"
        "      - {name: An Lạc}\n      - {name: Cô Ngân, kin: town}\n",
    )
    with pytest.raises(ConfigError, match=r"sites\.yaml: districts\[0\]\.communes\[1\]\.kin:"):
        load_sites(path)


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        _load_agent(tmp_path, "log_level: info\nspool:\n  max_bytes: [1, 2\n")
    msg = str(exc.value)
    assert msg.startswith(str(tmp_path / "agent.yaml"))
    assert "invalid YAML" in msg
    assert "line " in msg
    line = int(msg.split("line ")[1].split(":", maxsplit=1)[0])
    assert 3 <= line <= 4  # the unclosed flow sequence, or the end of input right after it


def test_invalid_yaml_line_number_is_one_based(tmp_path: Path) -> None:
    # A tab as indentation on line 2 is a scanner error reported at line 2.
    with pytest.raises(ConfigError, match=r"agent\.yaml: line 2: invalid YAML"):
        _load_agent(tmp_path, "spool:\n\tmax_bytes: 1\n")


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "agent.yaml"
    with pytest.raises(ConfigError) as exc:
        agent.config.load_config(missing)
    assert str(missing) in str(exc.value)
    assert "cannot read config" in str(exc.value)


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n"])
def test_empty_file_means_defaults(tmp_path: Path, text: str) -> None:
    assert _load_agent(tmp_path, text) == agent.config.AgentConfig()
    assert _load_collector(tmp_path, text) == collector.config.CollectorConfig()


def test_no_file_means_defaults() -> None:
    assert agent.config.load_config(None) == agent.config.AgentConfig()
    assert collector.config.load_config(None) == collector.config.CollectorConfig()


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent\.yaml: \(top level\):"):
        _load_agent(tmp_path, "- a\n- b\n")


def test_unknown_probe_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        _load_agent(tmp_path, "probes:\n  hardwear:\n    enabled: true\n")
    assert "agent.yaml: probes.hardwear: unknown key" in str(exc.value)


def test_probe_interval_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"probes\.hardware\.interval:"):
        _load_agent(tmp_path, "probes:\n  hardware:\n    interval: 0s\n")


def test_agent_log_level_checked_and_lowered(tmp_path: Path) -> None:
    assert _load_agent(tmp_path, "log_level: DEBUG\n").log_level == "debug"
    with pytest.raises(ConfigError, match=r"agent\.yaml: log_level:"):
        _load_agent(tmp_path, "log_level: loud\n")


@pytest.mark.parametrize(
    "tls",
    [
        "tls:\n  enabled: true\n",
        "tls:\n  enabled: true\n  cert_file: /etc/c.crt\n",
        "tls:\n  enabled: true\n  key_file: /etc/c.key\n",
    ],
)
def test_collector_tls_needs_cert_and_key(tmp_path: Path, tls: str) -> None:
    with pytest.raises(ConfigError) as exc:
        _load_collector(tmp_path, tls)
    msg = str(exc.value)
    assert "collector.yaml: tls:" in msg
    assert "cert_file" in msg
    assert "key_file" in msg


def test_collector_tls_with_cert_and_key_loads(tmp_path: Path) -> None:
    cfg = _load_collector(
        tmp_path, "tls:\n  enabled: true\n  cert_file: /etc/c.crt\n  key_file: /etc/c.key\n"
    )
    assert cfg.tls.enabled
    assert cfg.tls.cert_file == Path("/etc/c.crt")
    assert cfg.tls.key_file == Path("/etc/c.key")


def test_config_models_are_frozen() -> None:
    cfg = agent.config.AgentConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.log_level = "debug"  # type: ignore[misc]


def test_load_model_is_generic(tmp_path: Path) -> None:
    class Small(StrictModel):
        name: str = "x"

    assert load_model(Small, _write(tmp_path, "s.yaml", "name: Hạ Lang\n")).name == "Hạ Lang"


# --- every example config loads with its model -----------------------------------------------

# File name pattern -> loader. A new file in configs/ that matches none of these fails the test
# below: add its loader here so the example cannot rot.
LOADERS: list[tuple[str, Callable[[Path], object]]] = [
    ("agent.*.yaml", agent.config.load_config),
    ("collector.*.yaml", collector.config.load_config),
    ("sites.*.yaml", load_sites),
]
EXPECTED_TYPES = {
    "agent.*.yaml": agent.config.AgentConfig,
    "collector.*.yaml": collector.config.CollectorConfig,
    "sites.*.yaml": Sites,
}


def _example_configs() -> list[Path]:
    return sorted(CONFIGS.glob("*.yaml"))


def test_there_are_example_configs() -> None:
    names = {p.name for p in _example_configs()}
    assert {
        "agent.example.yaml",
        "agent.local.yaml",
        "collector.example.yaml",
        "collector.local.yaml",
        "sites.example.yaml",
    } <= names


@pytest.mark.parametrize("path", _example_configs(), ids=lambda p: p.name)
def test_example_config_loads(path: Path) -> None:
    matches = [(pat, load) for pat, load in LOADERS if fnmatch.fnmatch(path.name, pat)]
    assert len(matches) == 1, (
        f"{path.name}: no loader (or several) in tests/unit/test_config.py LOADERS; add one"
    )
    pattern, load = matches[0]
    loaded = load(path)
    assert isinstance(loaded, EXPECTED_TYPES[pattern])


def test_agent_example_spells_out_the_defaults() -> None:
    cfg = agent.config.load_config(CONFIGS / "agent.example.yaml")
    defaults = agent.config.AgentConfig()
    assert cfg.spool == defaults.spool
    assert cfg.delivery == defaults.delivery
    assert cfg.collector == defaults.collector
    assert cfg.probes == defaults.probes


def test_collector_example_spells_out_the_defaults() -> None:
    cfg = collector.config.load_config(CONFIGS / "collector.example.yaml")
    defaults = collector.config.CollectorConfig()
    assert cfg.limits == defaults.limits
    assert cfg.store == defaults.store
    assert cfg.retention == defaults.retention
    assert cfg.tls == defaults.tls
    assert cfg.report_interval == defaults.report_interval == 15.0
    assert cfg.province == "Cao Bằng"
    notify = cfg.notify.model_copy(update={"enabled": False, "recipients": [], "smtp": None})
    assert notify.model_dump() == {
        **collector.config.NotifyConfig().model_dump(),
        "enabled": False,
        "recipients": [],
        "smtp": None,
    }
    assert [r.role for r in cfg.notify.recipients] == ["it", "commune", "district"]
    assert cfg.notify.smtp.password_env and cfg.notify.smtp.password_file is None


def test_collector_local_points_at_a_loadable_sites_file() -> None:
    cfg = collector.config.load_config(CONFIGS / "collector.local.yaml")
    assert cfg.sites_file is not None
    # Relative paths are taken from the working directory, which for `make run` is the repo.
    sites = load_sites(REPO / cfg.sites_file)
    assert sites.province == cfg.province


# --- the sites tree --------------------------------------------------------------------------


@pytest.fixture
def sites() -> Sites:
    return load_sites(CONFIGS / "sites.example.yaml")


def test_sites_example_has_ha_lang_with_13_communes(sites: Sites) -> None:
    assert sites.province == "Cao Bằng"
    (ha_lang,) = [d for d in sites.districts if d.name == "Hạ Lang"]
    communes = {c.name: c for c in ha_lang.communes}
    assert len(ha_lang.communes) == 13
    assert len(communes) == 13
    assert communes["Thanh Nhật"].kind == "town"
    assert "Vinh Quý" in communes
    assert [c.name for c in ha_lang.communes if c.kind == "town"] == ["Thanh Nhật"]
    assert all(c.meeting_rooms == 1 for c in ha_lang.communes)


def test_check_place_accepts_known_places(sites: Sites) -> None:
    sites.check_place("Hạ Lang", None, None)
    sites.check_place("Hạ Lang", "Thanh Nhật", None)
    sites.check_place("Hạ Lang", "Vinh Quý", None)
    sites.check_place("Hạ Lang", None, "Phòng Nội vụ")


def test_check_place_unknown_district_names_known(sites: Sites) -> None:
    with pytest.raises(ConfigError) as exc:
        sites.check_place("Trùng Khánh", None, None)
    assert "unknown district 'Trùng Khánh'" in str(exc.value)
    assert "Hạ Lang" in str(exc.value)


def test_check_place_unknown_commune_names_known(sites: Sites) -> None:
    with pytest.raises(ConfigError) as exc:
        sites.check_place("Hạ Lang", "Thanh Nhat", None)
    msg = str(exc.value)
    assert "unknown commune 'Thanh Nhat'" in msg
    assert "Hạ Lang" in msg
    assert "Thanh Nhật" in msg
    assert "Vinh Quý" in msg


def test_check_place_unknown_unit_in_district_names_known(sites: Sites) -> None:
    with pytest.raises(ConfigError) as exc:
        sites.check_place("Hạ Lang", None, "Phòng Ngoại vụ")
    msg = str(exc.value)
    assert "unknown unit 'Phòng Ngoại vụ'" in msg
    assert "Phòng Nội vụ" in msg


def test_check_place_unit_of_district_is_not_a_unit_of_commune(sites: Sites) -> None:
    with pytest.raises(ConfigError) as exc:
        sites.check_place("Hạ Lang", "An Lạc", "Phòng Nội vụ")
    msg = str(exc.value)
    assert "An Lạc, Hạ Lang" in msg
    assert "known: none" in msg


def test_sites_reject_duplicate_commune(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "sites.yaml",
        "province: Cao Bằng\ndistricts:\n  - name: Hạ Lang\n    communes:\n"
        "      - {name: An Lạc}\n      - {name: An Lạc}\n",
    )
    with pytest.raises(ConfigError, match=r"sites\.yaml: districts\[0\]:.*'An Lạc' listed twice"):
        load_sites(path)


def test_sites_reject_unknown_commune_kind(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "sites.yaml",
        "province: Cao Bằng\ndistricts:\n  - name: Hạ Lang\n    communes:\n"
        "      - {name: An Lạc, kind: city}\n",
    )
    with pytest.raises(ConfigError, match=r"districts\[0\]\.communes\[0\]\.kind:"):
        load_sites(path)


# --- the agent's sections (agent.settings, no pydantic) ----------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("collector:\n  gzip: 'yes'\n", "agent.yaml: collector.gzip: must be a boolean, not 'yes'"),
        ("delivery:\n  batch_size: true\n", "agent.yaml: delivery.batch_size: must be an integer"),
        ("delivery:\n  batch_size: 0\n", "agent.yaml: delivery.batch_size: must be at least 1"),
        ("probes:\n  link:\n    targets: 10.0.0.1\n", "probes.link.targets: must be a list"),
        (
            "probes:\n  link:\n    targets: [10.0.0.1, 7]\n",
            "probes.link.targets[1]: must be a string",
        ),
        (
            "probes:\n  link:\n    http_checks:\n      - {name: portal, url: ftp://x}\n",
            "probes.link.http_checks[0].url: must match ^https?://",
        ),
        (
            "probes:\n  link:\n    http_checks:\n      - {name: portal}\n",
            "url: required key missing",
        ),
        (
            "probes:\n  meeting_room:\n    expect:\n      - {kind: fax}\n",
            "probes.meeting_room.expect[0].kind: must be one of 'camera'",
        ),
        (
            "probes:\n  meeting_room:\n    apps:\n      - {name: Zoom, processes: []}\n",
            "probes.meeting_room.apps[0].processes: must have at least 1 item",
        ),
        (
            "probes:\n  antivirus:\n    processes: {BKAV: BkavService}\n",
            "probes.antivirus.processes.BKAV: must be a list",
        ),
        ("spool: 5\n", "agent.yaml: spool: must be a mapping"),
    ],
)
def test_agent_value_errors_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as exc:
        _load_agent(tmp_path, text)
    assert expected in str(exc.value)
    assert len(str(exc.value).splitlines()) == 1


def test_agent_values_are_typed(tmp_path: Path) -> None:
    cfg = _load_agent(
        tmp_path,
        "state_dir: /srv/agent\ncollector:\n  tls: {enabled: true, ca_file: /etc/ca.pem}\n"
        "probes:\n  antivirus:\n    processes: {BKAV: [BkavService]}\n"
        "  meeting_room:\n    enabled: true\n    readiness: {video_profile: 720p, green_loss: 0}\n",
    )
    assert cfg.state_dir == Path("/srv/agent")
    assert cfg.collector.tls.ca_file == Path("/etc/ca.pem")
    assert cfg.probes.antivirus.processes == {"BKAV": ["BkavService"]}
    readiness = cfg.probes.meeting_room.readiness
    assert (readiness.video_profile, readiness.green_loss) == ("720p", 0.0)
    assert isinstance(readiness.green_loss, float)
    assert cfg.probes.meeting_room.throughput.every == 3600.0  # its own default kept


def test_the_agent_service_does_not_load_pydantic() -> None:
    # ≈ 11 MB of the service's resident memory (docs/performance.md, agent memory).
    code = (
        "import sys, agent.cli, agent.config; agent.config.load_config(None);"
        " print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'scapy')))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, capture_output=True)
    assert out.stdout.decode().strip() == "[]"
