"""Reports for leadership: the indicators of a place and period, and the audit export's tables.

`canhgac-collector report` prints `Report.lines`; `--json` prints `Report.as_json`;
`canhgac-collector export` writes `tables(...)` through collector.export. The indicators are
collector.indicators' (docs/indicators.md), never recomputed here.
"""

from __future__ import annotations

import re
import statistics
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from canhgac_common.i18n import gettext_
from collector.compliance.loader import load_pack
from collector.export.formats import Heading, find_font, write_pdf
from collector.export.table import Cell, Column, Table
from collector.indicators import MACHINE_INDICATORS, ROOM_RULE, Count, DistrictFigures, current
from collector.model import (
    MEETING_ROLE,
    ROLLUP_AVAILABILITY,
    ROLLUP_INDICATOR,
    ROLLUP_RULE,
    ROLLUP_SERVICE,
    AgentRecord,
    RoomVerdict,
)
from collector.sites import Sites
from collector.store import HistoryEntry, Store

if TYPE_CHECKING:  # the signature library loads only when an export is written
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = [
    "Period",
    "Report",
    "Scope",
    "build_report",
    "export_report",
    "heading",
    "parse_period",
    "rule_titles",
    "summary_pdf",
    "tables",
]


@dataclass(frozen=True, slots=True)
class Period:
    label: str  # "2026-11", "2026-Q4", "2026", "2026-11-03..2026-11-20"
    start: float  # Unix seconds, inclusive
    end: float  # exclusive
    zone: ZoneInfo

    def describe(self, lang: str) -> str:
        first = datetime.fromtimestamp(self.start, self.zone).date()
        last = datetime.fromtimestamp(self.end, self.zone).date() - timedelta(days=1)
        span = f"{first:%d/%m/%Y} – {last:%d/%m/%Y}"
        m = re.fullmatch(r"(\d{4})-(\d{2})", self.label)
        q = re.fullmatch(r"(\d{4})-Q([1-4])", self.label)
        if lang == "vi":
            name = (
                f"tháng {int(m[2])}/{m[1]}"
                if m
                else f"quý {q[2]}/{q[1]}"
                if q
                else f"năm {self.label}"
                if self.label.isdigit()
                else "kỳ"
            )
        else:
            name = (
                f"{datetime(int(m[1]), int(m[2]), 1):%B %Y}"
                if m
                else f"Q{q[2]} {q[1]}"
                if q
                else self.label
                if self.label.isdigit()
                else "period"
            )
        return f"{name} ({span}, {self.zone.key})"


def _at(d: date, zone: ZoneInfo) -> float:
    return datetime(d.year, d.month, d.day, tzinfo=zone).timestamp()


def parse_period(period: str | None, start: str | None, end: str | None, zone: ZoneInfo) -> Period:
    """`--period 2026-11 | 2026-Q4 | 2026`, or `--from 2026-11-03 --to 2026-11-20` (both days
    included), in the report's time zone. A clear ValueError for anything else."""
    if period is not None and (start or end):
        raise ValueError(gettext_("give --period or --from/--to, not both"))
    if period is not None:
        text = period.strip()
        if m := re.fullmatch(r"(\d{4})-(\d{2})", text):
            y, mo = int(m[1]), int(m[2])
            if not 1 <= mo <= 12:
                raise ValueError(
                    gettext_("--period {text}: month {mo} is not 01-12").format(text=text, mo=mo)
                )
            first = date(y, mo, 1)
            after = date(y + (mo == 12), mo % 12 + 1, 1)
        elif m := re.fullmatch(r"(\d{4})-[Qq]([1-4])", text):
            y, qn = int(m[1]), int(m[2])
            first = date(y, 3 * qn - 2, 1)
            after = date(y + (qn == 4), (3 * qn) % 12 + 1, 1)
            text = f"{y}-Q{qn}"
        elif re.fullmatch(r"\d{4}", text):
            first, after = date(int(text), 1, 1), date(int(text) + 1, 1, 1)
        else:
            raise ValueError(
                gettext_(
                    "--period {text!r}: write a month 2026-11, a quarter 2026-Q4 or a year 2026"
                ).format(text=text)
            )
        return Period(text, _at(first, zone), _at(after, zone), zone)
    if not (start and end):
        raise ValueError(
            gettext_("give --period (2026-11, 2026-Q4, 2026) or both --from and --to (YYYY-MM-DD)")
        )
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError as e:
        raise ValueError(
            gettext_("--from/--to: {error} (write YYYY-MM-DD)").format(error=e)
        ) from None
    if last < first:
        raise ValueError(
            gettext_("--to {last} is before --from {first}").format(last=last, first=first)
        )
    return Period(f"{first}..{last}", _at(first, zone), _at(last + timedelta(days=1), zone), zone)


