"""The Prometheus text exposition format, written directly from declared families."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from collector.metrics.base import Spec

__all__ = ["Batch", "Families", "Kept", "OwnerLines", "numbers"]

_NUMBERS: frozenset[type] = frozenset({float, int})
_NON_FINITE = {"inf": b"+Inf\n", "-inf": b"-Inf\n", "nan": b"NaN\n"}

# An owner's kept lines: per family index, its sample lines (a family with `age` keeps each
# line's head and the Unix time its age counts from instead).
Ages = dict[int, list[tuple[bytes, float]]]
OwnerLines = tuple[dict[int, bytes], Ages]


def escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


def _label(value: str) -> bytes:
    return escape(value).encode()


def numbers(values: list[float]) -> list[bytes]:
    """Each value as a sample's value and line end, formatted in one call: orjson writes the
    shortest digits that read back as the same float, as repr() does, at a tenth of its cost
    per value (repr was the largest single cost of a cold 10,000-agent scrape)."""
    if not values:
        return []
    out = orjson.dumps(values)  # floats only: `[v,v,...]`
    texts = (out[1:-1] + b"\n").replace(b",", b"\n,").split(b",")
    if b"null" in out:  # orjson's NaN and infinities
        return [
            _NON_FINITE[repr(v)] if t == b"null\n" else t
            for t, v in zip(texts, values, strict=True)
        ]
    return texts


def _help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


class Families:
    """Declared families in output order; every sample carries the `fixed` labels first."""

    def __init__(self, specs: tuple[Spec, ...], fixed: tuple[str, ...]) -> None:
        self.specs = specs
        self.fixed = fixed
        # The fixed labels of an owner, one slot per value.
        self.prefix = ",".join(f'{k}="%s"' for k in fixed)
        # `%` templates of a line's head, per family name: the owner's fixed labels, one slot
        # per extra label value (a wrong count raises); the value follows.
        self.by_name: dict[str, tuple[int, bytes, bool]] = {}
        for i, spec in enumerate(specs):
            extra = "".join(f',{k}="%s"' for k in spec.labels[len(fixed) :])
            self.by_name[spec.name] = (i, (spec.name + "{%s" + extra + "} ").encode(), spec.age)
        self.headers = [
            f"# HELP {s.name} {_help(s.help)}\n# TYPE {s.name} {s.kind}\n".encode() for s in specs
        ]


class Batch:
    """The sample lines of many owners (agents, places), rendered together: each owner's
    samples are added one by one, and all their values formatted at the end in one call.

    prometheus_client's MetricFamily objects cost ~8 µs per series to build and format; at
    10,000 agents that alone would exceed a second, so lines are formatted here, once, and
    kept while their owner's data is unchanged (`Kept`).
    """

    __slots__ = (
        "_ages",
        "_by_name",
        "_families",
        "_heads",
        "_index",
        "_owners",
        "_prefix",
        "_values",
    )

    def __init__(self, families: Families) -> None:
        self._families = families
        self._by_name = families.by_name
        self._prefix = b""
        self._owners: list[tuple[str, int]] = []  # owner, index of its first sample
        self._index: list[int] = []  # per sample: its family
        self._heads: list[bytes] = []
        self._values: list[float] = []
        self._ages: list[tuple[int, int, bytes, float]] = []  # owner, family, head, since

    def owner(self, owner: str, labels: Sequence[str]) -> None:
        """Start the samples of `owner`, whose fixed labels have the values `labels`."""
        self._owners.append((owner, len(self._values)))
        joined = "".join(labels)
        if "\\" in joined or '"' in joined or "\n" in joined:
            labels = [escape(v) for v in labels]
        self._prefix = (self._families.prefix % tuple(labels)).encode()

    def add(self, name: str, value: Any, *extra: str) -> None:
        """One sample of family `name` for the current owner, with the extra label values; a
        value that is not a number emits nothing (None: not reported; JSON booleans are not
        numbers). For an `age` family the value is the Unix time the age counts from."""
        if type(value) not in _NUMBERS:
            return
        i, template, age = self._by_name[name]
        head = template % (self._prefix, *map(_label, extra)) if extra else template % self._prefix
        if age:
            self._ages.append((len(self._owners) - 1, i, head, value))
            return
        self._index.append(i)
        self._heads.append(head)
        self._values.append(float(value))

    def owners(self) -> Iterator[tuple[str, OwnerLines]]:
        """Each owner and its lines, in the order they were started."""
        lines = list(map(bytes.__add__, self._heads, numbers(self._values)))
        index = self._index
        ages: list[Ages] = [{} for _ in self._owners]
        for o, i, head, since in self._ages:
            ages[o].setdefault(i, []).append((head, since))
        ends = [start for _, start in self._owners[1:]] + [len(lines)]
        for (owner, start), end, owner_ages in zip(self._owners, ends, ages, strict=True):
            families: dict[int, bytes] = {}
            for k in range(start, end):
                i = index[k]
                families[i] = families[i] + lines[k] if i in families else lines[k]
            yield owner, (families, owner_ages)


class Kept:
    """Every owner's lines, kept per family: replacing an owner touches only its own lines,
    and a scrape joins each family's lines in one call (the format wants each family
    contiguous). Ages are formatted at each scrape, from its time."""

    def __init__(self, families: Families) -> None:
        self._families = families
        self._lines: list[dict[str, bytes]] = [{} for _ in families.specs]
        self._ages: list[dict[str, list[tuple[bytes, float]]]] = [{} for _ in families.specs]
        self._owned: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def put(self, owner: str, kept: OwnerLines) -> None:
        self.drop(owner)
        lines, ages = kept
        for i, text in lines.items():
            self._lines[i][owner] = text
        for i, owner_ages in ages.items():
            self._ages[i][owner] = owner_ages
        self._owned[owner] = (tuple(lines), tuple(ages))

    def drop(self, owner: str) -> None:
        owned = self._owned.pop(owner, None)
        if owned is not None:
            for i in owned[0]:
                del self._lines[i][owner]
            for i in owned[1]:
                del self._ages[i][owner]

    def text(self, now: float) -> bytes:
        out: list[bytes] = []
        for header, lines, ages in zip(
            self._families.headers, self._lines, self._ages, strict=True
        ):
            if lines or ages:
                out.append(header)
                out += lines.values()
                if ages:
                    kept = [line for owner_ages in ages.values() for line in owner_ages]
                    values = numbers([max(0.0, now - since) for _, since in kept])
                    out += map(bytes.__add__, [head for head, _ in kept], values)
        return b"".join(out)
