"""Central settings at the collector: layers, merge order, hash, and the check against the schema
the agent publishes — which must refuse what the agent's own validator refuses."""

from __future__ import annotations

from typing import Any

import pytest

from agent.central import merged_config
from agent.config import ConfigError, LocalFile
from collector.agent_settings import (
    Layer,
    SettingsError,
    changes,
    check_layer,
    effective,
    settings_hash,
    with_value,
    without_key,
)
from collector.model import AgentRecord, Placement


def _agent(commune: str = "Thanh Nhật", role: str = "workstation", unit: str = "") -> AgentRecord:
    return AgentRecord(
        agent_id="a1",
        machine_id="m",
        hostname="h",
        os_name="Windows",
        os_version="10",
        agent_version="0.1.0",
        placement=Placement("Cao Bằng", "Hạ Lang", commune, unit, role),
        enrolled_at=0.0,
        revoked_at=None,
        last_seen_at=None,
        last_report_at=None,
        last_seq=0,
    )


@pytest.mark.parametrize(
    ("text", "applies"),
    [
        ("defaults", True),
        ("role:workstation", True),
        ("role:server", False),
        ("district:Hạ Lang", True),
        ("commune:Thanh Nhật", True),
        ("commune:Hạ Lang/Thanh Nhật", True),
        ("commune:Trùng Khánh/Thanh Nhật", False),  # the same name in another district
        ("unit:Hạ Lang/Thanh Nhật/Một cửa", True),
        ("unit:Một cửa", True),
        ("unit:Văn phòng", False),
        ("agent:a1", True),
        ("agent:a2", False),
    ],
)
def test_which_layers_apply_to_an_agent(text: str, applies: bool) -> None:
    layer = Layer.parse(text)
    assert str(layer) == text
    assert layer.applies_to(_agent(unit="Một cửa")) is applies


@pytest.mark.parametrize("text", ["village:x", "defaults:x", "role:", "commune", ""])
def test_a_bad_layer_name_is_refused(text: str) -> None:
    with pytest.raises(SettingsError):
        Layer.parse(text)


def test_layers_merge_from_least_to_most_specific_and_say_where_each_key_came_from() -> None:
    layers: dict[Layer, dict[str, Any]] = {
        Layer.parse("agent:a1"): {"probes": {"link": {"count": 9}}},
        Layer.parse("defaults"): {"probes": {"link": {"count": 3, "targets": ["10.0.0.1"]}}},
        Layer.parse("commune:Thanh Nhật"): {"probes": {"link": {"targets": ["10.9.0.1"]}}},
        Layer.parse("role:server"): {"log_level": "debug"},
    }
    doc, origin = effective(layers, _agent(), [{"name": "iGate", "url": "https://igate/"}])
    assert doc == {
        "probes": {
            "link": {
                "count": 9,
                "targets": ["10.9.0.1"],
                "services": [{"name": "iGate", "url": "https://igate/"}],
            }
        }
    }
    assert origin == {
        ("probes", "link", "count"): Layer("agent", "a1"),
        ("probes", "link", "targets"): Layer("commune", "Thanh Nhật"),
    }


def test_the_hash_names_the_settings_not_their_key_order() -> None:
    a = {"probes": {"link": {"count": 3, "targets": ["x"]}}, "log_level": "info"}
    b = {"log_level": "info", "probes": {"link": {"targets": ["x"], "count": 3}}}
    assert settings_hash(a) == settings_hash(b) and len(settings_hash(a)) == 16
    assert settings_hash({}) == ""
    assert settings_hash(a) != settings_hash({**a, "log_level": "debug"})


def test_setting_and_unsetting_keys() -> None:
    doc = with_value({}, "probes.link.count", 5)
    doc = with_value(doc, "probes.link.targets", ["10.0.0.1"])
    assert doc == {"probes": {"link": {"count": 5, "targets": ["10.0.0.1"]}}}
    assert changes(doc, with_value(doc, "probes.link.count", 7)) == [("probes.link.count", 5, 7)]
    doc = without_key(doc, "probes.link.count")
    assert without_key(doc, "probes.link.targets") == {}
    with pytest.raises(SettingsError, match="not set in this layer"):
        without_key(doc, "probes.hardware.interval")
    with pytest.raises(SettingsError, match="not a key path"):
        with_value(doc, "probes..count", 1)


def _agent_refuses(document: dict[str, Any]) -> bool:
    local = LocalFile({}, "agent.yaml")
    try:
        merged_config(local, document, "pushed")
    except ConfigError:
        return True
    return False


def _collector_refuses(document: dict[str, Any]) -> bool:
    try:
        check_layer(Layer("defaults"), document)
    except SettingsError:
        return True
    return False


@pytest.mark.parametrize(
    "document",
    [
        {"probes": {"link": {"count": 5}}},
        {"probes": {"link": {"count": 0}}},
        {"probes": {"link": {"count": 1001}}},
        {"probes": {"link": {"count": "5"}}},
        {"probes": {"link": {"count": True}}},
        {"probes": {"link": {"ping_interval": "0s"}}},
        {"probes": {"link": {"ping_interval": "200ms"}}},
        {"probes": {"link": {"ping_interval": "soon"}}},
        {"probes": {"link": {"http_checks": [{"name": "x", "url": "ftp://x"}]}}},
        {"probes": {"link": {"http_checks": [{"name": "x", "url": "https://x"}]}}},
        {"probes": {"link": {"http_checks": [{"url": "https://x"}]}}},
        {
            "probes": {
                "link": {"http_checks": [{"name": "x", "url": "https://x", "expect_status": 99}]}
            }
        },
        {"probes": {"hardware": {"interval": "1m", "enabled": True}}},
        {"probes": {"hardware": {"enabled": "yes"}}},
        {"probes": {"nonexistent": {}}},
        {"spool": {"max_bytes": "64MiB"}},
        {"spool": {"max_bytes": "lots"}},
        {"delivery": {"batch_size": 501}},
        {"delivery": {"batch_size": 50, "pace": 1}},
        {"collector": {"address": "evil:4317"}},
        {"state_dir": "/tmp/x"},
        {"bogus": 1},
    ],
)
def test_the_collector_refuses_what_the_agent_refuses(document: dict[str, Any]) -> None:
    """The agent's validator is the authority; the schema must agree with it on every case
    both can judge (only fields with their own check function, e.g. log_level's words, are
    left to the agent: docs/fleet.md)."""
    assert _collector_refuses(document) is _agent_refuses(document)


def test_what_only_the_agent_judges_is_refused_there() -> None:
    document = {"log_level": "loud"}
    assert _collector_refuses(document) is False
    assert _agent_refuses(document) is True


def test_public_services_come_only_from_the_collector_config() -> None:
    with pytest.raises(SettingsError, match="services:"):
        check_layer(Layer("defaults"), {"probes": {"link": {"services": []}}})