@dataclass(frozen=True, slots=True)
class Scope:
    district: str | None = None
    commune: str | None = None
    unit: str | None = None

    def has(self, district: str, commune: str, unit: str = "") -> bool:
        return (
            (self.district is None or self.district == district)
            and (self.commune is None or self.commune == commune)
            and (self.unit is None or self.unit == unit)
        )

    def name(self) -> str:
        return " / ".join(x for x in (self.district, self.commune, self.unit) if x)


@dataclass(frozen=True)
class PeriodFigures:
    """What the rollups say of a period: per place, each machine indicator's share of the
    machines' judged reports that met it, reports received of those expected; per commune,
    the share of its expected hours in which its machines reached the collector in time."""

    places: dict[tuple[str, str, str], dict[tuple[str, str], tuple[int, float]]]
    communes: dict[tuple[str, str], tuple[float, float]]  # (seconds expected, reachable)
    connected_share: float  # the threshold a commune must reach to count as connected

    def _sum(
        self, section: str, metric: str, district: str, commune: str | None
    ) -> tuple[int, float]:
        n, total = 0, 0.0
        for (d, c, _), stats in self.places.items():
            if d == district and (commune is None or c == commune):
                cnt, tot = stats.get((section, metric), (0, 0.0))
                n, total = n + cnt, total + tot
        return n, total

    def machine_share(
        self, indicator: str, district: str, commune: str | None = None
    ) -> float | None:
        n, total = self._sum(ROLLUP_INDICATOR, indicator, district, commune)
        return total / n if n else None

    def delivered(self, district: str, commune: str | None = None) -> float | None:
        """Reports received of those expected (at most 1)."""
        _, received = self._sum(ROLLUP_AVAILABILITY, "received", district, commune)
        _, expected = self._sum(ROLLUP_AVAILABILITY, "expected", district, commune)
        return min(1.0, received / expected) if expected else None

    def connected(self, district: str, commune: str) -> float | None:
        expected, reachable = self.communes.get((district, commune), (0.0, 0.0))
        return reachable / expected if expected else None

    def services(self, district: str) -> list[str]:
        """The public services some agent of the district checked in the period."""
        return sorted(
            {
                metric
                for (d, _, _), stats in self.places.items()
                if d == district
                for section, metric in stats
                if section == ROLLUP_SERVICE
            }
        )

    def service_share(
        self, service: str, district: str, commune: str | None = None
    ) -> float | None:
        """Checks of `service` that it answered, of those made from the place (commune)."""
        n, total = self._sum(ROLLUP_SERVICE, service, district, commune)
        return total / n if n else None

    def connected_title(self, lang: str) -> str:
        pct = f"{100 * self.connected_share:.0f}%"
        if lang == "vi":
            return f"Xã có kết nối mạng tới huyện từ {pct} thời gian trở lên"
        return f"Communes reaching the district at least {pct} of the time"

    def communes_connected(self, fig: DistrictFigures) -> Count:
        shares = [self.connected(fig.district, c) for c in fig.communes]
        return Count(
            sum(1 for x in shares if x is not None and x >= self.connected_share), len(shares)
        )


def period_figures(
    store: Store, period: Period, end: float, connected_share: float
) -> PeriodFigures:
    places: dict[tuple[str, str, str], dict[tuple[str, str], tuple[int, float]]] = {}
    sections = (ROLLUP_INDICATOR, ROLLUP_AVAILABILITY, ROLLUP_SERVICE)
    for d, c, u, sec, metric, n, total in store.rollups.place_totals(period.start, end, sections):
        places.setdefault((d, c, u), {})[sec, metric] = (n, total)
    communes = {
        (d, c): (exp, ok)
        for d, c, exp, ok in store.rollups.commune_time(period.start, end, ROLLUP_AVAILABILITY)
    }
    return PeriodFigures(places, communes, connected_share)


