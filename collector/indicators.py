"""The district's indicators, defined once (docs/indicators.md) and computed here only.

The digest, `canhgac-collector report`, the audit export and the `canhgac_indicator_*` metrics
behind the dashboards' recording rules all call `current` (the state now) — so "antivirus on
every machine" or "12/13 communes have a ready meeting room" is one figure wherever it is read.

Every indicator rests on the compliance rules' latest verdicts (`rules/default.yaml`): a machine
meets a machine indicator when it is reporting, its defining rule (the first) has judged it, and
none of the indicator's rules fails on it. A machine that never sent the section the rules read
has no verdict and does not meet it: unknown is never counted as good.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from collector.model import MEETING_ROLE
from collector.sites import Sites
from collector.store import Store

__all__ = [
    "MACHINE_INDICATORS",
    "ROOM_RULE",
    "Count",
    "DistrictFigures",
    "Indicator",
    "PlaceFigures",
    "current",
    "figures",
    "meets",
]


@dataclass(frozen=True, slots=True)
class Indicator:
    id: str
    vi: str
    en: str
    rules: tuple[str, ...]  # all must pass; the first must have judged the machine

    def title(self, lang: str) -> str:
        return self.vi if lang == "vi" else self.en


MACHINE_INDICATORS = (
    Indicator(
        "antivirus",
        "Máy có phần mềm diệt virus hoạt động, cập nhật, tự kiểm tra đạt",
        "Machines with working, current, self-tested antivirus",
        (
            "antivirus.present",
            "antivirus.enabled",
            "antivirus.realtime",
            "antivirus.signatures",
            "antivirus.self-test",
        ),
    ),
    Indicator(
        "firewall", "Máy bật tường lửa", "Machines with the firewall on", ("security.firewall",)
    ),
    Indicator(
        "os-updates",
        "Máy cập nhật hệ điều hành",
        "Machines with current OS updates",
        ("security.os-updates",),
    ),
    Indicator(
        "no-risky-services",
        "Máy không mở dịch vụ rủi ro (RDP, SMB, Telnet, VNC)",
        "Machines exposing no risky service (RDP, SMB, Telnet, VNC)",
        ("security.risky-listeners",),
    ),
)
# A room is ready when it is reporting and this rule passes on it (GREEN or AMBER: can meet).
ROOM_RULE = "meeting-room.ready"


def meets(indicator: Indicator, verdicts: Mapping[str, bool]) -> bool | None:
    """Whether verdicts (rule id -> passed) of one machine meet `indicator`; None when its
    defining rule did not judge. What `AlertTables.indicator_counts` counts in SQL over the
    latest verdicts, here over one report's (the rollups of a period)."""
    if indicator.rules[0] not in verdicts:
        return None
    return all(verdicts.get(r, True) for r in indicator.rules)


@dataclass(frozen=True, slots=True)
class Count:
    """`met` of `of`; the share is None when there is nothing to count (never 0 %)."""

    met: int
    of: int

    @property
    def share(self) -> float | None:
        return self.met / self.of if self.of else None

    def __str__(self) -> str:
        return f"{100.0 * self.met / self.of:.0f}% ({self.met}/{self.of})" if self.of else "—"


@dataclass(slots=True)
class PlaceFigures:
    """One unit of one commune (commune "" = the district's own units, unit "" = no unit)."""

    district: str
    commune: str
    unit: str
    planned: int | None = None  # machines the sites file plans here; None = not planned
    enrolled: int = 0
    reporting: int = 0
    met: dict[str, int] = field(default_factory=dict)  # indicator id -> machines meeting it
    rooms_reporting: int = 0
    rooms_ready: int = 0


