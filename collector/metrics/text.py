"""The Prometheus text exposition format, written directly from declared families."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from collector.metrics.base import Spec

__all__ = ["Families", "Kept", "Lines"]

_NUMBERS: frozenset[type] = frozenset({float, int})
_NON_FINITE = {"inf": "+Inf", "-inf": "-Inf", "nan": "NaN"}


def escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


def number(v: float) -> str:
    s = repr(float(v))
    return _NON_FINITE.get(s, s)


def _help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


class Families:
    """Declared families in output order; every sample carries the `fixed` labels first."""

    def __init__(self, specs: tuple[Spec, ...], fixed: tuple[str, ...]) -> None:
        self.specs = specs
        self.fixed = fixed
        # `%` templates, per family name: the fixed labels, one slot per extra label value (a
        # wrong count raises), then the value. An age keeps its head until the scrape time.
        self.by_name: dict[str, tuple[int, str, bool]] = {}
        for i, spec in enumerate(specs):
            extra = "".join(f',{k}="%s"' for k in spec.labels[len(fixed) :])
            head = spec.name + "{%s" + extra + "} "
            self.by_name[spec.name] = (i, head if spec.age else head + "%s\n", spec.age)
        self.headers = [
            f"# HELP {s.name} {_help(s.help)}\n# TYPE {s.name} {s.kind}\n" for s in specs
        ]


class Lines:
    """The sample lines of one owner (an agent, a place), joined per family index.

    prometheus_client's MetricFamily objects cost ~8 µs per series to build and format; at
    10,000 agents that alone would exceed a second, so lines are formatted here, once, and
    can be kept while their owner's data is unchanged (`Kept`). Ages keep their timestamp
    until the scrape time is known.
    """

    __slots__ = ("_families", "_prefix", "ages", "lines")

    def __init__(self, families: Families, values: Iterable[str]) -> None:
        self._families = families
        self._prefix = ",".join(
            f'{k}="{escape(v)}"' for k, v in zip(families.fixed, values, strict=True)
        )
        self.lines: dict[int, str] = {}
        self.ages: dict[int, list[tuple[str, float]]] = {}

    def add(self, name: str, value: Any, *extra: str) -> None:
        """One sample of family `name` with the extra label values; a value that is not a
        number emits nothing (None: not reported; JSON booleans are not numbers)."""
        if type(value) not in _NUMBERS:
            return
        i, template, age = self._families.by_name[name]
        if age:
            self.ages.setdefault(i, []).append(
                (template % (self._prefix, *map(escape, extra)), value)
            )
            return
        r = repr(float(value))  # number(), inlined: this runs once per series
        r = _NON_FINITE.get(r, r)
        if extra:
            line = template % (self._prefix, *map(escape, extra), r)
        else:
            line = template % (self._prefix, r)
        lines = self.lines
        lines[i] = lines.get(i, "") + line


class Kept:
    """Every owner's lines, kept per family: replacing an owner touches only its own lines,
    and a scrape joins each family's lines in one call (the format wants each family
    contiguous)."""

    def __init__(self, families: Families) -> None:
        self._families = families
        self._lines: list[dict[str, str]] = [{} for _ in families.specs]
        self._ages: list[dict[str, list[tuple[str, float]]]] = [{} for _ in families.specs]
        self._owned: dict[str, tuple[list[int], list[int]]] = {}

    def put(self, owner: str, lines: Lines) -> None:
        self.drop(owner)
        for i, text in lines.lines.items():
            self._lines[i][owner] = text
        for i, ages in lines.ages.items():
            self._ages[i][owner] = ages
        self._owned[owner] = (list(lines.lines), list(lines.ages))

    def drop(self, owner: str) -> None:
        owned = self._owned.pop(owner, None)
        if owned is not None:
            for i in owned[0]:
                del self._lines[i][owner]
            for i in owned[1]:
                del self._ages[i][owner]

    def text(self, now: float) -> str:
        out: list[str] = []
        for header, lines, ages in zip(
            self._families.headers, self._lines, self._ages, strict=True
        ):
            if lines or ages:
                out.append(header)
                out += lines.values()
                out += (
                    f"{head}{number(max(0.0, now - since))}\n"
                    for kept in ages.values()
                    for head, since in kept
                )
        return "".join(out)
