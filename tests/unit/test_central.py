"""The agent's side of central settings: merged over its file, checked by the file's validator,
kept for a restart, refused without replacing what runs (agent/central.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.central import SETTINGS_FILE, Central
from agent.config import LocalFile
from agent.errors import AgentError
from agent.transport.client import DeliveryError
from agent.transport.wire import StatusCode


def _local(tmp_path: Path, **extra: Any) -> LocalFile:
    path = tmp_path / "agent.yaml"
    doc = {"state_dir": str(tmp_path / "state"), "collector": {"address": "district:4317"}}
    path.write_text(json.dumps({**doc, **extra}), encoding="utf-8")
    return LocalFile.read(path)


def _central(local: LocalFile, pushed: dict[str, tuple[str, Any]]) -> tuple[Central, list[str]]:
    fetched: list[str] = []

    def fetch() -> tuple[str, Any]:
        digest, doc = pushed["now"]
        fetched.append(digest)
        return digest, doc

    return Central(local.parse(local.data, local.source), local, fetch), fetched


def test_a_push_is_merged_over_the_file_and_kept(tmp_path: Path) -> None:
    local = _local(tmp_path, probes={"link": {"count": 3, "targets": ["10.0.0.1"]}})
    pushed = {"now": ("aaaa", {"probes": {"link": {"count": 5}}, "delivery": {"pace": "2s"}})}
    central, fetched = _central(local, pushed)
    config = central.offer("aaaa")
    assert config is not None
    assert (config.probes.link.count, config.probes.link.targets) == (5, ["10.0.0.1"])
    assert config.delivery.pace == 2.0
    assert central.state.hash == "aaaa" and fetched == ["aaaa"]
    assert central.offer("aaaa") is None and fetched == ["aaaa"]  # runs it: not fetched again
    kept = json.loads((tmp_path / "state" / SETTINGS_FILE).read_text())
    assert kept["hash"] == "aaaa"
    # A restart starts from the kept settings, before any ack.
    again, _ = _central(local, pushed)
    assert again.state.hash == "aaaa" and again.config.probes.link.count == 5


def test_a_refused_push_keeps_what_runs_and_is_not_fetched_again(tmp_path: Path) -> None:
    local = _local(tmp_path)
    pushed: dict[str, tuple[str, Any]] = {"now": ("good", {"probes": {"link": {"count": 5}}})}
    central, fetched = _central(local, pushed)
    assert central.offer("good") is not None
    pushed["now"] = ("bad", {"probes": {"link": {"count": 5000}}, "log_level": "loud"})
    assert central.offer("bad") is None
    assert central.state.hash == "good" and central.state.refused_hash == "bad"
    reason = central.state.refused_reason
    assert "central settings bad: probes.link.count: must be at most 1000, not 5000" in reason
    assert "log_level: must be one of debug, info, warning, error" in reason
    assert central.config.probes.link.count == 5
    assert central.offer("bad") is None and fetched == ["good", "bad"]
    assert json.loads((tmp_path / "state" / SETTINGS_FILE).read_text())["hash"] == "good"


@pytest.mark.parametrize(
    "document",
    [{"collector": {"address": "evil:4317"}}, {"state_dir": "/tmp/x"}, ["not", "a", "map"]],
)
def test_local_only_keys_and_garbage_are_refused(tmp_path: Path, document: Any) -> None:
    central, _ = _central(_local(tmp_path), {"now": ("evil", document)})
    assert central.offer("evil") is None
    assert central.state.refused_hash == "evil"
    assert central.config.collector.address == "district:4317"


def test_no_hash_means_the_file_alone(tmp_path: Path) -> None:
    local = _local(tmp_path, probes={"link": {"count": 3}})
    central, fetched = _central(local, {"now": ("aaaa", {"probes": {"link": {"count": 9}}})})
    assert central.offer("aaaa") is not None
    config = central.offer("")
    assert config is not None and config.probes.link.count == 3
    assert central.state.hash == "" and fetched == ["aaaa"]


def test_a_failed_fetch_changes_nothing_and_is_tried_on_the_next_ack(tmp_path: Path) -> None:
    local = _local(tmp_path)

    def fetch() -> tuple[str, Any]:
        raise DeliveryError(StatusCode.UNAVAILABLE, "no answer in 20 s", local=True)

    central = Central(local.parse(local.data, local.source), local, fetch)
    with pytest.raises(AgentError):
        central.offer("aaaa")
    assert central.state.hash == "" and central.state.refused_hash == ""


def test_kept_settings_that_no_longer_fit_the_file_are_refused_at_start(tmp_path: Path) -> None:
    """The file was edited (or the agent upgraded) under settings kept from a push."""
    local = _local(tmp_path)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / SETTINGS_FILE).write_text('{"hash": "aaaa", "document": {"x": 1}}')
    restarted, _ = _central(local, {"now": ("aaaa", {})})
    assert restarted.state.hash == "" and restarted.state.refused_hash == "aaaa"
    assert "central settings aaaa: x: unknown key" in restarted.state.refused_reason


def test_an_unreadable_kept_file_is_ignored(tmp_path: Path) -> None:
    local = _local(tmp_path)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / SETTINGS_FILE).write_text("{not json")
    central, _ = _central(local, {"now": ("aaaa", {})})
    assert central.state.hash == "" and central.config.collector.address == "district:4317"


def test_a_refusal_is_remembered_across_a_restart_unless_the_file_changed(tmp_path: Path) -> None:
    local = _local(tmp_path)
    central, _ = _central(local, {"now": ("bad", {"log_level": "loud"})})
    assert central.offer("bad") is None
    restarted, fetched = _central(local, {"now": ("bad", {"log_level": "loud"})})
    assert restarted.state.refused_hash == "bad"
    assert restarted.offer("bad") is None and fetched == []  # not judged again
    edited = _local(tmp_path, log_level="debug")
    again, fetched = _central(edited, {"now": ("bad", {"log_level": "loud"})})
    assert again.state.refused_hash == ""
    assert again.offer("bad") is None and fetched == ["bad"]  # judged against the new file
