"""Compiled rules and packs: what the loader produces and the evaluator and alerts consume."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Literal

import cel

from collector.model import Placement

__all__ = ["SEVERITIES", "Kind", "Rule", "RulePack", "Scope", "Text"]

SEVERITIES = ("critical", "high", "medium", "low", "info")
Kind = Literal["agent", "fleet"]


@dataclass(frozen=True)
class Text:
    vi: str
    en: str


@dataclass(frozen=True)
class Scope:
    """Empty tuples match everything; otherwise the place must be listed."""

    roles: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    communes: tuple[str, ...] = ()
    units: tuple[str, ...] = ()

    def matches(self, p: Placement) -> bool:
        return all(
            not allowed or value in allowed
            for allowed, value in (
                (self.roles, p.role),
                (self.districts, p.district),
                (self.communes, p.commune),
                (self.units, p.unit),
            )
        )


@dataclass(frozen=True)
class Rule:
    id: str
    kind: Kind
    title: Text
    remediation: Text
    rationale: Text
    severity: str
    scope: Scope
    condition: str  # CEL; true = compliant, the alert fires while it is false
    for_seconds: float  # how long it must be false before the alert fires
    hold_seconds: float  # how long it must be true again before the alert resolves
    group_by: Literal["", "commune", "district"]  # fleet rules only
    suppresses: bool  # fleet root cause: while firing, alerts inside its group do not notify
    source: str  # "file:line", for messages
    program: cel.Program = field(compare=False, repr=False)
    # Only the parts of the variables the condition reads (evaluate.pruner over `reads`).
    inputs: Callable[[Any], Any] = field(compare=False, repr=False)
    # The same values as nested tuples (evaluate.keyer): the key of a memoized verdict.
    key: Callable[[Any], Hashable] = field(compare=False, repr=False)
    # Agent rules: judged only where this holds (`applies:`); None = everywhere.
    applies: cel.Program | None = field(default=None, compare=False, repr=False)
    # Section variables the condition reads: it is judged only when all of them were reported.
    sections: frozenset[str] = frozenset()
    # Reads agent.silent_*: must be re-judged on the timer as well as on reports.
    time_dependent: bool = False
    # Variable paths the condition reads ("*" = each element); the rest never reaches CEL.
    reads: frozenset[tuple[str, ...]] = frozenset()
    # Agent rules whose verdicts a fleet condition counts (passing["id"], judged["id"]).
    counts: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RulePack:
    rules: tuple[Rule, ...]
    files: tuple[str, ...]

    def agent_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.kind == "agent")

    def fleet_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.kind == "fleet")

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)