@dataclass(frozen=True)
class Report:
    period: Period
    scope: Scope
    made_at: float
    districts: tuple[DistrictFigures, ...]
    fixed: tuple[HistoryEntry, ...]  # fixed in the period (resolved or cleared in it)
    open_at_end: int  # findings failing at the period's end (fixed later, or still open)
    meetings: tuple[tuple[str, str, float, RoomVerdict], ...]  # (id, title, start, verdict)
    stale_after: float  # a machine is reporting when it delivered within this
    over: PeriodFigures  # the period, from the rollups

    def place(self) -> str:
        """What the report covers: the scope given, else the districts it found."""
        return self.scope.name() or ", ".join(f.district for f in self.districts)

    def indicator_rows(self, lang: str) -> list[tuple[str, Count]]:
        rows: list[tuple[str, Count]] = []
        for fig in self.districts:
            pre = f"{fig.district}: " if len(self.districts) > 1 else ""
            if self.scope.commune is None:
                rows.append(
                    (
                        pre
                        + (
                            "Xã có kết nối mạng tới huyện"
                            if lang == "vi"
                            else "Communes whose network reaches the district"
                        ),
                        fig.communes_connected(),
                    )
                )
                rows.append(
                    (
                        pre
                        + (
                            "Xã có phòng họp trực tuyến sẵn sàng"
                            if lang == "vi"
                            else "Communes with a ready online meeting room"
                        ),
                        fig.communes_room_ready(),
                    )
                )
            for ind in MACHINE_INDICATORS:
                rows.append((pre + ind.title(lang), fig.machines(ind.id, self.scope.commune)))
            rows.append(
                (
                    pre + ("Máy đang gửi báo cáo" if lang == "vi" else "Machines reporting"),
                    fig.reporting(self.scope.commune),
                )
            )
            planned = fig.reporting_of_planned(self.scope.commune)
            if planned is not None:
                rows.append(
                    (
                        pre
                        + (
                            "Máy đang gửi báo cáo trên số máy theo kế hoạch"
                            if lang == "vi"
                            else "Machines reporting of those planned"
                        ),
                        planned,
                    )
                )
        return rows

    def fix_times(self) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for e in self.fixed:
            if e.started_at is not None:
                out.setdefault(e.labels.rule_id, []).append(e.at - e.started_at)
        return out

    def lines(self, lang: str) -> list[str]:
        vi = lang == "vi"
        made = datetime.fromtimestamp(self.made_at, self.period.zone)
        out = [
            ("Báo cáo Canh Gác — " if vi else "Canh Gác report — ")
            + f"{self.place()} — {self.period.describe(lang)}",
            "",
            (
                f"Hiện trạng lúc {made:%H:%M %d/%m/%Y}:"
                if vi
                else f"State at {made:%Y-%m-%d %H:%M}:"
            ),
        ]
        out += [f"  {name}: {count}" for name, count in self.indicator_rows(lang)]
        out += ["", "Trong kỳ:" if vi else "In the period:"]
        for fig in self.districts:
            pre = f"{fig.district}: " if len(self.districts) > 1 else ""
            commune = self.scope.commune
            if commune is None:
                c = self.over.communes_connected(fig)
                out.append(f"  {pre}{self.over.connected_title(lang)}: {c}")
            else:
                share = self.over.connected(fig.district, commune)
                out.append(
                    f"  {pre}Thời gian xã kết nối được tới huyện: {_pct(share)}"
                    if vi
                    else f"  {pre}Share of time the commune reached the district: {_pct(share)}"
                )
            for ind in MACHINE_INDICATORS:
                share = self.over.machine_share(ind.id, fig.district, commune)
                out.append(
                    f"  {pre}{ind.title(lang)} ("
                    + ("tỷ lệ thời gian" if vi else "share of the time")
                    + f"): {_pct(share)}"
                )
            delivered = self.over.delivered(fig.district, commune)
            out.append(
                f"  {pre}Báo cáo nhận được trên số cần có: {_pct(delivered)}"
                if vi
                else f"  {pre}Reports received of those expected: {_pct(delivered)}"
            )
            for service in self.over.services(fig.district):
                share = self.over.service_share(service, fig.district, commune)
                out.append(
                    f"  {pre}Dịch vụ {service} trả lời được từ xã: {_pct(share)}"
                    if vi
                    else f"  {pre}{service} answered from the communes: {_pct(share)}"
                )
        times = [t for ts in self.fix_times().values() for t in ts]
        median = _hours(statistics.median(times)) if times else "—"
        out.append(
            (f"  Sự cố đã khắc phục: {len(self.fixed)} (thời gian khắc phục trung vị {median})")
            if vi
            else f"  Findings fixed: {len(self.fixed)} (median time to fix {median})"
        )
        out.append(
            (f"  Sự cố còn lỗi cuối kỳ: {self.open_at_end}")
            if vi
            else f"  Findings still failing at the period's end: {self.open_at_end}"
        )
        meetings = {m[0] for m in self.meetings}
        no_go = {m[0] for m in self.meetings if m[3].verdict != "go"}
        out.append(
            (f"  Cuộc họp trực tuyến: {len(meetings)} (có phòng không sẵn sàng: {len(no_go)})")
            if vi
            else f"  Online meetings: {len(meetings)} (with a room not ready: {len(no_go)})"
        )
        return out

    def as_json(self) -> dict[str, Any]:
        zone = self.period.zone

        def iso(ts: float | None) -> str | None:
            return (
                None
                if ts is None
                else datetime.fromtimestamp(ts, zone).isoformat(timespec="seconds")
            )

        def count(c: Count | None) -> dict[str, Any] | None:
            return None if c is None else {"met": c.met, "of": c.of, "share": c.share}

        return {
            "period": {
                "label": self.period.label,
                "from": iso(self.period.start),
                "to": iso(self.period.end),
                "timezone": zone.key,
            },
            "scope": {
                "district": self.scope.district,
                "commune": self.scope.commune,
                "unit": self.scope.unit,
            },
            "made_at": iso(self.made_at),
            "districts": [
                {
                    "district": f.district,
                    "communes_connected": count(f.communes_connected()),
                    "communes_room_ready": count(f.communes_room_ready()),
                    "district_room_ready": f.district_room_ready(),
                    "period": {
                        "communes_connected": count(self.over.communes_connected(f)),
                        "connected_share_threshold": self.over.connected_share,
                        "commune_connected_share": {
                            c: self.over.connected(f.district, c) for c in f.communes
                        },
                        "machine_share": {
                            i.id: self.over.machine_share(i.id, f.district, self.scope.commune)
                            for i in MACHINE_INDICATORS
                        },
                        "reports_delivered_share": self.over.delivered(
                            f.district, self.scope.commune
                        ),
                        "service_share": {
                            service: {
                                c: self.over.service_share(service, f.district, c)
                                for c in f.communes
                            }
                            for service in self.over.services(f.district)
                        },
                    },
                    "machines": {
                        **{
                            i.id: count(f.machines(i.id, self.scope.commune))
                            for i in MACHINE_INDICATORS
                        },
                        "reporting": count(f.reporting(self.scope.commune)),
                        "reporting_of_planned": count(f.reporting_of_planned(self.scope.commune)),
                    },
                }
                for f in self.districts
            ],
            "findings_fixed": len(self.fixed),
            "findings_open_at_end": self.open_at_end,
            "time_to_fix_seconds": {
                rule: {"fixed": len(ts), "median": statistics.median(ts), "max": max(ts)}
                for rule, ts in sorted(self.fix_times().items())
            },
            "meetings": len({m[0] for m in self.meetings}),
            "meetings_with_a_room_not_ready": len(
                {m[0] for m in self.meetings if m[3].verdict != "go"}
            ),
        }


