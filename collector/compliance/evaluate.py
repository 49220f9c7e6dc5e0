"""Pure evaluation: the variables of an agent or a unit, and a rule's verdict on them."""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Mapping
from typing import Any

from collector.compliance.model import Rule
from collector.compliance.schema import SECTIONS
from collector.model import SPOOL_KEY, AgentRecord, Report, probe_of_status_key, status_key

__all__ = [
    "MEMO_MAX_ITEMS",
    "Memo",
    "Pruner",
    "ReadTree",
    "agent_variables",
    "judge",
    "keyer",
    "pruner",
    "read_tree",
    "report_variables",
]


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
        "probes": {
            probe: v for k, v in snapshot.items() if (probe := probe_of_status_key(k)) is not None
        },
        "spool": snapshot.get(SPOOL_KEY, {"dropped_total": 0, "depth": 0}),
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
        snapshot[status_key(name)] = {"ok": True, "error": ""}
    for e in report.errors:
        snapshot[status_key(e["probe"])] = {"ok": False, "error": e["message"]}
    snapshot[SPOOL_KEY] = report.spool
    return agent_variables(agent, snapshot, report.collected_at, report_interval, 0.0)


ReadTree = dict[str, Any]
"""Nested segments a rule reads; None below a key = the whole value, "*" = every element."""

Pruner = Callable[[Any], Any]
"""Only the parts of a value in a ReadTree: what a rule reads is all that is converted to CEL."""


def read_tree(paths: Collection[tuple[str, ...]]) -> ReadTree:
    """The tree of `paths` (a path ending at a variable or field reads all of it)."""
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
    return tree


def _whole(value: Any) -> Any:
    return value


def pruner(tree: ReadTree | None) -> Pruner:
    """The function keeping only the parts of a value in `tree`, built once per rule."""
    if tree is None:
        return _whole
    if "*" in tree:
        inner = pruner(tree["*"])

        def each(value: Any) -> Any:
            if isinstance(value, list):
                return [inner(v) for v in value]
            if isinstance(value, dict):
                return {k: inner(v) for k, v in value.items()}
            return value

        return each
    fields = tuple((k, pruner(t)) for k, t in tree.items())

    def some(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: p(value[k]) for k, p in fields if k in value}
        return [] if isinstance(value, list) else value

    return some


def _frozen(value: Any) -> Hashable:
    if isinstance(value, dict):
        return tuple((k, _frozen(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(map(_frozen, value))
    return value  # type: ignore[no-any-return]


_ABSENT = object()

# A verdict over a longer list (a software inventory's hundreds of programs) is not remembered:
# its key would keep the list alive (≈ 40 KiB for 300 names; 4096 of them per rule is
# ≈ 170 MiB), and the same list rarely comes twice.
MEMO_MAX_ITEMS = 64


class _TooLarge(Exception):
    """Raised by a key builder meeting a list longer than MEMO_MAX_ITEMS."""


def keyer(tree: ReadTree | None) -> Callable[[Any], Hashable]:
    """What pruner(tree) keeps, as nested tuples: the key of a memoized verdict."""
    if tree is None:
        return _frozen
    if "*" in tree:
        inner = keyer(tree["*"])

        def each(value: Any) -> Hashable:
            if isinstance(value, list):
                if len(value) > MEMO_MAX_ITEMS:
                    raise _TooLarge
                return tuple(map(inner, value))
            if isinstance(value, dict):
                return tuple((k, inner(v)) for k, v in value.items())
            return value  # type: ignore[no-any-return]

        return each
    fields = tuple((k, keyer(t)) for k, t in tree.items())

    def some(value: Any) -> Hashable:
        if isinstance(value, dict):
            return tuple(p(value[k]) if k in value else _ABSENT for k, p in fields)
        return () if isinstance(value, list) else value

    return some


def _execute(rule: Rule, inputs: Any) -> bool | None:
    try:
        if rule.applies is not None and rule.applies.execute(inputs) is not True:
            return None  # the rule does not apply to this machine: no verdict
        result = rule.program.execute(inputs)
    except Exception:  # CEL runtime errors on odd data: no verdict rather than a false one
        return None
    return result if isinstance(result, bool) else None


def judge(rule: Rule, variables: Mapping[str, Any]) -> bool | None:
    """True (compliant), False (failing) or None: the data it reads is absent, or the
    condition cannot be computed on it (e.g. a division by zero)."""
    if not rule.sections.issubset(variables):
        return None
    return _execute(rule, rule.inputs(variables))


class Memo:
    """A bounded cache of agent-rule verdicts by (rule, inputs): a verdict is a function of
    the values its condition reads (Rule.key), so equal values give it without running CEL,
    for any agent and in any order (late, replayed). Values of one path keep the type and
    shape of their proto field, so equal keys mean equal CEL inputs. Make a new Memo when
    the pack changes."""

    def __init__(self, per_rule: int = 4096) -> None:
        self._per_rule = per_rule
        self._verdicts: dict[str, dict[Hashable, bool | None]] = {}

    def judge(self, rule: Rule, variables: Mapping[str, Any]) -> bool | None:
        """judge(rule, variables), remembered."""
        if not rule.sections.issubset(variables):
            return None
        try:
            key = rule.key(variables)
        except _TooLarge:
            return _execute(rule, rule.inputs(variables))
        known = self._verdicts.setdefault(rule.id, {})
        if key in known:
            return known[key]
        if len(known) >= self._per_rule:
            known.clear()  # values that change every report (disk free, RTT, now) churn here
        verdict = known[key] = _execute(rule, rule.inputs(variables))
        return verdict
