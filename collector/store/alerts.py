"""Alert, history, silence, maintenance, outbox and rule-result persistence (mixed into Store)."""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Dialect, Table, and_, bindparam, case, delete, false, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from canhgac_common.i18n import gettext_ as _
from collector.errors import NotFoundError
from collector.model import Alert, Labels
from collector.store.base import Part
from collector.store.schema import (
    agents,
    alert_history,
    alerts,
    maintenance_windows,
    notifications,
    rule_results,
    silences,
)

__all__ = [
    "AlertTables",
    "AlertWrite",
    "HistoryEntry",
    "MaintenanceWindow",
    "Notification",
    "Silence",
    "history_entry",
]


@dataclass(frozen=True)
class HistoryEntry:
    labels: Labels
    event: str
    at: float
    started_at: float | None
    recorded_at: float
    detail: str = ""


@dataclass(frozen=True)
class Notification:
    """A lifecycle transition that should reach people (the seam for notifiers)."""

    id: int
    created_at: float
    kind: str  # firing | resolved
    rule_id: str
    subject: str
    severity: str
    payload: dict[str, Any]
    sent_at: float | None = None


@dataclass(frozen=True)
class Silence:
    silence_id: str
    matchers: dict[str, str]  # label -> glob
    starts_at: float
    ends_at: float
    author: str
    reason: str


@dataclass(frozen=True)
class MaintenanceWindow:
    window_id: str
    matchers: dict[str, str]
    weekdays: tuple[str, ...]  # mon..sun
    start: str  # HH:MM, collector local time
    duration_seconds: float
    author: str
    reason: str


@dataclass
class AlertWrite:
    """Everything one evaluation step changes, written in one transaction."""

    upserts: dict[tuple[str, str], Alert] = field(default_factory=dict)  # the last per key
    deletes: list[tuple[str, str]] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    notify: list[tuple[str, Labels, dict[str, Any]]] = field(default_factory=list)
    results: list[tuple[Labels, bool, float]] = field(default_factory=list)
    now: float = 0.0

    def __bool__(self) -> bool:
        return bool(self.upserts or self.deletes or self.history or self.notify or self.results)

    def split(self, keys: int) -> list[AlertWrite]:
        """This write as several of at most `keys` alert keys (rule, subject) each; what
        belongs to one key — its row, history, notifications and verdicts — stays in one
        part, in its order. Each part is its own transaction: a first round of 10,000 agents
        opens thousands of alerts in one tick, and one transaction for all of them held the
        SQLite writer (and so every Submit's commit) for over half a second."""
        order: dict[tuple[str, str], int] = {}  # key -> its place among the keys
        out: list[AlertWrite] = []

        def part(key: tuple[str, str]) -> AlertWrite:
            i = order.setdefault(key, len(order)) // keys
            if i == len(out):
                out.append(AlertWrite(now=self.now))
            return out[i]

        for key in self.deletes:
            part(key).deletes.append(key)
        for key, alert in self.upserts.items():
            part(key).upserts[key] = alert
        for h in self.history:
            part((h.labels.rule_id, h.labels.subject)).history.append(h)
        for n in self.notify:
            part((n[1].rule_id, n[1].subject)).notify.append(n)
        for r in self.results:
            part((r[0].rule_id, r[0].subject)).results.append(r)
        return out


# What the engine writes on an alert row; acked_by / acked_at belong to the CLI.
_ALERT_COLUMNS = (
    "severity",
    "district",
    "commune",
    "unit",
    "host",
    "state",
    "started_at",
    "fired_at",
    "passing_since",
    "last_observed_at",
    "notified",
)


def history_entry(r: Any) -> HistoryEntry:
    """An alert_history row (severity is not kept there)."""
    return HistoryEntry(
        Labels(r.rule_id, r.subject, "", r.district, r.commune),
        r.event,
        r.at,
        r.started_at,
        r.recorded_at,
        r.detail,
    )


def _alert(r: Any) -> Alert:
    return Alert(
        labels=Labels(r.rule_id, r.subject, r.severity, r.district, r.commune, r.unit, r.host),
        state=r.state,
        started_at=r.started_at,
        last_observed_at=r.last_observed_at,
        fired_at=r.fired_at,
        passing_since=r.passing_since,
        notified=bool(r.notified),
        acked_by=r.acked_by,
        acked_at=r.acked_at,
    )