def _pct(share: float | None) -> str:
    return "—" if share is None else f"{100.0 * share:.1f}%"


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def build_report(
    store: Store,
    sites: Sites | None,
    period: Period,
    scope: Scope,
    *,
    now: float,
    stale_after: float,
    connected_share: float = 0.95,
) -> Report:
    figs = tuple(
        f
        for f in current(store, sites, now=now, stale_after=stale_after)
        if scope.district is None or f.district == scope.district
    )
    if scope.district is not None and not figs:
        raise ValueError(
            gettext_("no district {district!r} in the store or the sites file").format(
                district=scope.district
            )
        )
    fixes = [
        e
        for e in store.alerts.fixes(period.start, now, scope.district)
        if scope.has(e.labels.district, e.labels.commune, e.labels.unit if scope.unit else "")
    ]
    fixed = tuple(e for e in fixes if e.at < period.end)
    later = sum(1 for e in fixes if e.at >= period.end)
    still = sum(
        1
        for a in store.alerts.open_alerts()
        if a.state == "firing"
        and a.started_at < period.end
        and scope.has(a.labels.district, a.labels.commune, a.labels.unit if scope.unit else "")
    )
    meetings = tuple(store.meetings.results_between(period.start, period.end))
    over = period_figures(store, period, min(period.end, now), connected_share)
    return Report(period, scope, now, figs, fixed, later + still, meetings, stale_after, over)


# ---- the audit export's tables -----------------------------------------------------------

# Columns several tables share.
_AGENT_ID = Column("agent_id", "Mã agent", "Agent id")
_HOST = Column("host", "Tên máy", "Host")
_DISTRICT = Column("district", "Huyện", "District")
_COMMUNE = Column("commune", "Xã", "Commune")
_UNIT = Column("unit", "Đơn vị", "Unit")
_RULE = Column("rule", "Mã luật", "Rule")
_FINDING = Column("title", "Sự cố", "Finding")
_SHARE_COLUMNS = tuple(Column(i.id, i.vi, i.en, "share") for i in MACHINE_INDICATORS)
_PERIOD_COLUMNS = tuple(
    Column(f"{i.id}_period", f"{i.vi} (trong kỳ)", f"{i.en} (period)", "share")
    for i in MACHINE_INDICATORS
)


def _ratio(stat: tuple[int, float] | None) -> float | None:
    return stat[1] / stat[0] if stat and stat[0] else None


