"""The Prometheus text exposition format, written directly from declared families."""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from typing import Any, TypeVar

import orjson

from collector.metrics.base import NUMBERS, Spec

__all__ = ["Batch", "Families", "Kept", "numbers"]

_T = TypeVar("_T")
_NON_FINITE = {"inf": b"+Inf\n", "-inf": b"-Inf\n", "nan": b"NaN\n"}


def escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


def numbers(values: list[float]) -> list[bytes]:
    """Each value as a sample's value and line end, formatted in one call: orjson writes the
    shortest digits that read back as the same float, as repr() does, at a tenth of its cost
    per value (repr takes ~3 µs per full-precision float on the 2-vCPU reference VM)."""
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


def _replace(kept: dict[str, _T], new: dict[str, _T], owners: set[str]) -> dict[str, _T]:
    """A family's entries with `owners`' replaced by `new`'s (an owner missing from `new` has
    none): `kept` updated in place, or `new` itself when nothing was kept (a first scrape)."""
    if not kept:
        return new
    if len(new) < len(owners):
        for owner in (kept.keys() & owners) - new.keys():
            del kept[owner]
    kept.update(new)
    return kept


def _help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


class Families:
    """Declared families in output order; every sample carries the `fixed` labels first."""

    def __init__(self, specs: tuple[Spec, ...], fixed: tuple[str, ...]) -> None:
        self.specs = specs
        self.fixed = fixed
        # The fixed labels of an owner, one slot per value.
        self.prefix = ",".join(f'{k}="%s"' for k in fixed)
        # `%` templates per family: the owner's fixed labels, one slot per extra label value
        # (a wrong count raises), and a line's head ends there; the value follows.
        self.heads = [
            (s.name + "{%s" + "".join(f',{k}="%s"' for k in s.labels[len(fixed) :]) + "} ").encode()
            for s in specs
        ]
        self.lines = [head + b"%s" for head in self.heads]
        self.headers = [
            f"# HELP {s.name} {_help(s.help)}\n# TYPE {s.name} {s.kind}\n".encode() for s in specs
        ]

    def text(self, bodies: Sequence[bytes]) -> list[bytes]:
        """The families with samples, each under its HELP and TYPE lines, in parts to be
        joined once with the rest of the response."""
        out: list[bytes] = []
        for header, body in zip(self.headers, bodies, strict=True):
            if body:
                out += (header, body)
        return out


# Per family, per sample: the owner, its label values (the owner's escaped fixed labels, then
# a tuple with the extra label values when the family has extra labels) and its value (for an
# age family: the Unix time the age counts from).
Column = tuple[list[str], list[Any], list[float]]


@functools.lru_cache(maxsize=4096)
def _label(value: str) -> bytes:
    """An extra label value as written: few distinct ones (mountpoints, probes, OS names)."""
    return escape(value).encode()


class Batch:
    """The sample lines of many owners (agents, places), rendered together: each owner's
    samples are added one by one into per-family columns, and each family's lines are then
    formatted together (`Kept.put`).

    prometheus_client's MetricFamily objects cost ~8 µs per series to build and format; at
    10,000 agents that alone would exceed a second, so lines are formatted here, once, and
    kept while their owner's data is unchanged (`Kept`).
    """

    __slots__ = ("_by_name", "_families", "_owner", "_prefix", "columns", "owners")

    def __init__(self, families: Families) -> None:
        self._families = families
        self._owner = ""
        self._prefix = b""
        self.owners: list[str] = []
        self.columns: list[Column] = [([], [], []) for _ in families.specs]
        self._by_name = {
            spec.name: column for spec, column in zip(families.specs, self.columns, strict=True)
        }

    def owner(self, owner: str, labels: Sequence[str]) -> None:
        """Start the samples of `owner`, whose fixed labels have the values `labels`."""
        self.owners.append(owner)
        self._owner = owner
        joined = "".join(labels)
        if "\\" in joined or '"' in joined or "\n" in joined:
            labels = [escape(v) for v in labels]
        self._prefix = (self._families.prefix % tuple(labels)).encode()

    def add(self, name: str, value: Any, *extra: str) -> None:
        """One sample of family `name` for the current owner, with the extra label values; a
        value that is not a number emits nothing (None: not reported; JSON booleans are not
        numbers). For an `age` family the value is the Unix time the age counts from."""
        if type(value) not in NUMBERS:
            return
        owners, labels, values = self._by_name[name]
        owners.append(self._owner)
        labels.append((self._prefix, *map(_label, extra)) if extra else self._prefix)
        values.append(float(value))


class Kept:
    """Every owner's lines, kept per family: replacing owners touches only their own lines,
    and a scrape joins each family's lines in one call (the format wants each family
    contiguous). Ages are formatted at each scrape, from its time."""

    def __init__(self, families: Families) -> None:
        self._families = families
        self._lines: list[dict[str, bytes]] = [{} for _ in families.specs]
        self._ages: list[dict[str, list[tuple[bytes, float]]]] = [{} for _ in families.specs]

    def put(self, batch: Batch) -> None:
        """Replace the lines of the batch's owners with the batch's: overwritten in place,
        as deleting and inserting them again cost as much as formatting them."""
        replaced = set(batch.owners)
        f = self._families
        for i, (spec, head, line, (owners, labels, values)) in enumerate(
            zip(f.specs, f.heads, f.lines, batch.columns, strict=True)
        ):
            if spec.age:
                ages: dict[str, list[tuple[bytes, float]]] = {}
                for owner, ls, since in zip(owners, labels, values, strict=True):
                    ages.setdefault(owner, []).append((head % ls, since))
                self._ages[i] = _replace(self._ages[i], ages, replaced)
                continue
            texts = numbers(values)
            if len(spec.labels) > len(f.fixed):
                lines = [line % (*ls, text) for ls, text in zip(labels, texts, strict=True)]
            else:
                lines = list(map(line.__mod__, zip(labels, texts, strict=True)))
            by_owner = dict(zip(owners, lines, strict=True))
            if len(by_owner) < len(lines):  # some owner has several samples (disks, probes)
                by_owner = {}
                for owner, one in zip(owners, lines, strict=True):
                    by_owner[owner] = by_owner[owner] + one if owner in by_owner else one
            self._lines[i] = _replace(self._lines[i], by_owner, replaced)

    def drop(self, owners: Collection[str]) -> None:
        gone = set(owners)
        for lines in self._lines:
            for owner in lines.keys() & gone:
                del lines[owner]
        for ages in self._ages:
            for owner in ages.keys() & gone:
                del ages[owner]

    def bodies(self, now: float) -> list[bytes]:
        """Each family's sample lines (b"" when it has none), in declared order: the parts
        of several Kept (processes rendering a share of the owners each) join family by
        family (`Families.text`). Ages are formatted as of `now`."""
        out: list[bytes] = []
        for lines, ages in zip(self._lines, self._ages, strict=True):
            body = b"".join(lines.values())
            if ages:
                kept = [line for owner_ages in ages.values() for line in owner_ages]
                values = numbers([max(0.0, now - since) for _, since in kept])
                body += b"".join(map(bytes.__add__, [head for head, _ in kept], values))
            out.append(body)
        return out
