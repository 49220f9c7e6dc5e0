"""Pure: what a rollup keeps of raw reports (availability, section values, rule verdicts).

A bucket is a collector.model.Stat per (agent, hour, section, metric); Stats merge exactly,
so summarising reports in any grouping and merging gives the same buckets
(tests/unit/test_rollup.py checks it)."""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from collector.compliance.evaluate import Memo, report_variables
from collector.compliance.model import Rule
from collector.indicators import MACHINE_INDICATORS, meets
from collector.metrics.link import SECTION as LINK_SECTION
from collector.model import (
    ROLLUP_AVAILABILITY,
    ROLLUP_INDICATOR,
    ROLLUP_RULE,
    ROLLUP_SERVICE,
    AgentRecord,
    Report,
    RollupKey,
    Stat,
)

__all__ = ["HOUR", "Days", "add", "expected", "hour_of", "summarise", "values"]

HOUR = 3600
DAY = 86400
# Deeper than this a section's values are not kept (none of the probes nests further).
_DEPTH = 4


def hour_of(t: float) -> float:
    return float(math.floor(t / HOUR) * HOUR)


class Days:
    """The start of the local day (Unix seconds) holding `t`, in the retention time zone."""

    def __init__(self, zone: str) -> None:
        self._zone = ZoneInfo(zone)

    def __call__(self, t: float) -> float:
        local = datetime.datetime.fromtimestamp(t, self._zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight.timestamp()


def values(data: Any, prefix: str = "", depth: int = 0) -> Iterator[tuple[str, float]]:
    """The numbers of a section as (dotted path, value): numbers and booleans (1/0, so the
    mean is the share of true) under nested objects. Lists (disks, interfaces, products)
    and text are not kept: a bucket holds one value per path."""
    if not isinstance(data, Mapping) or depth >= _DEPTH:
        return
    for name, value in data.items():
        path = f"{prefix}{name}"
        if isinstance(value, bool):
            yield path, 1.0 if value else 0.0
        elif isinstance(value, int | float):
            if math.isfinite(value):
                yield path, float(value)
        elif isinstance(value, Mapping):
            yield from values(value, path + ".", depth + 1)


def add(into: dict[RollupKey, Stat], key: RollupKey, stat: Stat) -> None:
    found = into.get(key)
    into[key] = stat if found is None else found.merge(stat)


def summarise(
    agent: AgentRecord,
    received: Iterable[tuple[Report, float]],
    rules: Sequence[Rule],
    report_interval: float,
    reachable_within: float,
    *,
    memo: Memo | None = None,
) -> dict[RollupKey, Stat]:
    """The hourly buckets of (report, received_at) pairs of one agent. `rules` are the pack's
    agent rules; those judged on the collector's clock (silence) are left to availability."""
    memo = memo or Memo()
    judged = [r for r in rules if not r.time_dependent and r.scope.matches(agent.placement)]
    out: dict[RollupKey, Stat] = {}
    for report, received_at in received:
        start = hour_of(report.collected_at)

        def key(section: str, metric: str, start: float = start) -> RollupKey:
            return RollupKey(agent.agent_id, HOUR, start, section, metric)

        add(out, key(ROLLUP_AVAILABILITY, "received"), Stat.of(1.0))
        late = received_at - report.collected_at > reachable_within
        add(out, key(ROLLUP_AVAILABILITY, "reachable"), Stat.of(0.0 if late else 1.0))
        for section, data in report.sections.items():
            for path, value in values(data):
                add(out, key(section, path), Stat.of(value))
        for check in report.sections.get(LINK_SECTION, {}).get("http_checks", []):
            if check.get("name"):
                answered = Stat.of(1.0 if check.get("ok") else 0.0)
                add(out, key(ROLLUP_SERVICE, str(check["name"])), answered)
        if judged:
            variables = report_variables(agent, report, report_interval)
            verdicts: dict[str, bool] = {}
            for rule in judged:
                ok = memo.judge(rule, variables)
                if ok is not None:
                    verdicts[rule.id] = ok
                    add(out, key(ROLLUP_RULE, rule.id), Stat.of(1.0 if ok else 0.0))
            for ind in MACHINE_INDICATORS:
                met = meets(ind, verdicts)
                if met is not None:
                    add(out, key(ROLLUP_INDICATOR, ind.id), Stat.of(1.0 if met else 0.0))
    return out


def expected(agent: AgentRecord, hour: float, report_interval: float) -> float:
    """Reports the agent's interval asks for in `hour`, for the part of it it was enrolled."""
    begin = max(hour, agent.enrolled_at)
    end = min(hour + HOUR, agent.revoked_at if agent.revoked_at is not None else math.inf)
    return max(0.0, end - begin) / report_interval