def tables(
    report: Report, store: Store, titles: dict[str, tuple[str, str]], lang: str
) -> tuple[Table, list[Table]]:
    """(summary, the other tables) of the export. `titles` maps rule id -> (vi, en)."""
    vi = lang == "vi"

    def summary_rows() -> Iterator[Sequence[Cell]]:
        now = " (hiện trạng)" if vi else " (now)"
        for name, c in report.indicator_rows(lang):
            yield (name + now, c.met, c.of, c.share)
        over, commune = report.over, report.scope.commune
        period = " (trong kỳ)" if vi else " (period)"
        for fig in report.districts:
            if commune is None:
                c = over.communes_connected(fig)
                yield (over.connected_title(lang) + period, c.met, c.of, c.share)
            for ind in MACHINE_INDICATORS:
                share = over.machine_share(ind.id, fig.district, commune)
                yield (ind.title(lang) + period, None, None, share)
            name = (
                "Báo cáo nhận được trên số cần có" if vi else "Reports received of those expected"
            )
            yield (name + period, None, None, over.delivered(fig.district, commune))

    summary = Table(
        "summary",
        "Tổng hợp chỉ tiêu",
        "Indicators",
        (
            Column("indicator", "Chỉ tiêu", "Indicator"),
            Column("met", "Đạt", "Met", "int"),
            Column("of", "Tổng", "Of", "int"),
            Column("share", "Tỷ lệ", "Share", "share"),
        ),
        summary_rows,
    )

    return summary, [
        *_place_tables(report, lang),
        _machine_table(report, store, lang),
        _rule_table(report, store, titles, lang),
        _software_table(report, store),
        *_finding_tables(report, store, titles, lang),
    ]


def _rule_table(
    report: Report, store: Store, titles: dict[str, tuple[str, str]], lang: str
) -> Table:
    """Per machine and agent rule: the share of its verdicts in the period that passed."""
    scope = report.scope

    def rows() -> Iterator[Sequence[Cell]]:
        agents = {
            a.agent_id: a
            for a in store.list_agents()
            if scope.has(
                a.placement.district, a.placement.commune, a.placement.unit if scope.unit else ""
            )
        }
        end = min(report.period.end, report.made_at)
        for r in store.rollups.totals(report.period.start, end, list(agents)):
            if r.section != ROLLUP_RULE:
                continue
            a = agents[r.agent_id]
            vi_title, en_title = titles.get(r.metric, (r.metric, r.metric))
            yield (
                a.agent_id,
                a.hostname,
                a.placement.commune,
                a.placement.unit,
                r.metric,
                vi_title if lang == "vi" else en_title,
                r.stat.count,
                r.stat.total / r.stat.count if r.stat.count else None,
            )

    return Table(
        "rules",
        "Tỷ lệ đạt theo luật và máy",
        "Share passed per rule and machine",
        (
            _AGENT_ID,
            _HOST,
            _COMMUNE,
            _UNIT,
            _RULE,
            Column("title", "Luật", "Rule title"),
            Column("verdicts", "Số lần đánh giá", "Verdicts", "int"),
            Column("passed", "Tỷ lệ đạt trong kỳ", "Passed in the period", "share"),
        ),
        rows,
    )


def _software_table(report: Report, store: Store) -> Table:
    """Every program of every machine in scope, from each agent's last full software list."""
    scope = report.scope

    def rows() -> Iterator[Sequence[Cell]]:
        places = {
            a.agent_id: a
            for a in store.list_agents()
            if a.revoked_at is None
            and scope.has(
                a.placement.district,
                a.placement.commune,
                a.placement.unit if scope.unit else "",
            )
        }
        for inv in store.inventory.all_software():
            a = places.get(inv.agent_id)
            if a is None:
                continue
            for p in inv.programs:
                yield (
                    a.agent_id,
                    a.hostname,
                    a.placement.commune,
                    a.placement.unit,
                    p.name,
                    p.version or None,
                    p.publisher or None,
                    p.installed_at or None,
                    p.origin,
                    inv.collected_at,
                )

    return Table(
        "software",
        "Phần mềm đã cài",
        "Installed software",
        (
            _AGENT_ID,
            _HOST,
            _COMMUNE,
            _UNIT,
            Column("name", "Phần mềm", "Program"),
            Column("version", "Phiên bản", "Version"),
            Column("publisher", "Nhà phát hành", "Publisher"),
            Column("installed_at", "Cài lúc", "Installed at", "time"),
            Column("origin", "Nguồn", "Source"),
            Column("listed_at", "Danh sách lúc", "Listed at", "time"),
        ),
        rows,
    )


