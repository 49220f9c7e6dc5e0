"""Rollups and retention on real stores (SQLite and PostgreSQL): the stored buckets are the
rollup of the raw reports, expiry takes exactly what is past each horizon, and a collector
process killed mid-pass leaves nothing half-done."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, insert, select, text, tuple_, update

from collector.compliance.loader import load_pack
from collector.config import RetentionConfig
from collector.decode import stored_report
from collector.errors import StoreError
from collector.model import Placement, Report, RollupKey, Stat
from collector.retention import PACK_WINDOW, ROLL_LAG, RetentionPass
from collector.rollup import HOUR, add, expected, summarise
from collector.store import MachineFacts, Store
from collector.store.schema import (
    agents,
    alert_history,
    mail_outbox,
    notifications,
    report_blocks,
    reports,
    retention_marks,
    rollups,
    schema_version,
)
from tests.downgrade import TO_V8
from tests.integration.harness import Running, collector_config, start_collector, wait_until
from tests.integration.postgres import fresh_database

REPO = Path(__file__).resolve().parents[2]
RULES = load_pack(REPO / "rules" / "default.yaml").agent_rules()
PLACE = Placement("Cao Bằng", "Hạ Lang", "Đức Quang", "UBND", "workstation")
DAY = 86400.0
GIB = 1 << 30


def no_pause() -> Callable[[], None]:
    return lambda: None


def report(seq: int, at: float, cpu: float = 0.5, ram_gib: int = 8) -> Report:
    hardware = {"cpu": {"usage_ratio": cpu}, "memory": {"total_bytes": ram_gib * GIB}}
    return Report(seq, "b", at, "0.1.0", sections={"hardware": hardware})


def enroll(store: Store, n: int, now: float) -> list[str]:
    _, token = store.create_token(PLACE, ttl=1e9, now=now)
    return [
        store.enroll(
            token, MachineFacts(f"m{i}", f"pc-{i}", "Windows", "10", "0.1.0"), now
        ).agent.agent_id
        for i in range(n)
    ]


def retention(store: Store, cfg: RetentionConfig | None = None, chunk: int = 500) -> RetentionPass:
    return RetentionPass(
        store,
        cfg or RetentionConfig(),
        report_interval=60.0,
        reachable_within=180.0,
        rules=lambda: RULES,
        pace=no_pause,
        chunk=chunk,
    )


@pytest.fixture
def new_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """A new empty store per call, on the backend of the test's parameter."""
    if request.param == "sqlite":
        return lambda: f"sqlite:///{tmp_path / uuid.uuid4().hex}.db"
    server: str = request.getfixturevalue("postgres")
    return lambda: fresh_database(server)


BACKENDS = pytest.mark.parametrize("new_url", ["sqlite", "postgresql"], indirect=True)

# Per agent: (collected at, seconds from collection to delivery, cpu quarters, RAM GiB).
deliveries = st.lists(
    st.lists(
        st.tuples(
            st.integers(0, 4 * 3600),
            st.sampled_from([2.0, 40.0, 9000.0]),
            st.integers(0, 4),
            st.sampled_from([2, 8]),
        ),
        max_size=25,
    ),
    min_size=1,
    max_size=3,
)


@BACKENDS
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(deliveries, st.integers(1, 7))
def test_stored_rollups_are_the_rollup_of_the_raw_reports(
    new_url: Callable[[], str], drawn: list[list[tuple[int, float, int, int]]], chunk: int
) -> None:
    store = Store(new_url())
    try:
        t0 = 10 * DAY
        agent_ids = enroll(store, len(drawn), t0 - 1800)
        for agent_id, per_agent in zip(agent_ids, drawn, strict=True):
            for seq, (t, delay, cpu, ram) in enumerate(per_agent, start=1):
                r = report(seq, t0 + t, cpu / 4, ram)
                store.ingest(agent_id, [r], now=t0 + t + delay)
        raw = {a: [stored_report(*row) for row in store.history(a)] for a in agent_ids}
        arrival = {
            (r.agent_id, r.seq): r.received_at
            for r in store.rollups.reports_after(None, 1e18, 10_000)
        }
        now = t0 + 5 * 3600 + 9000 + 2 * ROLL_LAG
        # Small transactions: each holds a few reports, so buckets fill over many of them.
        done = retention(store, RetentionConfig(raw=30 * DAY), chunk).run(now)
        assert done.done.get("rolled up", 0) == sum(len(p) for p in drawn)
        for agent_id in agent_ids:
            agent = store.get_agent(agent_id)
            pairs = [(r, arrival[agent_id, r.seq]) for r in raw[agent_id]]
            want = summarise(agent, pairs, RULES, 60.0, 180.0)
            hour = t0 - 3600
            while hour + HOUR <= now - ROLL_LAG:
                if n := expected(agent, hour, 60.0):
                    add(
                        want,
                        RollupKey(agent_id, 3600, hour, "availability", "expected"),
                        Stat.of(n),
                    )
                hour += HOUR
            assert store.rollups.buckets(agent_id) == want
    finally:
        store.close()