@dataclass(frozen=True, slots=True)
class DistrictFigures:
    district: str
    places: tuple[PlaceFigures, ...]  # sorted by commune, unit
    communes: tuple[str, ...]  # every commune: the sites file's and any an agent is placed in

    def _sum(self, attr: str, commune: str | None = None) -> int:
        return sum(getattr(p, attr) for p in self.places if commune is None or p.commune == commune)

    def machines(self, indicator: str, commune: str | None = None) -> Count:
        """Machines meeting `indicator` of the machines enrolled (district, or one commune)."""
        met = sum(
            p.met.get(indicator, 0) for p in self.places if commune is None or p.commune == commune
        )
        return Count(met, self._sum("enrolled", commune))

    def reporting(self, commune: str | None = None) -> Count:
        return Count(self._sum("reporting", commune), self._sum("enrolled", commune))

    def reporting_of_planned(self, commune: str | None = None) -> Count | None:
        """Reporting machines of the planned ones; None where the sites file plans nothing."""
        places = [p for p in self.places if commune is None or p.commune == commune]
        planned = sum(p.planned or 0 for p in places)
        return Count(sum(p.reporting for p in places), planned) if planned else None

    def connected(self, commune: str) -> bool:
        """Reachable now: some machine of the commune reported within the stale window (its
        report crossed the commune's LAN and fiber to the district)."""
        return self._sum("reporting", commune) > 0

    def room_ready(self, commune: str) -> bool:
        return self._sum("rooms_ready", commune) > 0

    def communes_connected(self) -> Count:
        return Count(sum(self.connected(c) for c in self.communes), len(self.communes))

    def communes_room_ready(self) -> Count:
        return Count(sum(self.room_ready(c) for c in self.communes), len(self.communes))

    def district_room_ready(self) -> bool | None:
        """The district centre's own room(s), counted apart from the communes'."""
        return self.room_ready("") if self._sum("rooms_reporting", "") else None


def _planned(sites: Sites | None) -> dict[tuple[str, str, str], int]:
    out: dict[tuple[str, str, str], int] = {}
    if sites is None:
        return out
    for d in sites.districts:
        for u in d.units:
            out[d.name, "", u.name] = u.machines
        for c in d.communes:
            if c.machines or not c.units:
                out[d.name, c.name, ""] = c.machines
            for u in c.units:
                out[d.name, c.name, u.name] = u.machines
    return out


def current(
    store: Store, sites: Sites | None, *, now: float, stale_after: float
) -> list[DistrictFigures]:
    """Every district's figures now, from the agents and the rules' latest verdicts (revoked
    agents are not counted; a machine is reporting when it delivered within `stale_after`)."""
    rows = store.alerts.indicator_counts(
        [ind.rules for ind in MACHINE_INDICATORS], (ROOM_RULE, MEETING_ROLE), now - stale_after
    )
    return figures(rows, sites)


def figures(rows: Iterable[Sequence[Any]], sites: Sites | None) -> list[DistrictFigures]:
    """DistrictFigures from `AlertTables.indicator_counts` rows and the sites file's plan."""
    places: dict[tuple[str, str, str], PlaceFigures] = {
        key: PlaceFigures(*key, planned=n) for key, n in _planned(sites).items()
    }
    communes: dict[str, set[str]] = {}
    if sites is not None:
        for d in sites.districts:
            communes[d.name] = {c.name for c in d.communes}
    for district, commune, unit, enrolled, reporting, rooms, ready, *met in rows:
        key = district, commune, unit
        p = places.get(key) or places.setdefault(key, PlaceFigures(*key))
        p.enrolled, p.reporting = int(enrolled), int(reporting)
        p.rooms_reporting, p.rooms_ready = int(rooms), int(ready)
        p.met = {ind.id: int(n) for ind, n in zip(MACHINE_INDICATORS, met, strict=True)}
        communes.setdefault(district, set())
        if commune:
            communes[district].add(commune)
    out = []
    for district in sorted(communes):
        mine = sorted((p for k, p in places.items() if k[0] == district), key=_order)
        out.append(DistrictFigures(district, tuple(mine), tuple(sorted(communes[district]))))
    return out


def _order(p: PlaceFigures) -> tuple[str, str]:
    return p.commune, p.unit
