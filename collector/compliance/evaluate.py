"""Pure evaluation: the variables of an agent or a unit, and a rule's verdict on them."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import cel

from collector.compliance.model import Rule
from collector.compliance.schema import SECTIONS
from collector.model import AgentRecord, Report

__all__ = ["ReadTree", "agent_variables", "judge", "prune", "read_tree", "report_variables"]


def agent_variables(
    agent: AgentRecord,
    snapshot: Mapping[str, Any],
    now: float,
    report_interval: float,
    silent_seconds: float,
) -> dict[str, Any]:
    """The variables of an agent rule over a stored snapshot (Store.snapshot layout)."""
    p = agent.placement
    out: dict[str, Any] = {
        "agent": {
            "id": agent.agent_id,
            "hostname": agent.hostname,
            "province": p.province,
            "district": p.district,
            "commune": p.commune,
            "unit": p.unit,
            "role": p.role,
            "agent_version": agent.agent_version,
            "report_interval": float(report_interval),
            "silent_seconds": float(silent_seconds),
            "silent_intervals": float(silent_seconds) / float(report_interval),
        },
        "probes": {k[7:]: v for k, v in snapshot.items() if k.startswith("status:")},
        "spool": snapshot.get("spool", {"dropped_total": 0, "depth": 0}),
        "now": float(now),
    }
    for s in SECTIONS:
        if s in snapshot:
            out[s] = snapshot[s]
    return out


def report_variables(agent: AgentRecord, report: Report, report_interval: float) -> dict[str, Any]:
    """The variables of an agent rule for one report, as of its collection time."""
    snapshot: dict[str, Any] = dict(report.sections)
    for name in report.sections:
        snapshot[f"status:{name}"] = {"ok": True, "error": ""}
    for e in report.errors:
        snapshot[f"status:{e['probe']}"] = {"ok": False, "error": e["message"]}
    snapshot["spool"] = report.spool
    return agent_variables(agent, snapshot, report.collected_at, report_interval, 0.0)


ReadTree = dict[str, Any]
"""Nested segments a pack reads; None below a key = the whole value, "*" = every element."""


def read_tree(paths: Collection[tuple[str, ...]]) -> ReadTree | None:
    """The tree of `paths` for prune(); None when a condition reads whole variables."""
    tree: ReadTree = {}
    for path in sorted(paths, key=len):
        node: ReadTree | None = tree
        for seg in path[:-1]:
            assert node is not None
            if seg in node and node[seg] is None:
                node = None
                break
            node = node.setdefault(seg, {})
        if node is not None and path:
            node[path[-1]] = None
    return tree or None


def prune(value: Any, tree: ReadTree | None) -> Any:
    """Only the parts of `value` in `tree`: what rules read is all that is converted to CEL."""
    if tree is None:
        return value
    if isinstance(value, list):
        inner = tree.get("*")
        return [prune(v, inner) for v in value] if "*" in tree else []
    if isinstance(value, dict):
        if "*" in tree:
            return {k: prune(v, tree["*"]) for k, v in value.items()}
        return {k: prune(value[k], t) for k, t in tree.items() if k in value}
    return value


def judge(
    rule: Rule, variables: Mapping[str, Any], context: cel.Context | None = None
) -> bool | None:
    """True (compliant), False (failing) or None: the data it reads is absent, or the
    condition cannot be computed on it (e.g. a division by zero)."""
    if not rule.sections.issubset(variables):
        return None
    try:
        result = rule.program.execute(context if context is not None else dict(variables))
    except Exception:  # CEL runtime errors on odd data: no verdict rather than a false one
        return None
    return result if isinstance(result, bool) else None