@BACKENDS
def test_retention_removes_exactly_what_is_past_its_horizon(new_url: Callable[[], str]) -> None:
    store = Store(new_url())
    cfg = RetentionConfig(
        raw=30 * DAY, hourly=60 * DAY, rollups=120 * DAY, alert_history=90 * DAY,
        notifications=20 * DAY, mail=20 * DAY,
    )  # fmt: skip
    now = 200 * DAY
    [agent_id] = enroll(store, 1, 0.0)
    # A report every 6 hours for 200 days, delivered at once.
    times = [i * 6 * 3600.0 for i in range(1, 800)]
    for seq, t in enumerate(times, start=1):
        store.ingest(agent_id, [report(seq, t, cpu=(seq % 4) / 4)], now=t + 1)
    engine = create_engine(store.url)
    with engine.begin() as conn:
        for i, at in enumerate((50 * DAY, 109 * DAY, 111 * DAY, 199 * DAY)):
            conn.execute(
                insert(alert_history).values(
                    rule_id="r", subject=f"s{i}", event="firing", at=at, recorded_at=at
                )
            )
        for at, sent in ((100 * DAY, None), (101 * DAY, 101 * DAY), (190 * DAY, 190 * DAY)):
            conn.execute(
                insert(notifications).values(
                    created_at=at,
                    kind="firing",
                    rule_id="r",
                    subject="s",
                    severity="high",
                    payload="{}",
                    sent_at=sent,
                )
            )
        for at, state in ((100 * DAY, "pending"), (101 * DAY, "sent"), (190 * DAY, "failed")):
            conn.execute(
                insert(mail_outbox).values(
                    created_at=at,
                    recipient="it",
                    to_addrs="[]",
                    kind="alerts",
                    subject="",
                    text="",
                    html="",
                    state=state,
                    next_attempt_at=at,
                )
            )
    whole_before = {
        (r.section, r.metric): r.stat for r in store.rollups.totals(0, 1e18)
    }  # nothing rolled yet
    assert whole_before == {}
    pass_ = retention(store, cfg, chunk=97)
    planned = pass_.plan(now)
    assert planned["reports to roll up"] == len(times)
    done = pass_.run(now).done
    assert done["rolled up"] == len(times)
    # Raw: exactly those received in the last 30 days, packed but for the last window (one
    # report every 6 hours: a block each, so the blocks' horizon is exact too).
    kept = [r.received_at for r in store.rollups.history(agent_id)]
    assert kept == [t + 1 for t in times if t + 1 >= now - cfg.raw]
    assert planned["reports"] == len(times) - len(kept)
    assert planned["reports to pack"] == len(kept) - 1
    assert done["packed"] == len(kept) - 1
    with engine.connect() as conn:
        assert conn.execute(select(reports.c.received_at)).scalars().all() == [kept[-1]]
        history = sorted(r[0] for r in conn.execute(select(alert_history.c.at)))
        assert history == [111 * DAY, 199 * DAY]
        unsent = conn.execute(select(notifications.c.created_at)).scalars().all()
        assert sorted(unsent) == [100 * DAY, 190 * DAY]  # the unsent one stays, however old
        mail = conn.execute(select(mail_outbox.c.state)).scalars().all()
        assert sorted(mail) == ["failed", "pending"]
        spans = conn.execute(
            select(rollups.c.span, func.min(rollups.c.start), func.max(rollups.c.start))
            .where(rollups.c.metric == "received")
            .group_by(rollups.c.span)
            .order_by(rollups.c.span)
        ).all()
    engine.dispose()
    # Rollups: none starting before 120 days ago; days up to 60 days ago, hours after.
    (hour_span, first_hour, _), (day_span, first_day, last_day) = spans
    assert (hour_span, day_span) == (3600, 86400)
    assert now - cfg.rollups <= first_day < now - cfg.rollups + DAY
    assert last_day < now - cfg.hourly <= first_hour + DAY
    # What the rollups say of the kept period is what the raw reports were.
    kept_from = first_day
    rolled = [t for t in times if t >= kept_from]
    received = {
        (r.section, r.metric): r.stat for r in store.rollups.totals(kept_from, 1e18, [agent_id])
    }
    assert received["availability", "received"].count == len(rolled)
    assert received["hardware", "cpu.usage_ratio"].total == sum(
        (i % 4) / 4 for i, t in enumerate(times, start=1) if t >= kept_from
    )
    assert received["rule", "hardware.min-ram"].mean == 1.0
    # A second pass finds nothing to do.
    assert pass_.run(now).done == {}
    store.close()