_RESULT_COLUMNS = ("district", "commune", "ok", "at")
_HISTORY_COLUMNS = tuple(c.name for c in alert_history.c if c.name != "id")


class _Statements:
    """apply_alerts' statements, compiled once for the store's database and given to the
    driver as they are: SQLAlchemy's per-row parameter processing and statement building
    were most of the alert thread's time with 10,000 agents (bench/sustained.py), time in
    which the Submit handlers wait for the GIL."""

    def __init__(self, dialect: Dialect) -> None:
        postgres = dialect.name == "postgresql"
        # Named parameters, given as dicts: the drivers' own styles (psycopg: %(name)s).
        named = dialect if postgres else sqlite.dialect(paramstyle="named")
        insert = postgresql.insert if postgres else sqlite.insert

        def compiled(statement: Any, keys: Sequence[str] | None = None) -> str:
            return str(statement.compile(dialect=named, column_keys=keys))

        def upsert(table: Table, columns: tuple[str, ...]) -> str:
            """INSERT … ON CONFLICT (rule_id, subject) DO UPDATE of `columns`."""
            stmt = insert(table)
            return compiled(
                stmt.on_conflict_do_update(
                    index_elements=["rule_id", "subject"],
                    set_={c: stmt.excluded[c] for c in columns},
                ),
                ("rule_id", "subject", *columns),
            )

        # The CLI owns the ack columns; the engine never overwrites them.
        self.upsert_alert = upsert(alerts, _ALERT_COLUMNS)
        self.upsert_result = upsert(rule_results, _RESULT_COLUMNS)
        self.delete_alert = compiled(
            delete(alerts).where(
                alerts.c.rule_id == bindparam("rule_id"), alerts.c.subject == bindparam("subject")
            )
        )
        self.insert_history = compiled(alert_history.insert(), _HISTORY_COLUMNS)


