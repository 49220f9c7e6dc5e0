"""The pure rollup: buckets merge exactly, whatever the grouping of the reports."""

from __future__ import annotations

import datetime
import itertools
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.compliance.loader import load_pack
from collector.model import AgentRecord, Placement, Report, RollupKey, Stat
from collector.rollup import Days, add, expected, summarise, values

RULES = load_pack(Path(__file__).resolve().parents[2] / "rules" / "default.yaml").agent_rules()
AGENT = AgentRecord(
    "a1", "m", "pc-01", "Windows", "10", "0.1.0",
    Placement("Cao Bằng", "Hạ Lang", "Thanh Nhật", "UBND", "workstation"),
    enrolled_at=1000.0, revoked_at=None, last_seen_at=None, last_report_at=None, last_seq=0,
)  # fmt: skip
GIB = 1 << 30


def report(seq: int, at: float, cpu: float, ram_gib: int) -> Report:
    hardware = {"cpu": {"usage_ratio": cpu}, "memory": {"total_bytes": ram_gib * GIB}}
    return Report(seq, "b", at, "0.1.0", sections={"hardware": hardware})


# (collected_at offset in seconds, delivery delay, cpu in quarters, RAM GiB)
received_reports = st.lists(
    st.tuples(
        st.integers(0, 3 * 3600),
        st.sampled_from([1.0, 30.0, 7200.0]),
        st.integers(0, 4),
        st.sampled_from([2, 8]),
    ),
    max_size=40,
)


def pairs(drawn: list[tuple[int, float, int, int]]) -> list[tuple[Report, float]]:
    return [
        (report(i + 1, 3600.0 + t, cpu / 4, ram), 3600.0 + t + delay)
        for i, (t, delay, cpu, ram) in enumerate(drawn)
    ]


@settings(max_examples=200)
@given(received_reports, st.lists(st.integers(0, 40), max_size=5))
def test_summarising_in_any_grouping_merges_to_the_same_buckets(
    drawn: list[tuple[int, float, int, int]], cuts: list[int]
) -> None:
    reports = pairs(drawn)
    whole = summarise(AGENT, reports, RULES, 15.0, 45.0)
    merged: dict[RollupKey, Stat] = {}
    bounds = [0, *sorted(c for c in cuts if c <= len(reports)), len(reports)]
    for lo, hi in itertools.pairwise(bounds):
        for key, stat in summarise(AGENT, reports[lo:hi], RULES, 15.0, 45.0).items():
            add(merged, key, stat)
    assert merged == whole  # quarters and whole GiB: every sum is exact in binary
    # And what the buckets say is what the reports were.
    received = sum(s.count for k, s in whole.items() if k.metric == "received")
    assert received == len(reports)
    late = sum(1 for r, at in reports if at - r.collected_at > 45.0)
    reachable = sum(s.total for k, s in whole.items() if k.metric == "reachable")
    assert reachable == len(reports) - late
    ram_ok = [s for k, s in whole.items() if k.metric == "hardware.min-ram"]
    assert sum(s.count for s in ram_ok) == len(reports)
    assert sum(s.total for s in ram_ok) == sum(1 for *_, ram in drawn if ram == 8)


def test_a_replayed_backlog_counts_as_unreachable_in_the_hour_it_was_collected() -> None:
    outage = [(report(i, 7200.0 + 60 * i, 0.5, 8), 20000.0) for i in range(1, 11)]
    buckets = summarise(AGENT, outage, (), 60.0, 180.0)
    key = RollupKey("a1", 3600, 7200.0, "availability", "reachable")
    assert buckets[key] == Stat(10, 0.0, 0.0, 0.0)
    assert buckets[RollupKey("a1", 3600, 7200.0, "hardware", "cpu.usage_ratio")].mean == 0.5


def test_values_keep_numbers_and_booleans_of_nested_objects_not_lists_or_text() -> None:
    section = {
        "enabled": True,
        "cpu": {"usage_ratio": 0.25, "model": "Intel"},
        "disks": [{"free_bytes": 1}],
        "nan": float("nan"),
    }
    assert dict(values(section)) == {"enabled": 1.0, "cpu.usage_ratio": 0.25}


def test_expected_counts_only_the_part_of_the_hour_the_agent_was_enrolled() -> None:
    assert expected(AGENT, 0.0, 15.0) == (3600 - 1000) / 15
    assert expected(AGENT, 3600.0, 15.0) == 240.0
    revoked = AgentRecord(**{**AGENT.__dict__, "revoked_at": 3600.0 + 900})
    assert expected(revoked, 3600.0, 15.0) == 60.0
    assert expected(revoked, 7200.0, 15.0) == 0.0


def test_days_start_at_local_midnight() -> None:
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    noon = datetime.datetime(2026, 11, 5, 12, 0, tzinfo=zone).timestamp()
    midnight = datetime.datetime(2026, 11, 5, 0, 0, tzinfo=zone).timestamp()
    assert Days("Asia/Ho_Chi_Minh")(noon) == midnight
    assert Days("Asia/Ho_Chi_Minh")(midnight) == midnight