@BACKENDS
def test_a_schema_8_store_gains_rollups_and_rolls_up_its_old_reports(
    new_url: Callable[[], str],
) -> None:
    url = new_url()
    store = Store(url)
    [agent_id] = enroll(store, 1, 0.0)
    store.ingest(agent_id, [report(1, 100.0), report(2, 200.0)], now=300.0)
    store.close()
    engine = create_engine(url)
    with engine.begin() as conn:  # back to what schema 8 was
        for statement in TO_V8:
            conn.execute(text(statement))
        conn.execute(update(schema_version).values(version=8))
    engine.dispose()
    store = Store(url)
    try:
        retention(store).run(3 * DAY)
        buckets = store.rollups.buckets(agent_id)
        assert buckets[RollupKey(agent_id, 3600, 0.0, "availability", "received")].count == 2
        assert len(store.history(agent_id)) == 2  # received 3 days ago: raw is kept 30
    finally:
        store.close()


def _rolled_state(url: str) -> tuple[int, int, int]:
    """(reports received in the rollups, raw reports not yet rolled up, raw reports kept)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            counted = conn.execute(
                select(func.coalesce(func.sum(rollups.c.count), 0)).where(
                    rollups.c.metric == "received"
                )
            ).scalar()
            mark = conn.execute(
                select(retention_marks).where(retention_marks.c.name == "rolled")
            ).first()
            after = select(func.count()).select_from(reports)
            if mark is not None:
                after = after.where(
                    tuple_(reports.c.received_at, reports.c.agent_id, reports.c.seq)
                    > tuple_(mark.at, mark.agent_id, mark.seq)
                )
            pending = conn.execute(after).scalar()
            kept = conn.execute(select(func.count()).select_from(reports)).scalar()
    finally:
        engine.dispose()
    return int(counted or 0), int(pending or 0), int(kept or 0)


def test_a_collector_killed_mid_pass_leaves_nothing_half_done_and_a_rerun_completes(
    store_url: str, tmp_path: Path
) -> None:
    now = time.time()
    store = Store(store_url)
    agent_ids = enroll(store, 20, now - 45 * DAY)
    old, recent = 300, 5
    for agent_id in agent_ids:
        # A month-old backlog delivered 40 days ago, and a few reports of the last hour.
        start = now - 41 * DAY
        batch = [report(s, start + 60 * s) for s in range(1, old + 1)]
        store.ingest(agent_id, batch, now=now - 40 * DAY)
        store.ingest(
            agent_id, [report(old + s, now - 3600 + s) for s in range(1, recent + 1)], now - 3000
        )
    store.close()
    total = len(agent_ids) * (old + recent)
    config = tmp_path / "collector.yaml"
    config.write_text(f"store:\n  url: {store_url}\nrules:\n  path: {REPO / 'rules'}\n")
    cli = [str(Path(sys.executable).parent / "canhgac-collector"), "--config", str(config)]
    pruning = subprocess.Popen([*cli, "store", "prune"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        # Killed as soon as its first transaction is in: mid-way through rolling up.
        while _rolled_state(store_url)[1] in (0, total) and time.monotonic() < deadline:
            assert pruning.poll() is None, pruning.stderr.read() if pruning.stderr else ""
            time.sleep(0.005)
        assert pruning.poll() is None, "the pass ended before it could be killed"
        pruning.send_signal(signal.SIGKILL)
    finally:
        pruning.wait(timeout=30)
        if pruning.stderr:
            pruning.stderr.close()
    counted, pending, _ = _rolled_state(store_url)
    assert 0 < pending < total  # stopped mid-way
    # Every report is rolled up exactly once or still waiting: none counted twice, none
    # deleted before it was counted.
    assert counted == total - pending
    rerun = subprocess.run(
        [*cli, "store", "prune"], check=False, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr
    assert _rolled_state(store_url) == (total, 0, len(agent_ids) * recent)


def test_a_sqlite_file_stops_growing_at_steady_state_and_gives_back_freed_pages(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    store = Store(f"sqlite:///{path}")
    cfg = RetentionConfig(raw=3 * DAY, hourly=2 * DAY, rollups=6 * DAY)
    agent_ids = enroll(store, 8, 0.0)
    pass_ = retention(store, cfg)
    engine = create_engine(store.url)
    sizes: list[int] = []
    seq = 0
    for day in range(14):
        for hour in range(24):  # every agent reports each 10 minutes, delivered hourly
            at = day * DAY + hour * 3600.0
            batch = [report(seq + i, at + 600 * i, cpu=(i % 7) / 8) for i in range(1, 7)]
            seq += 6
            for agent_id in agent_ids:
                store.ingest(agent_id, batch, now=at + 3600)
        pass_.run((day + 1) * DAY)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA freelist_count").scalar() == 0
        sizes.append(store.rollups.database_bytes())
    engine.dispose()
    store.close()
    # Raw data stops growing after 3 days, hourly rollups after 2, daily ones after 6: from
    # then on each day frees what it adds, and the file holds its size.
    steady = sizes[8]
    assert max(sizes[8:]) <= steady * 1.05, sizes
    assert sizes[8] > sizes[1]  # it did grow until the horizons were reached


def test_a_running_collector_rolls_up_and_expires_on_its_timer(tmp_path: Path) -> None:
    db = tmp_path / "collector.db"
    now = time.time()
    store = Store(f"sqlite:///{db}")
    [agent_id] = enroll(store, 1, now - 40 * DAY)
    store.ingest(agent_id, [report(1, now - 35 * DAY)], now=now - 35 * DAY)  # past raw
    store.ingest(agent_id, [report(2, now - 600)], now=now - 590)
    store.close()
    cfg = collector_config(db, rules={"path": str(REPO / "rules")}, retention={"every": "1s"})
    running = start_collector(cfg)
    try:
        wait_until(
            lambda: store_seqs(running) == [2] and rolled(running) == 2, 60, "the timer's pass"
        )
        buckets = running.app.store.rollups.buckets(agent_id)
        assert sum(s.count for k, s in buckets.items() if k.metric == "hardware.min-ram") == 2
    finally:
        running.app.stop(grace=0)


def store_seqs(running: Running) -> list[int]:
    return [s & ((1 << 40) - 1) for s in running.app.store.report_seqs(running_agent(running))]


def running_agent(running: Running) -> str:
    return running.app.store.list_agents()[0].agent_id


def rolled(running: Running) -> int:
    totals = running.app.store.rollups.totals(0, 1e18)
    return sum(r.stat.count for r in totals if r.metric == "received")


def test_a_sqlite_file_without_auto_vacuum_is_converted_once_keeping_its_data(
    tmp_path: Path,
) -> None:
    import sqlite3  # noqa: PLC0415

    path = tmp_path / "old.db"
    store = Store(f"sqlite:///{path}")
    [agent_id] = enroll(store, 1, 0.0)
    store.ingest(agent_id, [report(1, 100.0)], now=101.0)
    store.close()
    with sqlite3.connect(path) as raw:  # as a file made before schema 9 was
        raw.execute("PRAGMA auto_vacuum=NONE")
        raw.execute("VACUUM")
        assert raw.execute("PRAGMA auto_vacuum").fetchone() == (0,)
    store = Store(f"sqlite:///{path}")
    try:
        assert len(store.history(agent_id)) == 1
    finally:
        store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA auto_vacuum").fetchone() == (2,)  # incremental


@BACKENDS
def test_packed_reports_read_back_as_they_were_and_a_retry_of_one_is_rolled_up_once(
    new_url: Callable[[], str],
) -> None:
    """Raw reports past `retention.pack` move into blocks (one per agent, spool and window)
    and read back byte for byte; a report sent again after its twin was packed (an ack lost
    on a link that stayed down) is stored raw by the ingest, then found in the blocks by the
    roll step: deleted, not counted twice; one with other content marks a clone."""
    url = new_url()
    store = Store(url)
    t0 = 40 * PACK_WINDOW
    a, b = enroll(store, 2, t0 - 60)
    # 30 hours of a report a minute for `a`, in batches of 10; `b` a few, then a new spool.
    for first in range(1, 1801, 10):
        batch = [report(s, t0 + 60 * s, cpu=(s % 4) / 4) for s in range(first, first + 10)]
        store.ingest(a, batch, now=t0 + 60 * (first + 9) + 5)
    store.ingest(b, [report(s, t0 + 60 * s) for s in (1, 2, 3)], now=t0 + 200)
    second_spool = [replace(report(s, t0 + 300 + s), spool_id=7) for s in (1, 2)]
    store.ingest(b, second_spool, now=t0 + 400)
    before = {x: store.rollups.history(x) for x in (a, b)}
    spools_before = {x: store.spools(x) for x in (a, b)}
    now = t0 + 60 * 1800 + 4 * 3600
    pass_ = retention(store, RetentionConfig(raw=30 * DAY, pack=3600.0))
    done = pass_.run(now).done
    assert done["rolled up"] == 1800 + 5
    edge = now - 3600 - (now - 3600) % PACK_WINDOW
    packable = [r for x in (a, b) for r in before[x] if r.received_at < edge]
    assert done["packed"] == len(packable) > 1500
    assert {x: store.rollups.history(x) for x in (a, b)} == before
    assert {x: store.spools(x) for x in (a, b)} == spools_before
    engine = create_engine(url)
    with engine.connect() as conn:
        blocks = conn.execute(
            select(report_blocks.c.agent_id, report_blocks.c.first_seq, report_blocks.c.count)
        ).all()
        raw_left = conn.execute(select(func.count()).select_from(reports)).scalar_one()
    assert raw_left == 1805 - len(packable)
    # `b`: one block per spool, though both fall in one window.
    assert sorted((f >> 40, n) for x, f, n in blocks if x == b) == [(0, 3), (1, 2)]
    windows = {int(r.received_at // PACK_WINDOW) for r in before[a] if r.received_at < edge}
    assert len([1 for x, _, _ in blocks if x == a]) == len(windows) == 5
    rolled = store.rollups.buckets(a)

    # The ack of reports 5 and 6 was lost; the agent sends them again a day later, with a
    # third report whose seq 7 is packed already but whose content differs (a clone).
    late = now + DAY
    store.ingest(a, [report(5, t0 + 300), report(6, t0 + 360), report(7, t0 + 1)], now=late)
    assert len(store.rollups.history(a)) == 1800  # one copy each in the history...
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(reports)).scalar() == raw_left + 3
    again = pass_.run(late + 2 * ROLL_LAG).done
    assert again.get("rolled up", 0) == 0  # ... and in the rollups
    assert again["dropped: packed already"] == 3
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(reports)).scalar_one() <= raw_left
        conflicts = conn.execute(
            select(agents.c.seq_conflicts).where(agents.c.agent_id == a)
        ).scalar()
    engine.dispose()
    assert conflicts == 1
    assert store.get_agent(a).clone_suspected_at is not None
    kept = {k: v for k, v in store.rollups.buckets(a).items() if k.start < t0 + 60 * 1800}
    assert kept == {k: v for k, v in rolled.items() if k.start < t0 + 60 * 1800}
    assert [r.seq for r in store.rollups.history(a)] == list(range(1, 1801))
    store.close()


def test_a_damaged_block_is_named_when_read(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    [agent_id] = enroll(store, 1, 0.0)
    store.ingest(agent_id, [report(s, 100.0 * s) for s in (1, 2)], now=300.0)
    retention(store, RetentionConfig(pack=3600.0)).run(2 * DAY)
    engine = create_engine(store.url)
    with engine.begin() as conn:
        data = conn.execute(select(report_blocks.c.data)).scalar_one()
        broken = data[:20] + bytes([data[20] ^ 1]) + data[21:]
        conn.execute(update(report_blocks).values(data=broken))
    engine.dispose()
    with pytest.raises(StoreError, match=rf"report block \({agent_id}, 1\) unreadable"):
        store.history(agent_id)
    store.close()
