"""Alert lifecycle properties (Hypothesis) and the store migration from schema 1."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect

from collector.alerts.lifecycle import expire, observe
from collector.decode import stored_report
from collector.model import Alert, Labels
from collector.store import AlertWrite, Store
from collector.store.alerts import HistoryEntry
from collector.store.schema import SCHEMA_VERSION
from tests.downgrade import TO_V6

LABELS = Labels("hardware.disk-free", "agent-1", "medium")

steps = st.lists(
    st.tuples(st.floats(min_value=-30, max_value=600), st.booleans()), min_size=1, max_size=60
)


@settings(max_examples=300, deadline=None)
@given(steps, st.sampled_from([0.0, 60.0, 300.0]), st.sampled_from([0.0, 120.0]))
def test_one_alert_per_key_and_resolved_follows_firing(
    seq: list[tuple[float, bool]], for_s: float, hold_s: float
) -> None:
    alert: Alert | None = None
    t = 0.0
    events: list[str] = []
    for dt, ok in seq:
        t += dt  # negative steps are late (replayed) observations
        alert, evs = observe(alert, LABELS, ok, t, for_seconds=for_s, hold_seconds=hold_s)
        if alert is not None:
            alert, more = expire(alert, t, hold_s)
            evs += more
        events += [e for e, _ in evs]
        assert alert is None or alert.key == (LABELS.rule_id, LABELS.subject)
    firing = [e for e in events if e in ("firing", "resolved")]
    # Alternating firing/resolved, starting with firing: never two firing at once.
    assert all(e == ("firing" if i % 2 == 0 else "resolved") for i, e in enumerate(firing))
    open_firing = firing.count("firing") - firing.count("resolved")
    assert open_firing == (1 if alert is not None and alert.state == "firing" else 0)


def test_flap_within_hold_stays_one_alert() -> None:
    a, ev = observe(None, LABELS, False, 0.0, for_seconds=0.0, hold_seconds=300.0)
    assert [e for e, _ in ev] == ["firing"]
    a, ev = observe(a, LABELS, True, 10.0, for_seconds=0.0, hold_seconds=300.0)
    a, ev2 = observe(a, LABELS, False, 20.0, for_seconds=0.0, hold_seconds=300.0)
    assert (ev, ev2) == ([], []) and a is not None and a.failing
    a, _ = observe(a, LABELS, True, 30.0, for_seconds=0.0, hold_seconds=300.0)
    assert a is not None
    a, ev = observe(a, LABELS, True, 330.0, for_seconds=0.0, hold_seconds=300.0)
    assert a is None and ev == [("resolved", 30.0)]


def test_late_observation_is_ignored() -> None:
    a, _ = observe(None, LABELS, False, 100.0, for_seconds=0.0, hold_seconds=0.0)
    same, ev = observe(a, LABELS, True, 50.0, for_seconds=0.0, hold_seconds=0.0)
    assert same is a and ev == []


@given(st.lists(st.tuples(st.integers(0, 6), st.sampled_from("udhnr")), max_size=40))
def test_a_split_write_keeps_each_keys_changes_together_and_in_order(
    changes: list[tuple[int, str]],
) -> None:
    w = AlertWrite(now=5.0)
    for step, (subject, kind) in enumerate(changes):
        labels = Labels("r", f"agent-{subject}", "medium")
        if kind == "u":
            w.upserts[labels.rule_id, labels.subject] = Alert(labels, "pending", step, step)
        elif kind == "d":
            w.deletes.append((labels.rule_id, labels.subject))
        elif kind == "h":
            w.history.append(HistoryEntry(labels, "firing", step, 0.0, 5.0))
        elif kind == "n":
            w.notify.append(("firing", labels, {"step": step}))
        else:
            w.results.append((labels, step % 2 == 0, step))
    parts = w.split(3)
    assert all(p.now == 5.0 for p in parts)

    def subjects(p: AlertWrite) -> set[str]:
        return (
            {s for _, s in p.deletes}
            | {s for _, s in p.upserts}
            | {h.labels.subject for h in p.history}
            | {n[1].subject for n in p.notify}
            | {r[0].subject for r in p.results}
        )

    each = [subjects(p) for p in parts]
    assert all(0 < len(s) <= 3 for s in each)
    assert sum(map(len, each)) == len(subjects(w))  # a key's changes are in one part only
    # Joined back in order, the parts are the write.
    assert [k for p in parts for k in p.deletes] == sorted(w.deletes, key=_first(each))
    assert {k: a for p in parts for k, a in p.upserts.items()} == w.upserts
    for field in ("history", "notify", "results"):
        joined = [x for p in parts for x in getattr(p, field)]
        assert sorted(joined, key=repr) == sorted(getattr(w, field), key=repr)
        for p in parts:  # each part keeps the write's order
            mine = getattr(p, field)
            assert mine == [x for x in getattr(w, field) if x in mine]


def _first(each: list[set[str]]) -> Callable[[tuple[str, str]], int]:
    """The part a key went to: the sort key that orders keys as the parts do."""
    return lambda key: next(i for i, s in enumerate(each) if key[1] in s)


def test_version_1_store_file_migrates_to_current(tmp_path: Path) -> None:
    db = tmp_path / "v1.db"
    dump = (Path(__file__).parent.parent / "fixtures" / "store" / "schema_v1.sql").read_text()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executescript(dump)
    store = Store(f"sqlite:///{db}")
    try:
        tables = set(inspect(store._engine).get_table_names())
        assert {"alerts", "alert_history", "silences", "notifications", "rule_results"} <= tables
        assert {"mail_queue", "mail_outbox"} <= tables
        assert "software_inventories" in tables  # schema 10
        assert "settings_layers" in tables  # schema 12
        assert "report_blocks" in tables  # schema 15
        (agent,) = store.list_agents()
        assert (agent.hostname, agent.last_seq) == ("ubnd-thanhnhat-01", 1)
        assert (agent.retired_at, agent.retired_reason) == (None, "")  # schema 13
        assert store.snapshot(agent.agent_id)["hardware"]["memory"]["total_bytes"] == 8589934592
        # A schema-1 row: JSON, still readable.
        (kept,) = (stored_report(*row) for row in store.history(agent.agent_id))
        assert (kept.seq, kept.sections["hardware"]["memory"]["total_bytes"]) == (1, 8589934592)
        # Its reports are its first spool's (id 0, what agents older than spool ids send).
        assert [
            (s["spool_id"], s["ordinal"], s["reports"]) for s in store.spools(agent.agent_id)
        ] == [(0, 0, 1)]
    finally:
        store.close()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    assert SCHEMA_VERSION == 15


def test_version_2_store_migrates_keeping_the_outbox(tmp_path: Path) -> None:
    db = tmp_path / "v2.db"
    store = Store(f"sqlite:///{db}")
    store.alerts.apply_alerts(AlertWrite(notify=[("firing", LABELS, {"rule": "r"})], now=5.0))
    store.close()
    with contextlib.closing(sqlite3.connect(db)) as conn:  # back to what schema 2 was
        conn.executescript(
            "".join(f"{statement};" for statement in TO_V6)
            + "DROP TABLE mail_queue; DROP TABLE mail_outbox;"
            "ALTER TABLE reports DROP COLUMN wire; ALTER TABLE agents DROP COLUMN snapshot_version;"
            "UPDATE schema_version SET version = 2;"
        )
    store = Store(f"sqlite:///{db}")
    try:
        assert {"mail_queue", "mail_outbox"} <= set(inspect(store._engine).get_table_names())
        (n,) = store.alerts.unsent_notifications()
        assert (n.kind, n.payload) == ("firing", {"rule": "r"})
        assert store.mail.enqueue_mail(
            "it", ["a@b"], "test", subject="s", text="t", html="h", now=6.0
        )
        assert [m.state for m in store.mail.outbox()] == ["pending"]
    finally:
        store.close()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
