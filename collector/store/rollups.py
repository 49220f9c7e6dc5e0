"""Rollups and retention: the buckets that outlive raw reports, the marks of the retention
pass, and the paced deletions past each horizon. Every write is one short transaction that
moves its mark (or deletes what it summarised) with its work, so a pass killed at any point
leaves nothing counted twice or half-deleted, and the next pass carries on."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    and_,
    case,
    delete,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from canhgac_common.i18n import gettext_ as _
from collector.errors import StoreError
from collector.model import SEQ_BITS, Rollup, RollupKey, Stat, stored_seq
from collector.store.base import Part
from collector.store.blocks import BlockError, PackedReport, pack, unpack
from collector.store.schema import (
    agents,
    alert_history,
    mail_outbox,
    mail_queue,
    meeting_results,
    metadata,
    notifications,
    report_blocks,
    reports,
    retention_marks,
    rollups,
    snapshots,
    tokens,
)

__all__ = ["HISTORY_TABLES", "Mark", "RawReport", "RollupTables", "TableStats"]

HOUR = 3600
DAY = 86400


@dataclass(frozen=True)
class Mark:
    """How far a step of the retention pass has got (retention_marks)."""

    at: float
    agent_id: str = ""
    seq: int = 0


@dataclass(frozen=True)
class RawReport:
    """A stored report as the rollup pass reads it; collector.decode.stored_report decodes
    (wire, payload)."""

    agent_id: str
    seq: int
    boot_id: str
    collected_at: float
    received_at: float
    wire: bytes | None
    payload: str


@dataclass(frozen=True)
class TableStats:
    """One table as `store stats` shows it: rows, the time of its oldest row, bytes on disk
    (with its indexes; None where the database cannot tell)."""

    name: str
    rows: int
    oldest: float | None
    bytes: int | None


# The time column `store stats` reads each table's oldest row from.
_OLDEST = {
    "reports": reports.c.received_at,
    "report_blocks": report_blocks.c.first_received,
    "rollups": rollups.c.start,
    "snapshots": snapshots.c.collected_at,
    "agents": agents.c.enrolled_at,
    "tokens": tokens.c.created_at,
    "alert_history": alert_history.c.at,
    "notifications": notifications.c.created_at,
    "mail_outbox": mail_outbox.c.created_at,
    "mail_queue": mail_queue.c.created_at,
    "meeting_results": meeting_results.c.starts_at,
}

# The tables with their own retention besides reports and rollups: (table, time column,
# what must hold of a row before it may go: never an unsent notification or pending mail).
HISTORY_TABLES: dict[str, tuple[Table, Any, Any]] = {
    "alert_history": (alert_history, alert_history.c.at, None),
    "notifications": (
        notifications,
        notifications.c.created_at,
        notifications.c.sent_at.is_not(None),
    ),
    "mail_outbox": (mail_outbox, mail_outbox.c.created_at, mail_outbox.c.state != "pending"),
    "mail_queue": (mail_queue, mail_queue.c.created_at, mail_queue.c.message_id.is_not(None)),
}


class _Changed(Exception):
    """The rows a pack read are no longer all there: another pass packed or deleted some."""


def _unpacked(agent_id: str, first_seq: int, data: bytes) -> list[PackedReport]:
    try:
        return unpack(data)
    except BlockError as e:
        raise StoreError(
            _("report block ({agent}, {seq}) unreadable: {error}").format(
                agent=agent_id, seq=first_seq, error=e
            )
        ) from None


_KEY = (rollups.c.span, rollups.c.start, rollups.c.agent_id, rollups.c.section, rollups.c.metric)
_STAT = (rollups.c.count, rollups.c.total, rollups.c.low, rollups.c.high)


class RollupTables(Part):
    """`totals` is the read the period reports use; the rest is the retention pass's."""

    # ---- the read API (issue 19: indicators per commune and period) ----------------------

    def totals(
        self, start: float, end: float, agent_ids: Collection[str] | None = None
    ) -> Iterator[Rollup]:
        """Each agent's metrics over [start, end), summed over the buckets that start in it,
        ordered by agent, section, metric; streamed (10,000 agents x a month stay in bounded
        memory). Hourly buckets are UTC hours, daily ones (past `retention.hourly`) local days
        of the retention time zone: give a period of whole local days. The buckets hold every
        report received up to `rolled_until()`; availability's `expected` is written once an
        hour has closed."""
        query = (
            select(
                rollups.c.agent_id,
                rollups.c.section,
                rollups.c.metric,
                func.sum(rollups.c.count),
                func.sum(rollups.c.total),
                func.min(rollups.c.low),
                func.max(rollups.c.high),
            )
            .where(rollups.c.start >= start, rollups.c.start < end)
            .group_by(rollups.c.agent_id, rollups.c.section, rollups.c.metric)
            .order_by(rollups.c.agent_id, rollups.c.section, rollups.c.metric)
        )
        if agent_ids is not None:
            query = query.where(rollups.c.agent_id.in_(list(agent_ids)))
        with self._read() as conn:
            result = conn.execution_options(stream_results=True, yield_per=2000).execute(query)
            for agent_id, section, metric, count, total, low, high in result:
                yield Rollup(agent_id, section, metric, Stat(int(count), total, low, high))

    def place_totals(
        self, start: float, end: float, sections: Collection[str]
    ) -> list[tuple[str, str, str, str, str, int, float]]:
        """(district, commune, unit, section, metric, count, total) over the buckets that start
        in [start, end) of every agent placed there, revoked ones included (they were there
        in the period): what a period's shares per place are computed from."""
        q = (
            select(
                agents.c.district,
                agents.c.commune,
                agents.c.unit,
                rollups.c.section,
                rollups.c.metric,
                func.sum(rollups.c.count),
                func.sum(rollups.c.total),
            )
            .join(agents, agents.c.agent_id == rollups.c.agent_id)
            .where(
                rollups.c.start >= start,
                rollups.c.start < end,
                rollups.c.section.in_(sorted(sections)),
            )
            .group_by(
                agents.c.district,
                agents.c.commune,
                agents.c.unit,
                rollups.c.section,
                rollups.c.metric,
            )
        )
        with self._read() as conn:
            return [
                (d, c, u, sec, m, int(n), float(t)) for d, c, u, sec, m, n, t in conn.execute(q)
            ]

    def commune_time(
        self, start: float, end: float, section: str
    ) -> list[tuple[str, str, float, float]]:
        """(district, commune, seconds expected, seconds reachable) over the buckets that start
        in [start, end). A bucket's span is expected when some agent of the commune was
        expected to report in it (`section`'s `expected` metric, written once an hour closed);
        of it, the commune reached the collector for the best agent's share of on-time
        reports (`reachable` over `expected`, at most 1): an hour is all or nothing, a day
        past `retention.hourly` keeps how many of its hours got through."""
        r = rollups
        per_agent = (
            select(
                agents.c.district,
                agents.c.commune,
                r.c.start,
                r.c.span,
                func.sum(case((r.c.metric == "expected", r.c.total), else_=0.0)).label("exp"),
                func.sum(case((r.c.metric == "reachable", r.c.total), else_=0.0)).label("ok"),
            )
            .join(agents, agents.c.agent_id == r.c.agent_id)
            .where(r.c.start >= start, r.c.start < end, r.c.section == section)
            .where(agents.c.commune != "")
            .group_by(agents.c.district, agents.c.commune, r.c.agent_id, r.c.start, r.c.span)
            .subquery()
        )
        a = per_agent.c
        share = case((a.exp <= 0, None), (a.ok >= a.exp, 1.0), else_=a.ok / a.exp)
        per_bucket = (
            select(
                a.district,
                a.commune,
                a.span,
                func.max(a.exp).label("exp"),
                func.coalesce(func.max(share), 0.0).label("share"),
            )
            .group_by(a.district, a.commune, a.start, a.span)
            .subquery()
        )
        b = per_bucket.c
        q = select(
            b.district,
            b.commune,
            func.sum(case((b.exp > 0, b.span), else_=0)),
            func.sum(case((b.exp > 0, b.span * b.share), else_=0.0)),
        ).group_by(b.district, b.commune)
        with self._read() as conn:
            return [(d, c, float(e or 0), float(k or 0)) for d, c, e, k in conn.execute(q)]

    def buckets(self, agent_id: str) -> dict[RollupKey, Stat]:
        """Every bucket of one agent as stored (for `agent show` and the tests)."""
        with self._read() as conn:
            rows = conn.execute(select(*_KEY, *_STAT).where(rollups.c.agent_id == agent_id))
            return {
                RollupKey(a, span, start, sec, m): Stat(*st) for span, start, a, sec, m, *st in rows
            }

    def rolled_until(self) -> float | None:
        """Reports received up to this time (collector clock) are in the rollups."""
        mark = self.mark("rolled")
        return None if mark is None else mark.at

    # ---- the retention pass ---------------------------------------------------------------

    def mark(self, name: str) -> Mark | None:
        with self._read() as conn:
            row = conn.execute(
                select(retention_marks).where(retention_marks.c.name == name)
            ).first()
        return None if row is None else Mark(row.at, row.agent_id, row.seq)

    def reports_after(self, after: Mark | None, until: float, limit: int) -> list[RawReport]:
        """The next `limit` reports in arrival order after `after`, received before `until`."""
        query = (
            select(
                reports.c.agent_id,
                reports.c.seq,
                reports.c.boot_id,
                reports.c.collected_at,
                reports.c.received_at,
                reports.c.wire,
                reports.c.payload,
            )
            .where(reports.c.received_at < until)
            .order_by(reports.c.received_at, reports.c.agent_id, reports.c.seq)
            .limit(limit)
        )
        if after is not None:
            query = query.where(
                tuple_(reports.c.received_at, reports.c.agent_id, reports.c.seq)
                > tuple_(after.at, after.agent_id, after.seq)
            )
        with self._read() as conn:
            return [RawReport(*row) for row in conn.execute(query)]

    def add(
        self,
        stats: Mapping[RollupKey, Stat],
        name: str,
        was: Mark | None,
        now: Mark,
        *,
        duplicates: Collection[tuple[str, int]] = (),
        conflicts: Mapping[str, int] | None = None,
    ) -> bool:
        """Merge `stats` into the buckets and move mark `name` from `was` to `now`, in one
        transaction; False (nothing written) when the mark is no longer `was` (another pass
        got there first). `duplicates`: raw rows (agent, seq) of reports packed already,
        deleted with it; `conflicts`: how many of them per agent differed from the packed
        one (counted, and the agent marked, as the ingest does: a cloned machine)."""
        with self._write() as conn:
            if not self._move(conn, name, was, now):
                return False
            self._merge(conn, stats)
            for agent_id, seq in duplicates:
                conn.execute(
                    delete(reports).where(reports.c.agent_id == agent_id, reports.c.seq == seq)
                )
            for agent_id, n in (conflicts or {}).items():
                conn.execute(
                    update(agents)
                    .where(agents.c.agent_id == agent_id)
                    .values(
                        clone_suspected_at=func.coalesce(agents.c.clone_suspected_at, now.at),
                        seq_conflicts=agents.c.seq_conflicts + n,
                        snapshot_version=agents.c.snapshot_version + 1,
                    )
                )
        return True

    # ---- packed reports ------------------------------------------------------------------

    def pack_next(self, before: float, window: float, limit: int) -> int:
        """The raw reports of the oldest (agent, spool, arrival window) received before
        `before` (a multiple of `window`) packed into one block of at most `limit`, in one
        transaction; how many moved (0: nothing left to pack). Compressing happens before
        the transaction, which then checks that every row it packed is still there."""
        with self._read() as conn:
            oldest = conn.execute(
                select(reports.c.agent_id, reports.c.seq, reports.c.received_at)
                .where(reports.c.received_at < before)
                .order_by(reports.c.received_at, reports.c.agent_id, reports.c.seq)
                .limit(1)
            ).first()
            if oldest is None:
                return 0
            agent_id, seq, received = oldest
            start = received - received % window
            ordinal = seq >> SEQ_BITS
            rows = [
                PackedReport(*row)
                for row in conn.execute(
                    select(
                        reports.c.seq,
                        reports.c.boot_id,
                        reports.c.collected_at,
                        reports.c.received_at,
                        reports.c.wire,
                        reports.c.payload,
                    )
                    .where(
                        reports.c.agent_id == agent_id,
                        reports.c.seq >= stored_seq(ordinal, 0),
                        reports.c.seq < stored_seq(ordinal + 1, 0),
                        reports.c.received_at >= start,
                        reports.c.received_at < start + window,
                    )
                    .order_by(reports.c.seq)
                    .limit(limit)
                )
            ]
        data = pack(rows)
        seqs = [r.seq for r in rows]
        try:
            with self._write() as conn:
                gone = 0
                for i in range(0, len(seqs), 500):
                    result: Any = conn.execute(
                        delete(reports).where(
                            reports.c.agent_id == agent_id, reports.c.seq.in_(seqs[i : i + 500])
                        )
                    )
                    gone += int(result.rowcount)
                if gone != len(rows):
                    raise _Changed
                conn.execute(
                    insert(report_blocks).values(
                        agent_id=agent_id,
                        first_seq=seqs[0],
                        last_seq=seqs[-1],
                        count=len(rows),
                        first_received=min(r.received_at for r in rows),
                        last_received=max(r.received_at for r in rows),
                        data=data,
                    )
                )
        except _Changed:
            return 0
        return len(rows)

    def packed_tops(self, agent_ids: Collection[str]) -> dict[str, int]:
        """The highest packed seq of each of these agents that has a block."""
        with self._read() as conn:
            return {
                a: int(top)
                for a, top in conn.execute(
                    select(report_blocks.c.agent_id, func.max(report_blocks.c.last_seq))
                    .where(report_blocks.c.agent_id.in_(sorted(agent_ids)))
                    .group_by(report_blocks.c.agent_id)
                )
            }

    def packed(self, agent_id: str, seqs: Collection[int]) -> dict[int, PackedReport]:
        """The packed reports of one agent among `seqs` (the rare read: a raw row whose seq
        a block's range covers, a retry of a report packed already)."""
        if not seqs:
            return {}
        b = report_blocks.c
        with self._read() as conn:
            blocks = conn.execute(
                select(b.first_seq, b.data).where(
                    b.agent_id == agent_id, b.first_seq <= max(seqs), b.last_seq >= min(seqs)
                )
            ).all()
        wanted = set(seqs)
        found: dict[int, PackedReport] = {}
        for first_seq, data in blocks:
            for r in _unpacked(agent_id, first_seq, data):
                if r.seq in wanted:
                    found[r.seq] = r
        return found

    def history(self, agent_id: str) -> list[PackedReport]:
        """Every report stored for one agent, raw and packed, in seq order."""
        with self._read() as conn:
            raw = [
                PackedReport(*row)
                for row in conn.execute(
                    select(
                        reports.c.seq,
                        reports.c.boot_id,
                        reports.c.collected_at,
                        reports.c.received_at,
                        reports.c.wire,
                        reports.c.payload,
                    ).where(reports.c.agent_id == agent_id)
                )
            ]
            blocks = conn.execute(
                select(report_blocks.c.first_seq, report_blocks.c.data).where(
                    report_blocks.c.agent_id == agent_id
                )
            ).all()
        # Raw rows first, then blocks: a pack committed in between (PostgreSQL reads each
        # statement at its own time) shows a report twice, never not at all.
        by_seq = {r.seq: r for r in raw}
        for first_seq, data in blocks:
            by_seq.update((r.seq, r) for r in _unpacked(agent_id, first_seq, data))
        return [by_seq[seq] for seq in sorted(by_seq)]

    def compact(self, before: float, day_of: Callable[[float], float], limit: int) -> int:
        """Up to `limit` hourly buckets that start before `before` merged into their days and
        deleted, in one transaction; how many moved."""
        hourly = and_(rollups.c.span == HOUR, rollups.c.start < before)
        with self._write() as conn:
            rows = conn.execute(
                select(*_KEY, *_STAT).where(hourly).order_by(rollups.c.start).limit(limit)
            ).all()
            days: dict[RollupKey, Stat] = {}
            for _, start, agent_id, section, metric, *stat in rows:
                key = RollupKey(agent_id, DAY, day_of(start), section, metric)
                days[key] = days[key].merge(Stat(*stat)) if key in days else Stat(*stat)
            if rows:
                keys = [tuple(r[:5]) for r in rows]
                for i in range(0, len(keys), 100):
                    conn.execute(delete(rollups).where(tuple_(*_KEY).in_(keys[i : i + 100])))
                self._merge(conn, days)
        return len(rows)

    def expire(self, name: str, before: float, limit: int) -> int:
        """Up to `limit` rows of `name` (reports, rollups or one of HISTORY_TABLES) whose
        time is before `before` deleted, oldest first, in one transaction; how many went."""
        table, column, allowed = self._expiring(name)
        where = and_(column < before, allowed) if allowed is not None else column < before
        with self._write() as conn:
            # The time of the `limit`-th oldest row: deleting below it is a bounded DELETE on
            # both databases (neither has DELETE ... LIMIT in common).
            edge = conn.execute(
                select(column).where(where).order_by(column).offset(limit).limit(1)
            ).scalar()
            if edge is not None:
                first = conn.execute(select(func.min(column)).where(where)).scalar()
                # Rows that share one time (a batch's reports) go together.
                where = and_(where, column <= edge if edge == first else column < edge)
            result: Any = conn.execute(delete(table).where(where))
        return int(result.rowcount)

    def count_before(self, name: str, before: float) -> int:
        """Rows of `name` that `expire` would delete before `before` (`store prune --dry-run`)."""
        table, column, allowed = self._expiring(name)
        where = and_(column < before, allowed) if allowed is not None else column < before
        with self._read() as conn:
            return conn.execute(select(func.count()).select_from(table).where(where)).scalar() or 0

    def hourly_before(self, before: float) -> int:
        with self._read() as conn:
            return (
                conn.execute(
                    select(func.count())
                    .select_from(rollups)
                    .where(rollups.c.span == HOUR, rollups.c.start < before)
                ).scalar()
                or 0
            )

    def reports_pending(self, after: Mark | None, until: float) -> int:
        """Reports received before `until` not yet rolled up."""
        query = select(func.count()).select_from(reports).where(reports.c.received_at < until)
        if after is not None:
            query = query.where(
                tuple_(reports.c.received_at, reports.c.agent_id, reports.c.seq)
                > tuple_(after.at, after.agent_id, after.seq)
            )
        with self._read() as conn:
            return conn.execute(query).scalar() or 0

    def tables(self) -> list[TableStats]:
        """Every table of the schema: rows, oldest row, size (`store stats`)."""
        with self._read() as conn:
            sizes = self._sizes(conn)
            out = []
            for table in metadata.sorted_tables:
                rows = conn.execute(select(func.count()).select_from(table)).scalar() or 0
                column = _OLDEST.get(table.name)
                oldest = None if column is None else conn.execute(select(func.min(column))).scalar()
                out.append(TableStats(table.name, rows, oldest, sizes.get(table.name)))
        return sorted(out, key=lambda t: t.name)

    def packed_reports(self) -> int:
        """Reports kept in blocks (`store stats`: report_blocks counts blocks)."""
        with self._read() as conn:
            packed = conn.execute(select(func.sum(report_blocks.c.count))).scalar()
        return int(packed or 0)

    def database_bytes(self) -> int:
        """The whole database on disk (SQLite: the file without its WAL)."""
        with self._read() as conn:
            if self._db.dialect == "postgresql":
                sql = "SELECT pg_database_size(current_database())"
                return int(conn.exec_driver_sql(sql).scalar() or 0)
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar() or 0
            size = conn.exec_driver_sql("PRAGMA page_size").scalar() or 0
            return int(pages * size)

    def _sizes(self, conn: Connection) -> dict[str, int]:
        if self._db.dialect == "postgresql":
            return {
                t.name: int(
                    conn.exec_driver_sql(
                        "SELECT pg_total_relation_size(%(t)s::regclass)", {"t": t.name}
                    ).scalar()
                    or 0
                )
                for t in metadata.sorted_tables
            }
        try:  # dbstat: SQLite's page-level view (compiled into Debian's and Python's builds)
            rows = conn.exec_driver_sql(
                "SELECT m.tbl_name, SUM(d.pgsize) FROM dbstat d JOIN sqlite_master m "
                "ON m.name = d.name GROUP BY m.tbl_name"
            ).all()
        except SQLAlchemyError:
            return {}
        return {name: int(size) for name, size in rows}

    # ---- inside ------------------------------------------------------------------------

    @staticmethod
    def _expiring(name: str) -> tuple[Table, Any, Any]:
        if name == "reports":
            return reports, reports.c.received_at, None
        if name == "report_blocks":  # a block goes when its newest report is past the horizon
            return report_blocks, report_blocks.c.last_received, None
        if name == "rollups":
            return rollups, rollups.c.start, None
        return HISTORY_TABLES[name]

    @staticmethod
    def _move(conn: Connection, name: str, was: Mark | None, now: Mark) -> bool:
        values = {"at": now.at, "agent_id": now.agent_id, "seq": now.seq}
        if was is None:
            found = conn.execute(
                select(retention_marks.c.name).where(retention_marks.c.name == name)
            ).first()
            if found is not None:
                return False
            conn.execute(insert(retention_marks).values(name=name, **values))
            return True
        result: Any = conn.execute(
            update(retention_marks)
            .where(
                retention_marks.c.name == name,
                retention_marks.c.at == was.at,
                retention_marks.c.agent_id == was.agent_id,
                retention_marks.c.seq == was.seq,
            )
            .values(**values)
        )
        return bool(result.rowcount)

    def _merge(self, conn: Connection, stats: Mapping[RollupKey, Stat]) -> None:
        if not stats:
            return
        make = postgresql.insert if self._db.dialect == "postgresql" else sqlite.insert
        stmt = make(rollups)
        ex = stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=[c.name for c in _KEY],
            set_={
                "count": rollups.c.count + ex.count,
                "total": rollups.c.total + ex.total,
                "low": case((ex.low < rollups.c.low, ex.low), else_=rollups.c.low),
                "high": case((ex.high > rollups.c.high, ex.high), else_=rollups.c.high),
            },
        )
        conn.execute(
            stmt,
            [
                {
                    "span": k.span,
                    "start": k.start,
                    "agent_id": k.agent_id,
                    "section": k.section,
                    "metric": k.metric,
                    "count": s.count,
                    "total": s.total,
                    "low": s.low,
                    "high": s.high,
                }
                for k, s in stats.items()
            ],
        )