def _place_tables(report: Report, lang: str) -> list[Table]:
    scope = report.scope

    def place_rows() -> Iterator[Sequence[Cell]]:
        for fig in report.districts:
            for p in fig.places:
                if not scope.has(p.district, p.commune, p.unit if scope.unit else ""):
                    continue
                shares = [Count(p.met.get(i.id, 0), p.enrolled).share for i in MACHINE_INDICATORS]
                stats = report.over.places.get((p.district, p.commune, p.unit), {})
                over = [_ratio(stats.get((ROLLUP_INDICATOR, i.id))) for i in MACHINE_INDICATORS]
                yield (
                    p.district,
                    p.commune,
                    p.unit,
                    p.planned,
                    p.enrolled,
                    p.reporting,
                    *shares,
                    p.rooms_reporting,
                    p.rooms_ready,
                    *over,
                )

    units = Table(
        "units",
        "Theo đơn vị",
        "By unit",
        (
            _DISTRICT,
            _COMMUNE,
            _UNIT,
            Column("planned", "Máy theo kế hoạch", "Machines planned", "int"),
            Column("enrolled", "Máy đã đăng ký", "Machines enrolled", "int"),
            Column("reporting", "Máy đang báo cáo", "Machines reporting", "int"),
            *_SHARE_COLUMNS,
            Column("rooms_reporting", "Phòng họp đang báo cáo", "Rooms reporting", "int"),
            Column("rooms_ready", "Phòng họp sẵn sàng", "Rooms ready", "int"),
            *_PERIOD_COLUMNS,
        ),
        place_rows,
    )

    def commune_rows() -> Iterator[Sequence[Cell]]:
        for fig in report.districts:
            for c in fig.communes:
                if not scope.has(fig.district, c):
                    continue
                share = report.over.connected(fig.district, c)
                yield (
                    fig.district,
                    c,
                    share,
                    None if share is None else _yes(share >= report.over.connected_share, lang),
                    _yes(fig.connected(c), lang),
                    _yes(fig.room_ready(c), lang),
                    report.over.delivered(fig.district, c),
                )

    communes = Table(
        "communes",
        "Theo xã",
        "By commune",
        (
            _DISTRICT,
            _COMMUNE,
            Column(
                "connected_period",
                "Thời gian kết nối tới huyện",
                "Time reaching the district",
                "share",
            ),
            Column("connected_ok", "Đạt ngưỡng kết nối", "Connected above the threshold"),
            Column("connected_now", "Đang kết nối", "Connected now"),
            Column("room_ready_now", "Phòng họp sẵn sàng", "Meeting room ready now"),
            Column(
                "delivered", "Báo cáo nhận được / cần có", "Reports received / expected", "share"
            ),
        ),
        commune_rows,
    )

    def service_rows() -> Iterator[Sequence[Cell]]:
        for fig in report.districts:
            for service in report.over.services(fig.district):
                for c in fig.communes:
                    if scope.has(fig.district, c):
                        share = report.over.service_share(service, fig.district, c)
                        yield (fig.district, c, service, share)

    services = Table(
        "services",
        "Dịch vụ công theo xã",
        "Public services by commune",
        (
            _DISTRICT,
            _COMMUNE,
            Column("service", "Dịch vụ", "Service"),
            Column("answered", "Tỷ lệ kiểm tra thành công", "Checks answered", "share"),
        ),
        service_rows,
    )
    return [communes, units, services]