class AlertTables(Part):
    """The alert engine's tables: open alerts, their history, verdicts, silences,
    maintenance windows and the notifications outbox."""

    @functools.cached_property
    def _statements(self) -> _Statements:
        return _Statements(self._engine.dialect)

    # ---- written by the alert engine --------------------------------------------------

    def apply_alerts(self, w: AlertWrite) -> None:
        """One transaction; each table gets one statement for all its rows (a first round of
        10,000 agents brings hundreds of thousands of verdicts at once)."""
        sql = self._statements
        with self._write() as conn:
            run = conn.exec_driver_sql
            if w.deletes:
                run(sql.delete_alert, [{"rule_id": r, "subject": s} for r, s in w.deletes])
            if w.upserts:
                run(
                    sql.upsert_alert,
                    [
                        {
                            "rule_id": a.labels.rule_id,
                            "subject": a.labels.subject,
                            "severity": a.labels.severity,
                            "district": a.labels.district,
                            "commune": a.labels.commune,
                            "unit": a.labels.unit,
                            "host": a.labels.host,
                            "state": a.state,
                            "started_at": a.started_at,
                            "fired_at": a.fired_at,
                            "passing_since": a.passing_since,
                            "last_observed_at": a.last_observed_at,
                            "notified": a.notified,
                        }
                        for a in w.upserts.values()
                    ],
                )
            if w.history:
                run(
                    sql.insert_history,
                    [
                        {
                            "rule_id": h.labels.rule_id,
                            "subject": h.labels.subject,
                            "district": h.labels.district,
                            "commune": h.labels.commune,
                            "event": h.event,
                            "at": h.at,
                            "started_at": h.started_at,
                            "recorded_at": h.recorded_at,
                            "detail": h.detail,
                        }
                        for h in w.history
                    ],
                )
            if w.notify:
                conn.execute(
                    notifications.insert(),
                    [
                        {
                            "created_at": w.now,
                            "kind": kind,
                            "rule_id": lab.rule_id,
                            "subject": lab.subject,
                            "severity": lab.severity,
                            "payload": json.dumps(payload, ensure_ascii=False),
                            "attempts": 0,
                        }
                        for kind, lab, payload in w.notify
                    ],
                )
            if w.results:
                # The newest verdict per key (one statement may not touch a row twice).
                latest = {(lab.rule_id, lab.subject): (lab, ok, at) for lab, ok, at in w.results}
                run(
                    sql.upsert_result,
                    [
                        {
                            "rule_id": lab.rule_id,
                            "subject": lab.subject,
                            "district": lab.district,
                            "commune": lab.commune,
                            "ok": ok,
                            "at": at,
                        }
                        for lab, ok, at in latest.values()
                    ],
                )

    def open_alerts(self) -> list[Alert]:
        with self._read() as conn:
            rows = conn.execute(select(alerts).order_by(alerts.c.rule_id, alerts.c.subject)).all()
        return [_alert(r) for r in rows]

    def rule_verdicts(self) -> dict[tuple[str, str], bool]:
        with self._read() as conn:
            rows = conn.execute(
                select(rule_results.c.rule_id, rule_results.c.subject, rule_results.c.ok)
            ).all()
        return {(r.rule_id, r.subject): bool(r.ok) for r in rows}

    @staticmethod
    def _per_agent(indicators: Sequence[Sequence[str]], room_rule: str) -> Any:
        """The verdicts grouped by agent: i0..iN = 1 when the agent meets indicator N (its
        first rule has judged it and none of its rules fails), ready = 1 when its latest
        verdict on `room_rule` passes. The one definition collector.indicators relies on."""
        rr = rule_results
        rules = sorted({r for ind in indicators for r in ind} | {room_rule})
        cols: list[Any] = [rr.c.subject]
        for n, ind in enumerate(indicators):
            judged = func.max(case((rr.c.rule_id == ind[0], 1), else_=0))
            failed = func.max(case((and_(rr.c.rule_id.in_(ind), rr.c.ok == false()), 1), else_=0))
            cols.append(case((and_(judged == 1, failed == 0), 1), else_=0).label(f"i{n}"))
        ready = func.max(case((and_(rr.c.rule_id == room_rule, rr.c.ok), 1), else_=0))
        return (
            select(*cols, ready.label("ready"))
            .where(rr.c.rule_id.in_(rules))
            .group_by(rr.c.subject)
            .subquery()
        )

    def indicator_counts(
        self,
        indicators: Sequence[Sequence[str]],
        room: tuple[str, str],
        fresh_since: float,
    ) -> list[tuple[Any, ...]]:
        """Per place of active agents: (district, commune, unit, enrolled, reporting,
        rooms reporting, rooms ready, then per indicator the reporting machines meeting it).

        An indicator is its rules (collector.indicators defines them); a room is an agent of
        role `room[1]`, ready when its latest verdict on rule `room[0]` passes. One scan of the
        verdicts grouped by agent, in the database: cheap at every scrape."""
        room_rule, room_role = room
        v = self._per_agent(indicators, room_rule)
        fresh = agents.c.last_seen_at >= fresh_since
        room_up = and_(fresh, agents.c.role == room_role)

        def count(cond: Any) -> Any:
            return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

        q = (
            select(
                agents.c.district,
                agents.c.commune,
                agents.c.unit,
                func.count(),
                count(fresh),
                count(room_up),
                count(and_(room_up, v.c.ready == 1)),
                *(count(and_(fresh, v.c[f"i{n}"] == 1)) for n in range(len(indicators))),
            )
            .select_from(agents.outerjoin(v, v.c.subject == agents.c.agent_id))
            .where(agents.c.revoked_at.is_(None))
            .group_by(agents.c.district, agents.c.commune, agents.c.unit)
        )
        with self._read() as conn:
            return [tuple(r) for r in conn.execute(q).all()]

    def indicator_machines(
        self, indicators: Sequence[Sequence[str]], room_rule: str
    ) -> dict[str, tuple[bool, ...]]:
        """Per active agent that has verdicts: whether it meets each indicator, then whether
        its room verdict passes (reporting is the caller's: it has the agent's last_seen)."""
        v = self._per_agent(indicators, room_rule)
        q = (
            select(v)
            .join(agents, v.c.subject == agents.c.agent_id)
            .where(agents.c.revoked_at.is_(None))
        )
        with self._read() as conn:
            return {r[0]: tuple(bool(x) for x in r[1:]) for r in conn.execute(q)}

    def history_between(
        self, start: float, end: float, district: str | None = None
    ) -> Iterator[HistoryEntry]:
        """Every alert event in [start, end), oldest first, streamed (a year of history is
        read by the audit export without being held at once)."""
        h = alert_history
        q = select(h).where(h.c.at >= start, h.c.at < end).order_by(h.c.at, h.c.id)
        if district is not None:
            q = q.where(h.c.district == district)
        with self._read() as conn:
            for r in conn.execution_options(stream_results=True, yield_per=2000).execute(q):
                yield history_entry(r)

    def fixes(self, start: float, end: float, district: str | None = None) -> list[HistoryEntry]:
        """Findings fixed in [start, end) or open at its end and fixed later: the resolved or
        cleared events at or after `start` whose failure began before `end`."""
        h = alert_history
        q = (
            select(h)
            .where(
                h.c.event.in_(("resolved", "cleared")),
                h.c.at >= start,
                h.c.started_at < end,
            )
            .order_by(h.c.rule_id, h.c.at)
        )
        if district is not None:
            q = q.where(h.c.district == district)
        with self._read() as conn:
            return [history_entry(r) for r in conn.execute(q)]

    def forget_rules(self, keep: set[str]) -> None:
        """Drop open alerts and verdicts of rules no longer in the pack (history stays)."""
        with self._write() as conn:
            for table in (alerts, rule_results):
                conn.execute(delete(table).where(table.c.rule_id.not_in(keep)))

    # ---- read and written by the CLI ---------------------------------------------------

    def alert_history(self, rule_id: str, subject: str | None = None) -> list[HistoryEntry]:
        q = select(alert_history).where(alert_history.c.rule_id == rule_id)
        if subject is not None:
            q = q.where(alert_history.c.subject == subject)
        with self._read() as conn:
            rows = conn.execute(q.order_by(alert_history.c.at, alert_history.c.id)).all()
        return [history_entry(r) for r in rows]

    def ack_alert(self, rule_id: str, subject: str, author: str, note: str, now: float) -> None:
        with self._write() as conn:
            row = conn.execute(
                select(alerts).where(alerts.c.rule_id == rule_id, alerts.c.subject == subject)
            ).first()
            if row is None:
                raise NotFoundError(
                    _("no open alert {rule} on {subject} (see `alerts list`)").format(
                        rule=rule_id, subject=subject
                    )
                )
            conn.execute(
                update(alerts)
                .where(alerts.c.rule_id == rule_id, alerts.c.subject == subject)
                .values(acked_by=author, acked_at=now)
            )
            conn.execute(
                alert_history.insert().values(
                    rule_id=rule_id,
                    subject=subject,
                    district=row.district,
                    commune=row.commune,
                    event="ack",
                    at=now,
                    started_at=row.started_at,
                    recorded_at=now,
                    detail=f"{author}: {note}",
                )
            )

    def add_silence(
        self, matchers: dict[str, str], starts_at: float, ends_at: float, author: str, reason: str
    ) -> Silence:
        s = Silence(secrets.token_hex(4), matchers, starts_at, ends_at, author, reason)
        with self._write() as conn:
            conn.execute(
                silences.insert().values(
                    silence_id=s.silence_id,
                    matchers=json.dumps(matchers, ensure_ascii=False),
                    starts_at=starts_at,
                    ends_at=ends_at,
                    author=author,
                    reason=reason,
                    created_at=starts_at,
                )
            )
        return s

    def silences(self, now: float) -> list[Silence]:
        """Silences not yet over at `now` (including ones that start later)."""
        with self._read() as conn:
            rows = conn.execute(
                select(silences)
                .where(silences.c.ends_at > now, silences.c.expired_at.is_(None))
                .order_by(silences.c.starts_at)
            ).all()
        return [
            Silence(
                r.silence_id, json.loads(r.matchers), r.starts_at, r.ends_at, r.author, r.reason
            )
            for r in rows
        ]

    def expire_silence(self, silence_id: str, now: float) -> None:
        self._change_one(
            update(silences)
            .where(silences.c.silence_id == silence_id, silences.c.expired_at.is_(None))
            .values(expired_at=now),
            _("no active silence {id!r} (see `alerts silence list`)").format(id=silence_id),
        )

    def add_maintenance(self, w: MaintenanceWindow, now: float) -> None:
        with self._write() as conn:
            conn.execute(
                maintenance_windows.insert().values(
                    window_id=w.window_id,
                    matchers=json.dumps(w.matchers, ensure_ascii=False),
                    weekdays=",".join(w.weekdays),
                    start=w.start,
                    duration_seconds=w.duration_seconds,
                    author=w.author,
                    reason=w.reason,
                    created_at=now,
                )
            )

    def maintenance(self) -> list[MaintenanceWindow]:
        with self._read() as conn:
            rows = conn.execute(select(maintenance_windows)).all()
        return [
            MaintenanceWindow(
                r.window_id,
                json.loads(r.matchers),
                tuple(r.weekdays.split(",")),
                r.start,
                r.duration_seconds,
                r.author,
                r.reason,
            )
            for r in rows
        ]

    def delete_maintenance(self, window_id: str) -> None:
        self._change_one(
            delete(maintenance_windows).where(maintenance_windows.c.window_id == window_id),
            _("no maintenance window {id!r}").format(id=window_id),
        )

    # ---- the notification seam ---------------------------------------------------------

    def unsent_notifications(self, limit: int = 100) -> list[Notification]:
        """Oldest first; a notifier sends each and calls mark_notification_sent."""
        with self._read() as conn:
            rows = conn.execute(
                select(notifications)
                .where(notifications.c.sent_at.is_(None))
                .order_by(notifications.c.id)
                .limit(limit)
            ).all()
        return [self._notification(r) for r in rows]

    def notifications(self) -> list[Notification]:
        with self._read() as conn:
            rows = conn.execute(select(notifications).order_by(notifications.c.id)).all()
        return [self._notification(r) for r in rows]

    @staticmethod
    def _notification(r: Any) -> Notification:
        return Notification(
            r.id,
            r.created_at,
            r.kind,
            r.rule_id,
            r.subject,
            r.severity,
            json.loads(r.payload),
            r.sent_at,
        )

    def mark_notification_sent(self, notification_id: int, now: float) -> None:
        with self._write() as conn:
            conn.execute(
                update(notifications)
                .where(notifications.c.id == notification_id)
                .values(sent_at=now, attempts=notifications.c.attempts + 1)
            )

    # ---- metrics -----------------------------------------------------------------------

    def firing_counts(self) -> list[tuple[str, str, str, str, int]]:
        """(rule, severity, district, commune, firing alerts)."""
        with self._read() as conn:
            rows = conn.execute(
                select(
                    alerts.c.rule_id,
                    alerts.c.severity,
                    alerts.c.district,
                    alerts.c.commune,
                    func.count(),
                )
                .where(alerts.c.state == "firing")
                .group_by(alerts.c.rule_id, alerts.c.severity, alerts.c.district, alerts.c.commune)
            ).all()
        return [(r[0], r[1], r[2], r[3], int(r[4])) for r in rows]

    def pass_counts(self) -> list[tuple[str, str, str, int, int]]:
        """(rule, district, commune, passing, judged) over active agents' latest verdicts."""
        with self._read() as conn:
            rows = conn.execute(
                select(
                    rule_results.c.rule_id,
                    rule_results.c.district,
                    rule_results.c.commune,
                    rule_results.c.ok,
                    func.count(),
                ).group_by(
                    rule_results.c.rule_id,
                    rule_results.c.district,
                    rule_results.c.commune,
                    rule_results.c.ok,
                )
            ).all()
        out: dict[tuple[str, str, str], list[int]] = {}
        for r in rows:
            counts = out.setdefault((r[0], r[1], r[2]), [0, 0])
            counts[0] += int(r[4]) if r[3] else 0
            counts[1] += int(r[4])
        return [(k[0], k[1], k[2], v[0], v[1]) for k, v in sorted(out.items())]
