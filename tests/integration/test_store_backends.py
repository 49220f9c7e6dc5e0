"""The store's contract, run on SQLite (the embedded default) and on a real PostgreSQL."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text, update

from canhgac_proto.v1 import collector_pb2 as pb
from collector.config import CollectorConfig
from collector.decode import decode_report, stored_report
from collector.errors import AuthError, InvalidRequest, NotFoundError, StoreError
from collector.model import Placement, Report
from collector.store import MachineFacts, Store
from collector.store.schema import SCHEMA_VERSION, schema_version
from collector.store.settings import StaleLayer
from tests.downgrade import TO_V6
from tests.integration.harness import start_collector
from tests.integration.postgres import fresh_database

PLACE = Placement("Cao Bằng", "Hạ Lang", "Đức Quang", "", "workstation")
FACTS = MachineFacts("machine-1", "ubnd-ducquang-01", "Windows", "10.0.19045", "0.1.0")


def report(seq: int, at: float, cpu: float = 0.5) -> Report:
    return Report(
        seq=seq,
        boot_id="b",
        collected_at=at,
        agent_version="0.1.0",
        sections={"hardware": {"cpu": {"usage_ratio": cpu}}},
        errors=[{"probe": "antivirus", "message": "ProbeFailed: WMI timeout"}],
        spool={"dropped_total": 2, "depth": 0},
    )


@pytest.fixture
def store(store_url: str) -> Store:
    return Store(store_url)


def test_token_enroll_authenticate_and_reenroll(store: Store) -> None:
    record, token = store.create_token(PLACE, ttl=3600, now=1000.0, max_uses=3, note="test")
    first = store.enroll(token, FACTS, now=1001.0)
    assert first.agent.placement == PLACE
    assert not first.reenrolled and first.agent.clone_of is None
    assert store.authenticate(first.credential).agent_id == first.agent.agent_id
    second = store.enroll(token, FACTS, now=1002.0, previous_credential=first.credential)
    assert second.reenrolled and second.agent.agent_id == first.agent.agent_id
    assert second.proof == "credential"
    with pytest.raises(AuthError, match="unknown credential"):
        store.authenticate(first.credential)  # replaced by the re-enrollment
    # The machine id alone proves nothing: a new agent, flagged, and the first keeps working.
    third = store.enroll(token, FACTS, now=1003.0, previous_credential=first.credential)
    assert not third.reenrolled and third.agent.clone_of == first.agent.agent_id
    assert store.authenticate(second.credential).agent_id == first.agent.agent_id
    with pytest.raises(AuthError, match="used 3 times"):
        store.enroll(token, MachineFacts("machine-2", "h", "W", "10", "0.1.0"), now=1004.0)
    tokens = store.list_tokens()
    assert [(t.token_id, t.uses, t.note) for t in tokens] == [(record.token_id, 3, "test")]
    # The list is built from plain tuples, the single read from a Row: the same records.
    assert sorted(store.list_agents(), key=lambda a: a.enrolled_at) == [
        store.get_agent(first.agent.agent_id),
        store.get_agent(third.agent.agent_id),
    ]
    # Revoking the original settles the question: the other is no longer a suspect.
    store.revoke_agent(first.agent.agent_id, now=1005.0)
    assert store.get_agent(third.agent.agent_id).clone_of is None


def test_expired_and_revoked_tokens_and_agents(store: Store) -> None:
    _, old = store.create_token(PLACE, ttl=10, now=0.0)
    with pytest.raises(AuthError, match="expired"):
        store.enroll(old, FACTS, now=11.0)
    record, token = store.create_token(PLACE, ttl=100, now=0.0)
    store.revoke_token(record.token_id, now=1.0)
    with pytest.raises(AuthError, match="revoked"):
        store.enroll(token, FACTS, now=2.0)
    with pytest.raises(NotFoundError):
        store.revoke_token(record.token_id, now=3.0)
    _, token = store.create_token(PLACE, ttl=100, now=0.0)
    e = store.enroll(token, FACTS, now=1.0)
    store.revoke_agent(e.agent.agent_id, now=2.0)
    with pytest.raises(AuthError, match="revoked"):
        store.authenticate(e.credential)
    again = store.enroll(token, FACTS, now=3.0)
    assert again.agent.agent_id != e.agent.agent_id  # the revoked record stays as it was
    assert store.get_agent(e.agent.agent_id).revoked_at == 2.0


def test_retired_agents_are_refused_as_retired_and_kept(store: Store) -> None:
    """`agent retire`: refused with its own reason word, revoked too (every read of active
    agents leaves it out), kept with when and why; a revoked agent retired later keeps the
    time it was revoked; retiring twice is refused."""
    _, token = store.create_token(PLACE, ttl=100, now=0.0, max_uses=3)
    a = store.enroll(token, FACTS, now=1.0)
    b = store.enroll(token, MachineFacts("machine-2", "h2", "W", "10", "0.1.0"), now=1.0)
    assert store.authenticate(a.credential).retired_at is None
    with pytest.raises(AuthError, match="revoked") as revoked:
        store.revoke_agent(b.agent.agent_id, now=2.0)
        store.authenticate(b.credential)
    assert revoked.value.reason == "revoked"
    done = store.retire_agent(a.agent.agent_id, now=3.0, reason="thanh lý, máy hỏng")
    assert (done.retired_at, done.revoked_at, done.retired_reason) == (
        3.0,
        3.0,
        "thanh lý, máy hỏng",
    )
    with pytest.raises(AuthError, match=r"retired at .*thanh lý, máy hỏng") as retired:
        store.authenticate(a.credential)
    assert retired.value.reason == "retired"
    later = store.retire_agent(b.agent.agent_id, now=4.0)
    assert (later.revoked_at, later.retired_at, later.retired_reason) == (2.0, 4.0, "")
    with pytest.raises(NotFoundError, match="already retired"):
        store.retire_agent(a.agent.agent_id, now=5.0)
    with pytest.raises(NotFoundError, match="no agent"):
        store.retire_agent("nobody", now=5.0)
    listed = {x.agent_id: x for x in store.list_agents()}
    assert listed[a.agent.agent_id] == store.get_agent(a.agent.agent_id) == done
    with pytest.raises(AuthError, match="unknown credential") as unknown:
        store.authenticate(a.agent.agent_id + ".not-the-secret")
    assert unknown.value.reason == "unknown"


def test_ingest_is_exactly_once_and_late_data_never_overwrites_newer(store: Store) -> None:
    _, token = store.create_token(PLACE, ttl=100, now=0.0)
    agent_id = store.enroll(token, FACTS, now=1.0).agent.agent_id
    assert store.ingest(agent_id, [report(1, 10.0), report(3, 30.0, cpu=0.9)], now=31.0) == (
        [1, 3],
        2,
    )
    # A replayed backlog: seq 2 arrives late, seq 3 again.
    assert store.ingest(agent_id, [report(2, 20.0, cpu=0.1), report(3, 30.0)], now=40.0) == (
        [2, 3],
        1,
    )
    assert store.report_seqs(agent_id) == [1, 2, 3]
    snap = store.snapshot(agent_id)
    assert snap["hardware"]["cpu"]["usage_ratio"] == 0.9  # seq 3 stays the newest
    assert snap["status:antivirus"] == {"ok": False, "error": "ProbeFailed: WMI timeout"}
    assert snap["status:hardware"] == {"ok": True, "error": ""}
    agent = store.get_agent(agent_id)
    assert (agent.last_seq, agent.last_report_at, agent.last_seen_at) == (3, 30.0, 40.0)
    [(fleet_agent, fleet_snap)] = store.fleet()
    assert fleet_agent.agent_id == agent_id and fleet_snap == snap


def test_concurrent_duplicate_deliveries_store_each_seq_once(store: Store) -> None:
    _, token = store.create_token(PLACE, ttl=100, now=0.0)
    agent_id = store.enroll(token, FACTS, now=1.0).agent.agent_id
    batch = [report(s, float(s)) for s in range(1, 21)]
    new_counts: list[int] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            new_counts.append(store.ingest(agent_id, batch, now=100.0)[1])
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sum(new_counts) == 20
    assert store.report_seqs(agent_id) == list(range(1, 21))


def test_poison_job_fails_alone_in_the_group_commit(store: Store) -> None:
    # A report that fails inside the shared transaction (a section nothing can write as JSON,
    # straight into ingest): the group's transaction fails, and each job is tried again alone.
    _, token = store.create_token(PLACE, ttl=100, now=0.0)
    agents = [
        store.enroll(token, dataclasses.replace(FACTS, machine_id=f"m{i}"), now=1.0).agent.agent_id
        for i in range(9)
    ]
    poisoner, others = agents[0], agents[1:]
    barrier = threading.Barrier(len(agents))
    outcomes: dict[str, list[object]] = {a: [] for a in agents}

    def deliver(agent_id: str) -> None:
        batch = [report(1, 10.0)]
        if agent_id == poisoner:
            batch = [dataclasses.replace(batch[0], sections={"hardware": {"cpu": {1, 2}}})]
        barrier.wait()
        for _ in range(20):  # rounds enough that some groups hold the poison and others
            try:
                outcomes[agent_id].append(store.ingest(agent_id, batch, now=20.0))
            except StoreError as e:
                outcomes[agent_id].append(e)

    threads = [threading.Thread(target=deliver, args=(a,)) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(isinstance(o, StoreError) for o in outcomes[poisoner])
    # Every round of every other agent acked: stored once, then acked again as a duplicate.
    assert all(outcomes[a] == [([1], 1)] + [([1], 0)] * 19 for a in others)
    assert all(store.report_seqs(a) == [1] for a in others)
    assert store.report_seqs(poisoner) == []
    with pytest.raises(InvalidRequest, match="outside"):  # and a seq past the key's 40 bits
        store.ingest(poisoner, [report(2**40, 10.0)], now=20.0)


def test_many_concurrent_callers_each_get_their_own_durable_answer(store: Store) -> None:
    # Group commit hands the lead from caller to caller: none may be left waiting.
    _, token = store.create_token(PLACE, ttl=100, now=0.0)
    ids = [
        store.enroll(
            token, MachineFacts(f"m-{i}", f"h-{i}", "W", "10", "0.1.0"), 1.0
        ).agent.agent_id
        for i in range(12)
    ]
    answers: dict[str, list[tuple[list[int], int]]] = {a: [] for a in ids}
    errors: list[BaseException] = []

    def deliver(agent_id: str) -> None:
        try:
            for seq in range(1, 11):
                answers[agent_id].append(store.ingest(agent_id, [report(seq, float(seq))], 50.0))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=deliver, args=(a,)) for a in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert not errors
    for agent_id in ids:
        assert answers[agent_id] == [([seq], 1) for seq in range(1, 11)]
        assert store.report_seqs(agent_id) == list(range(1, 11))
        assert store.get_agent(agent_id).last_seq == 10


def test_snapshot_keeps_nan_infinity_and_text_that_says_null(store: Store) -> None:
    _, token = store.create_token(PLACE, ttl=100, now=0.0)
    agent_id = store.enroll(token, FACTS, now=1.0).agent.agent_id
    odd = {"cpu": {"usage_ratio": float("nan"), "load1": float("inf")}, "host": "null"}
    plain = {"cpu": {"usage_ratio": 0.5}, "model": "nullable"}
    store.ingest(agent_id, [dataclasses.replace(report(1, 1.0), sections={"hardware": odd})], 2.0)
    store.ingest(agent_id, [dataclasses.replace(report(2, 2.0), sections={"link": plain})], 3.0)
    reads = (store.scrape.fleet_sections([agent_id], scan) for scan in (False, True))
    for snap in (store.snapshot(agent_id), *(found[agent_id] for found in reads)):
        assert math.isnan(snap["hardware"]["cpu"]["usage_ratio"])
        assert snap["hardware"]["cpu"]["load1"] == float("inf")
        assert snap["hardware"]["host"] == "null"
        assert snap["link"] == plain


def test_the_ack_path_recovers_when_the_database_drops_its_connections(postgres: str) -> None:
    # What a PostgreSQL restart does to the connections the store keeps for the ack path.
    store = Store(fresh_database(postgres))
    _, token = store.create_token(PLACE, ttl=100, now=0.0)
    e = store.enroll(token, FACTS, now=1.0)
    assert store.ingest(e.agent.agent_id, [report(1, 1.0)], 2.0) == ([1], 1)
    killer = create_engine(store.url)
    with killer.begin() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar()
    killer.dispose()
    assert killed
    failures = 0
    for seq in range(2, 5):
        try:
            assert store.authenticate(e.credential).agent_id == e.agent.agent_id
            assert store.ingest(e.agent.agent_id, [report(seq, float(seq))], 9.0)[0] == [seq]
        except StoreError:
            failures += 1  # the call that finds its connection dead; the agent retries it
    assert failures <= 2
    assert store.authenticate(e.credential).agent_id == e.agent.agent_id
    assert store.ingest(e.agent.agent_id, [report(9, 9.0)], 9.0) == ([9], 1)
    store.close()


def test_a_store_from_a_newer_version_is_refused(store_url: str) -> None:
    Store(store_url).close()
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(update(schema_version).values(version=SCHEMA_VERSION + 1))
    engine.dispose()
    with pytest.raises(StoreError, match="newer than this collector"):
        Store(store_url)


def test_reopening_keeps_everything(store_url: str) -> None:
    store = Store(store_url)
    _, token = store.create_token(PLACE, ttl=100, now=0.0)
    e = store.enroll(token, FACTS, now=1.0)
    store.ingest(e.agent.agent_id, [report(1, 5.0)], now=6.0)
    store.close()
    again = Store(store_url)
    assert again.authenticate(e.credential).agent_id == e.agent.agent_id
    assert again.report_seqs(e.agent.agent_id) == [1]


def test_history_keeps_reports_as_received_and_reads_older_json_rows(store_url: str) -> None:
    store = Store(store_url)
    _, token = store.create_token(PLACE, ttl=100, now=0.0)
    agent_id = store.enroll(token, FACTS, now=1.0).agent.agent_id
    store.ingest(agent_id, [report(1, 10.0)], now=11.0)  # kept as JSON, as before schema 5
    store.close()
    engine = create_engine(store_url)
    with engine.begin() as conn:  # back to what schema 4 was
        for statement in TO_V6:
            conn.execute(text(statement))
        conn.execute(text("ALTER TABLE reports DROP COLUMN wire"))
        conn.execute(text("ALTER TABLE agents DROP COLUMN snapshot_version"))
        conn.execute(update(schema_version).values(version=4))
    engine.dispose()
    store = Store(store_url)
    at = time.time()
    wire = pb.Report(seq=2, boot_id="b", collected_at_ms=int(at * 1000), agent_version="0.1.0")
    wire.hardware.cpu.usage_ratio = 0.7
    wire.errors.add(probe="link", message="ProbeFailed: no route")
    received = decode_report(wire, now=at)
    assert store.ingest(agent_id, [received], now=at) == ([2], 1)
    old, new = (stored_report(*row) for row in store.history(agent_id))
    assert old == report(1, 10.0)
    assert new == received and new.wire == wire.SerializeToString()
    assert new.sections["hardware"]["cpu"]["usage_ratio"] == 0.7
    assert new.errors == [{"probe": "link", "message": "ProbeFailed: no route"}]
    snap = store.snapshot(agent_id)
    assert snap["hardware"]["cpu"]["usage_ratio"] == 0.7
    assert snap["status:link"] == {"ok": False, "error": "ProbeFailed: no route"}
    store.close()


def test_a_schema_5_store_gains_snapshot_versions(store_url: str) -> None:
    store = Store(store_url)
    _, token = store.create_token(PLACE, ttl=100, now=0.0)
    agent_id = store.enroll(token, FACTS, now=1.0).agent.agent_id
    store.ingest(agent_id, [report(1, 10.0)], now=11.0)
    store.close()
    engine = create_engine(store_url)
    with engine.begin() as conn:  # back to what schema 5 was
        for statement in TO_V6:
            conn.execute(text(statement))
        conn.execute(text("ALTER TABLE agents DROP COLUMN snapshot_version"))
        conn.execute(update(schema_version).values(version=5))
    engine.dispose()
    store = Store(store_url)
    try:
        [agent] = store.scrape.fleet_versions()
        assert (agent.agent_id, agent.version, agent.last_report_at) == (agent_id, 0, 10.0)
        store.ingest(agent_id, [report(2, 20.0, cpu=0.9)], now=21.0)
        assert [a.version for a in store.scrape.fleet_versions()] == [1]
        store.ingest(agent_id, [report(2, 20.0, cpu=0.9)], now=22.0)  # stored already
        assert [a.version for a in store.scrape.fleet_versions()] == [1]
        for scan in (False, True):
            snap = store.scrape.fleet_sections([agent_id], scan=scan)[agent_id]
            assert snap["hardware"] == {"cpu": {"usage_ratio": 0.9}}
            assert snap["status:antivirus"]["ok"] is False
    finally:
        store.close()


def test_a_schema_6_store_gains_spools_clone_flags_and_replacing_tokens(store_url: str) -> None:
    store = Store(store_url)
    _, token = store.create_token(PLACE, ttl=100, now=0.0)
    first = store.enroll(token, FACTS, now=1.0)
    store.close()
    engine = create_engine(store_url)
    with engine.begin() as conn:  # back to what schema 6 was
        for statement in TO_V6:
            conn.execute(text(statement))
        conn.execute(update(schema_version).values(version=6))
    engine.dispose()
    store = Store(store_url)
    try:
        assert store.get_agent(first.agent.agent_id).clone_of is None
        assert store.authenticate(first.credential).agent_id == first.agent.agent_id
        clone = store.enroll(token, FACTS, now=2.0)
        assert clone.agent.clone_of == first.agent.agent_id
        _, replacing = store.create_token(PLACE, 100, 0.5, 1, replaces=first.agent.agent_id)
        assert store.enroll(replacing, FACTS, now=3.0).agent.agent_id == first.agent.agent_id
        assert [t.replaces for t in store.list_tokens()] == [None, first.agent.agent_id]
    finally:
        store.close()


def test_collector_serves_agents_on_either_store(store_url: str, tmp_path: Path) -> None:
    cfg = CollectorConfig.model_validate({"store": {"url": store_url}})
    running = start_collector(cfg)
    try:
        secret = running.enroll()
        payload = pb.Report(seq=1, boot_id="b", collected_at_ms=int(time.time() * 1000))
        client = running.client(secret)
        assert client.submit([payload.SerializeToString()] * 2).stored == [1, 1]
        assert client.submit([payload.SerializeToString()]).stored == [1]
        agent_id = secret.split(".")[0]
        assert running.app.store.report_seqs(agent_id) == [1]
        text = running.app.exposition.render().decode()
        assert f'canhgac_agent_up{{agent_id="{agent_id}"' in text
    finally:
        running.app.stop(grace=0)


def test_a_new_sqlite_store_opened_by_several_processes_at_once(tmp_path: Path) -> None:
    # The CLI run while the service starts for the first time: both create the schema.
    # Before the migration took the writer's lock first, one of them failed ("table tokens
    # already exists" or "database is locked") in most rounds.
    for round_ in range(5):
        url = f"sqlite:///{tmp_path / f'new-{round_}.db'}"
        errors: list[BaseException] = []

        def open_store(url: str = url, errors: list[BaseException] = errors) -> None:
            try:
                Store(url).close()
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=open_store) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        with contextlib.closing(Store(url)) as store:
            assert store.list_agents() == []


def _software(seq: int, at: float, programs: list[dict[str, object]] | None) -> Report:
    """A report of the software probe: the whole list (`programs`) or the hash only (None)."""
    section: dict[str, object] = {"hash": f"h{seq}", "count": 2, "source": "windows_registry"}
    if programs is not None:
        section |= {"complete": True, "programs": programs}
    return Report(seq=seq, boot_id="b", collected_at=at, agent_version="0.1.0",
                  sections={"software": section})  # fmt: skip


def test_the_last_full_software_list_is_kept(store: Store) -> None:
    _, token = store.create_token(PLACE, ttl=3600, now=1000.0)
    agent_id = store.enroll(token, FACTS, now=1000.0).agent.agent_id
    assert store.inventory.software(agent_id) is None
    vnpt = {"name": "VNPT-CA Plugin", "version": "1.0.5.2", "publisher": "VNPT",
            "installed_at": 1710201600.0, "origin": "hklm64"}  # fmt: skip
    chrome: dict[str, object] = {"name": "Google Chrome", "version": "131.0", "origin": "hklm64"}
    store.ingest(agent_id, [_software(2, 1002.0, [vnpt, chrome])], 1002.0)
    # A hash-only report after it, and a late full list from before it: neither replaces it.
    store.ingest(agent_id, [_software(3, 1003.0, None), _software(1, 1001.0, [chrome])], 1003.0)
    kept = store.inventory.software(agent_id)
    assert kept is not None
    assert (kept.hash, kept.collected_at, kept.source) == ("h2", 1002.0, "windows_registry")
    assert [(p.name, p.version, p.publisher, p.installed_at, p.origin) for p in kept.programs] == [
        ("VNPT-CA Plugin", "1.0.5.2", "VNPT", 1710201600.0, "hklm64"),
        ("Google Chrome", "131.0", "", 0.0, "hklm64"),
    ]
    # The snapshot is the newest report's (hash only); the list is the store's.
    assert store.snapshot(agent_id)["software"]["hash"] == "h3"
    store.ingest(agent_id, [_software(4, 1004.0, [chrome])], 1004.0)
    assert [p.name for p in store.inventory.software(agent_id).programs] == ["Google Chrome"]  # type: ignore[union-attr]
    assert [i.agent_id for i in store.inventory.all_software()] == [agent_id]


def test_settings_layers_keep_every_version_and_refuse_a_lost_update(store: Store) -> None:
    """Two people changing one layer from version 1: the second is told to read it again,
    and nothing of the first is lost (both backends)."""
    settings = store.settings
    assert settings.latest_change() == 0 and settings.current() == []
    v1 = settings.change(
        "defaults", {"delivery": {"pace": 1}}, author="an", reason="một", now=10.0, after=0
    )
    assert v1 == 1
    settings.change(
        "role:server", {"log_level": "debug"}, author="bình", reason="hai", now=11.0, after=0
    )
    v2 = settings.change(
        "defaults", {"delivery": {"pace": 2}}, author="an", reason="ba", now=12.0, after=1
    )
    with pytest.raises(StaleLayer):
        settings.change("defaults", {"x": 1}, author="chi", reason="cũ", now=13.0, after=1)
    settings.change("role:server", {}, author="bình", reason="bỏ", now=14.0, after=1)
    assert v2 == 2 and settings.latest_change() == 4
    change, in_force = settings.in_force()
    assert (change, in_force) == (4, {"defaults": {"delivery": {"pace": 2}}})
    assert [(v.layer, v.version, v.author, v.reason) for v in settings.history()] == [
        ("defaults", 1, "an", "một"),
        ("role:server", 1, "bình", "hai"),
        ("defaults", 2, "an", "ba"),
        ("role:server", 2, "bình", "bỏ"),
    ]
    removed = settings.layer("role:server")
    assert removed is not None and removed.document == {}