def _machine_table(report: Report, store: Store, lang: str) -> Table:
    scope = report.scope

    def machine_rows() -> Iterator[Sequence[Cell]]:
        met = store.alerts.indicator_machines([i.rules for i in MACHINE_INDICATORS], ROOM_RULE)
        over: dict[str, dict[tuple[str, str], tuple[int, float]]] = {}
        end = min(report.period.end, report.made_at)
        for r in store.rollups.totals(report.period.start, end):
            if r.section in (ROLLUP_INDICATOR, ROLLUP_AVAILABILITY):
                over.setdefault(r.agent_id, {})[r.section, r.metric] = (r.stat.count, r.stat.total)
        fresh = report.made_at - report.stale_after
        fleet = store.fleet()
        active = {a.agent_id for a, _ in fleet}
        # Revoked or retired since, but in service during the period: a row with that time's
        # figures (its snapshot is not read: the state now is not its).
        gone: list[tuple[AgentRecord, dict[str, Any]]] = [
            (a, {}) for a in store.list_agents() if a.agent_id not in active and a.agent_id in over
        ]
        for a, snap in [*fleet, *gone]:
            pl = a.placement
            if not scope.has(pl.district, pl.commune, pl.unit if scope.unit else ""):
                continue
            reporting = (
                a.revoked_at is None and a.last_seen_at is not None and a.last_seen_at >= fresh
            )
            flags = met.get(a.agent_id, (False,) * (len(MACHINE_INDICATORS) + 1))
            host = (snap.get("hardware") or {}).get("host") or {}
            memory = (snap.get("hardware") or {}).get("memory") or {}
            yield (
                a.agent_id,
                a.hostname,
                pl.district,
                pl.commune,
                pl.unit,
                pl.role,
                a.os_name,
                a.os_version,
                host.get("vendor") or None,
                host.get("model") or None,
                host.get("serial") or None,
                memory.get("total_bytes"),
                a.agent_version,
                a.enrolled_at,
                a.last_seen_at,
                _yes(reporting, lang),
                *(_yes(reporting and f, lang) for f in flags[: len(MACHINE_INDICATORS)]),
                _yes(reporting and flags[-1], lang) if pl.role == MEETING_ROLE else None,
                _delivered(over.get(a.agent_id, {})),
                *(
                    _ratio(over.get(a.agent_id, {}).get((ROLLUP_INDICATOR, i.id)))
                    for i in MACHINE_INDICATORS
                ),
                a.retired_at,
            )

    machines = Table(
        "machines",
        "Theo máy",
        "By machine",
        (
            _AGENT_ID,
            _HOST,
            _DISTRICT,
            _COMMUNE,
            _UNIT,
            Column("role", "Vai trò", "Role"),
            Column("os", "Hệ điều hành", "OS"),
            Column("os_version", "Phiên bản HĐH", "OS version"),
            Column("vendor", "Hãng", "Vendor"),
            Column("model", "Model", "Model"),
            Column("serial", "Số sê-ri", "Serial"),
            Column("memory_bytes", "RAM (byte)", "RAM (bytes)", "int"),
            Column("agent_version", "Phiên bản agent", "Agent version"),
            Column("enrolled_at", "Đăng ký lúc", "Enrolled at", "time"),
            Column("last_seen_at", "Báo cáo gần nhất", "Last report", "time"),
            Column("reporting", "Đang báo cáo", "Reporting"),
            *(Column(i.id, i.vi, i.en) for i in MACHINE_INDICATORS),
            Column("room_ready", "Phòng họp sẵn sàng", "Room ready"),
            Column(
                "delivered", "Báo cáo nhận được / cần có", "Reports received / expected", "share"
            ),
            *_PERIOD_COLUMNS,
            Column("retired_at", "Ngừng sử dụng lúc", "Retired at", "time"),
        ),
        machine_rows,
    )

    return machines


def _finding_tables(
    report: Report, store: Store, titles: dict[str, tuple[str, str]], lang: str
) -> list[Table]:
    scope = report.scope

    def title(rule: str) -> str:
        vi, en = titles.get(rule, (rule, rule))
        return vi if lang == "vi" else en

    def finding_rows() -> Iterator[Sequence[Cell]]:
        for e in report.fixed:
            lab = e.labels
            yield (
                lab.rule_id,
                title(lab.rule_id),
                lab.subject,
                lab.district,
                lab.commune,
                e.started_at,
                e.at,
                None if e.started_at is None else e.at - e.started_at,
            )
        for a in store.alerts.open_alerts():
            lab = a.labels
            if a.state != "firing" or a.started_at >= report.period.end:
                continue
            if not scope.has(lab.district, lab.commune, lab.unit if scope.unit else ""):
                continue
            yield (
                lab.rule_id,
                title(lab.rule_id),
                lab.subject,
                lab.district,
                lab.commune,
                a.started_at,
                None,
                None,
            )

    findings = Table(
        "findings",
        "Sự cố: lỗi từ, khắc phục lúc",
        "Findings: failing since, fixed at",
        (
            _RULE,
            _FINDING,
            Column("subject", "Đối tượng", "Subject"),
            _DISTRICT,
            _COMMUNE,
            Column("failing_since", "Lỗi từ", "Failing since", "time"),
            Column("fixed_at", "Khắc phục lúc", "Fixed at", "time"),
            Column("seconds_to_fix", "Thời gian khắc phục (giây)", "Time to fix (s)", "int"),
        ),
        finding_rows,
    )

    def fix_rows() -> Iterator[Sequence[Cell]]:
        for rule, ts in sorted(report.fix_times().items()):
            ts.sort()
            p90 = ts[min(len(ts) - 1, int(0.9 * len(ts)))]
            yield (rule, title(rule), len(ts), int(statistics.median(ts)), int(p90), int(ts[-1]))

    time_to_fix = Table(
        "time-to-fix",
        "Thời gian khắc phục theo luật",
        "Time to fix per rule",
        (
            _RULE,
            _FINDING,
            Column("fixed", "Số lần khắc phục", "Fixed", "int"),
            Column("median", "Trung vị (giây)", "Median (s)", "int"),
            Column("p90", "P90 (giây)", "P90 (s)", "int"),
            Column("max", "Lâu nhất (giây)", "Longest (s)", "int"),
        ),
        fix_rows,
    )

    def history_rows() -> Iterator[Sequence[Cell]]:
        for e in store.alerts.history_between(
            report.period.start, report.period.end, scope.district
        ):
            lab = e.labels
            if scope.has(lab.district, lab.commune, lab.unit if scope.unit else ""):
                yield (
                    e.at,
                    e.event,
                    lab.rule_id,
                    title(lab.rule_id),
                    lab.subject,
                    lab.district,
                    lab.commune,
                    e.detail or None,
                )

    history = Table(
        "alert-history",
        "Lịch sử cảnh báo",
        "Alert history",
        (
            Column("at", "Lúc", "At", "time"),
            Column("event", "Sự kiện", "Event"),
            _RULE,
            _FINDING,
            Column("subject", "Đối tượng", "Subject"),
            _DISTRICT,
            _COMMUNE,
            Column("detail", "Chi tiết", "Detail"),
        ),
        history_rows,
    )

    def meeting_rows() -> Iterator[Sequence[Cell]]:
        for meeting_id, name, starts_at, v in report.meetings:
            yield (
                starts_at,
                meeting_id,
                name,
                v.name,
                v.verdict,
                v.state,
                "; ".join(v.reasons) or None,
                v.checked_at,
            )

    meetings = Table(
        "meetings",
        "Phòng họp theo cuộc họp",
        "Meeting rooms per meeting",
        (
            Column("starts_at", "Bắt đầu", "Starts at", "time"),
            Column("meeting", "Mã cuộc họp", "Meeting"),
            Column("title", "Cuộc họp", "Title"),
            Column("room", "Phòng", "Room"),
            Column("verdict", "Kết luận", "Verdict"),
            Column("state", "Trạng thái", "State"),
            Column("reasons", "Lý do", "Reasons"),
            Column("checked_at", "Kiểm tra lúc", "Checked at", "time"),
        ),
        meeting_rows,
    )
    return [findings, time_to_fix, history, meetings]


