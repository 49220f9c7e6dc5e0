"""What a metric declaration is, and the labels every per-agent series carries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["AGENT_LABELS", "NUMBERS", "Add", "Spec", "agent_spec", "num"]

AGENT_LABELS = ("agent_id", "district", "commune", "unit", "host", "role")

# What a sample's value can be: `type(v) in NUMBERS`, as JSON booleans are not numbers.
NUMBERS: frozenset[type] = frozenset({float, int})


@dataclass(frozen=True)
class Spec:
    name: str  # as exposed (counters end in _total)
    kind: Literal["gauge", "counter", "histogram"]
    help: str
    labels: tuple[str, ...]
    # The section adds a Unix time; /metrics shows the seconds since it at each scrape, so an
    # agent's other lines can be kept between scrapes while its data is unchanged.
    age: bool = False


def agent_spec(
    name: str, kind: Literal["gauge", "counter"], help: str, *extra: str, age: bool = False
) -> Spec:
    """A per-agent series: AGENT_LABELS plus `extra` labels."""
    return Spec(name, kind, help, AGENT_LABELS + extra, age)


Add = Callable[..., None]
"""`add(name, value, *extra_label_values)`: emit one sample for the current agent; a value
that is not a number emits nothing (None: the agent did not report it; booleans do not
count). For an `age` spec the value is the Unix time the age counts from."""


def num(d: Any, *path: str) -> float | None:
    """The number at `path` in nested dicts, or None when absent or not a number."""
    v: Any = d
    for p in path:
        if type(v) is not dict:
            return None
        v = v.get(p)
    return float(v) if type(v) in NUMBERS else None
