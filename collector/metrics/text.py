"""The Prometheus text exposition format, written directly from declared families."""

from __future__ import annotations

from collections.abc import Iterable

from collector.metrics.base import Spec

__all__ = ["Families", "Lines", "escape", "number", "text"]

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
        self.index = {s.name: i for i, s in enumerate(specs)}
        self.age = [s.age for s in specs]
        # `%` templates: fixed labels, then one slot per extra label value (a wrong count
        # raises), then the value; ages keep the head only until the scrape time is known.
        self.heads = [
            s.name + "{%s" + "".join(f',{k}="%s"' for k in s.labels[len(fixed) :]) + "} "
            for s in specs
        ]
        self.templates = [head + "%s\n" for head in self.heads]
        self.headers = [
            f"# HELP {s.name} {_help(s.help)}\n# TYPE {s.name} {s.kind}\n" for s in specs
        ]


class Lines:
    """The sample lines of one owner (an agent, a place), each tagged with its family's index.

    prometheus_client's MetricFamily objects cost ~8 µs per series to build and format; at
    10,000 agents that alone would exceed a second, so lines are formatted here, once, and
    can be kept while their owner's data is unchanged. Ages keep their timestamp until the
    scrape time is known (`text`).
    """

    __slots__ = ("_families", "_prefix", "ages", "lines")

    def __init__(self, families: Families, values: Iterable[str]) -> None:
        self._families = families
        self._prefix = ",".join(
            f'{k}="{escape(v)}"' for k, v in zip(families.fixed, values, strict=True)
        )
        self.lines: list[tuple[int, str]] = []
        self.ages: list[tuple[int, str, float]] = []

    def add(self, name: str, value: float | None, *extra: str) -> None:
        """One sample of family `name` with the extra label values; None emits nothing."""
        if value is None:
            return
        families = self._families
        i = families.index[name]
        labels = (self._prefix, *map(escape, extra)) if extra else (self._prefix,)
        if families.age[i]:
            self.ages.append((i, families.heads[i] % labels, value))
        else:
            r = repr(float(value))  # number(), inlined: this runs once per series
            self.lines.append((i, families.templates[i] % (*labels, _NON_FINITE.get(r, r))))


def text(families: Families, owners: Iterable[Lines], now: float) -> str:
    """Every owner's samples grouped by family (the format wants each family contiguous)."""
    buckets: list[list[str]] = [[] for _ in families.specs]
    for owner in owners:
        for i, line in owner.lines:
            buckets[i].append(line)
        for i, head, since in owner.ages:
            buckets[i].append(f"{head}{number(max(0.0, now - since))}\n")
    out: list[str] = []
    for header, lines in zip(families.headers, buckets, strict=True):
        if lines:
            out.append(header)
            out.extend(lines)
    return "".join(out)