def _delivered(stats: dict[tuple[str, str], tuple[int, float]]) -> float | None:
    received = stats.get((ROLLUP_AVAILABILITY, "received"), (0, 0.0))[1]
    expected = stats.get((ROLLUP_AVAILABILITY, "expected"), (0, 0.0))[1]
    return min(1.0, received / expected) if expected else None


def _yes(flag: bool, lang: str) -> str:
    return ("có" if flag else "không") if lang == "vi" else ("yes" if flag else "no")


def rule_titles(pack: Path | None) -> dict[str, tuple[str, str]]:
    """Rule id -> (Vietnamese, English) title, from the rule pack at `pack` (none: empty)."""
    if pack is None:
        return {}
    return {r.id: (r.title.vi, r.title.en) for r in load_pack(pack).rules}


def heading(report: Report, lang: str) -> Heading:
    """The PDF summary page's words: title, period, when made, the period's findings."""
    vi = lang == "vi"
    made = datetime.fromtimestamp(report.made_at, report.period.zone)
    return Heading(
        title=("Báo cáo an toàn thông tin — " if vi else "Information security report — ")
        + report.place(),
        lines=[
            ("Kỳ báo cáo: " if vi else "Period: ") + report.period.describe(lang),
            ("Số liệu hiện trạng lúc " if vi else "State at ") + f"{made:%H:%M %d/%m/%Y}",
        ],
        footer=report.lines(lang)[-3:],  # findings fixed, still failing, meetings
        sign_as="Người duyệt (ký, ghi rõ họ tên)" if vi else "Approved by (signature, name)",
    )


def export_report(
    report: Report,
    store: Store,
    titles: dict[str, tuple[str, str]],
    lang: str,
    out: Path,
    *,
    key: Ed25519PrivateKey,
    formats: Sequence[str],
    font: Path | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> Path:
    """The sealed export of `report` under `out` (collector.export.write)."""
    from collector.export.write import write_export  # noqa: PLC0415 (the export's libraries)

    summary, rest = tables(report, store, titles, lang)
    made = datetime.fromtimestamp(report.made_at, report.period.zone)
    place = report.scope.name().replace(" / ", "-").replace(" ", "_")
    name = "-".join(
        x
        for x in ("canhgac", report.period.label.replace("..", "_"), place, f"{made:%Y%m%dT%H%M%S}")
        if x
    )
    return write_export(
        out,
        name,
        summary=summary,
        tables=rest,
        heading=heading(report, lang),
        formats=formats,
        parameters={
            "period": report.period.label,
            "scope": report.place(),
            "lang": lang,
            "timezone": report.period.zone.key,
        },
        key=key,
        lang=lang,
        zone=report.period.zone,
        font=font,
        progress=progress,
    )


def summary_pdf(report: Report, store: Store, lang: str, font: Path | None = None) -> bytes:
    """The PDF summary page alone (what the monthly mail attaches)."""
    summary, _ = tables(report, store, {}, lang)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "summary.pdf"
        write_pdf(
            summary,
            heading(report, lang),
            path,
            lang=lang,
            zone=report.period.zone,
            font=find_font(font),
        )
        return path.read_bytes()
