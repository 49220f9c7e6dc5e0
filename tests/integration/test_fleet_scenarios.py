"""The fleet simulator's scenarios against a real collector: a commune's uplink down then back,
and a province-wide outage followed by everyone at once — every report stored once, in order."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.fleet import SimAgent, enroll_fleet, tokens_for
from collector.sites import load_sites
from tests.integration.harness import Running

SITES = Path(__file__).resolve().parents[2] / "configs" / "sites.example.yaml"
ROUNDS = 6


def _run(collector: Running, online: Callable[[SimAgent, int], bool]) -> list[SimAgent]:
    tokens = tokens_for(collector.app.store, load_sites(SITES))
    agents, rng = enroll_fleet(collector.address, tokens, 30)
    for round_ in range(1, ROUNDS + 1):
        for a in agents:
            a.report(rng, online=online(a, round_))
    return agents


def _received_order(collector: Running, agent_id: str) -> list[int]:
    """Seqs in the order the collector stored them (rowid order of the history table)."""
    db = collector.app.cfg.store.url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT seq FROM reports WHERE agent_id = ? ORDER BY rowid", (agent_id,)
        ).fetchall()
    return [r[0] for r in rows]


@pytest.mark.parametrize("scenario", ["commune-outage", "province-herd"])
def test_backlogs_arrive_once_and_in_order(collector: Running, scenario: str) -> None:
    if scenario == "commune-outage":

        def online(a: SimAgent, round_: int) -> bool:
            return not (a.place.commune == "Kim Loan" and 2 <= round_ <= 4)
    else:

        def online(a: SimAgent, round_: int) -> bool:
            return round_ > 4

    agents = _run(collector, online)
    affected = [a for a in agents if not online(a, 3)]
    assert affected, "the scenario must take some agents offline"
    for a in agents:
        assert a.backlog == []
        assert collector.app.store.report_seqs(a.agent_id) == list(range(1, ROUNDS + 1))
        assert _received_order(collector, a.agent_id) == list(range(1, ROUNDS + 1))
