"""The agent's spool: a real SQLite file in tmp_path, ordered by seq, bounded, counting loss."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.errors import SpoolError
from agent.model import SpoolStats
from agent.spool import Spool

BIG = 1 << 40  # bounds that never bite
T0 = 1_700_000_000.0


class Clock:
    """A settable wall clock (Unix seconds)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Encoder:
    """An `encode` callback writing a fixed-size payload; remembers every call it got."""

    def __init__(self, size: int = 100) -> None:
        self.size = size
        self.calls: list[tuple[int, SpoolStats]] = []

    def __call__(self, seq: int, stats: SpoolStats) -> bytes:
        self.calls.append((seq, stats))
        head = f"{seq}:{stats.dropped_total}:{stats.depth}:".encode()
        return head.ljust(self.size, b".")


def _ms(clock: Callable[[], float]) -> int:
    return int(clock() * 1000)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def spool(tmp_path: Path, clock: Clock) -> Iterator[Spool]:
    s = Spool(tmp_path / "spool.db", max_bytes=BIG, max_age=1e9, clock=clock)
    yield s
    s.close()


def test_append_assigns_monotonic_seq(spool: Spool, clock: Clock) -> None:
    enc = Encoder()
    seqs = [spool.append(_ms(clock), enc) for _ in range(3)]
    assert seqs == [1, 2, 3]
    assert [seq for seq, _ in enc.calls] == [1, 2, 3]
    status = spool.status()
    assert status.depth == 3
    assert status.bytes == 300
    assert status.last_seq == 3
    assert status.dropped_total == 0


def test_payload_is_stored_as_encoded(spool: Spool, clock: Clock) -> None:
    spool.append(_ms(clock), lambda seq, stats: f"report {seq} ✓ Hạ Lang".encode())
    assert spool.pending(10) == [(1, "report 1 ✓ Hạ Lang".encode())]


def test_seq_continues_after_reopen(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "spool.db"
    first = Spool(path, max_bytes=BIG, max_age=1e9, clock=clock)
    assert [first.append(_ms(clock), Encoder()) for _ in range(3)] == [1, 2, 3]
    first.close()

    second = Spool(path, max_bytes=BIG, max_age=1e9, clock=clock)
    try:
        assert second.append(_ms(clock), Encoder()) == 4
        assert [seq for seq, _ in second.pending(10)] == [1, 2, 3, 4]
    finally:
        second.close()


def test_seq_continues_after_everything_is_acked(tmp_path: Path, clock: Clock) -> None:
    # The collector dedups by (agent_id, seq): reusing a seq once the spool is empty
    # would make it drop a new report as a duplicate.
    path = tmp_path / "spool.db"
    s = Spool(path, max_bytes=BIG, max_age=1e9, clock=clock)
    s.append(_ms(clock), Encoder())
    s.append(_ms(clock), Encoder())
    s.ack([1, 2])
    s.close()
    s = Spool(path, max_bytes=BIG, max_age=1e9, clock=clock)
    try:
        assert s.status().depth == 0
        assert s.append(_ms(clock), Encoder()) == 3
    finally:
        s.close()


def test_pending_oldest_first_with_limit(spool: Spool, clock: Clock) -> None:
    for _ in range(5):
        spool.append(_ms(clock), Encoder())
    assert [seq for seq, _ in spool.pending(2)] == [1, 2]
    assert [seq for seq, _ in spool.pending(10)] == [1, 2, 3, 4, 5]
    first = spool.pending(1)[0][1]
    assert first.startswith(b"1:")
    # pending does not consume
    assert len(spool.pending(10)) == 5


def test_pending_on_empty_spool(spool: Spool) -> None:
    assert spool.pending(10) == []
    status = spool.status()
    assert (status.depth, status.bytes, status.last_seq) == (0, 0, 0)
    assert status.last_ack_at is None


def test_ack_deletes_exactly_those_seqs(spool: Spool, clock: Clock) -> None:
    for _ in range(5):
        spool.append(_ms(clock), Encoder())
    clock.now = T0 + 42
    spool.ack([2, 4])
    assert [seq for seq, _ in spool.pending(10)] == [1, 3, 5]
    status = spool.status()
    assert status.depth == 3
    assert status.bytes == 300
    assert status.last_ack_at == T0 + 42
    assert status.rejected_total == 0


def test_ack_of_unknown_seq_is_harmless(spool: Spool, clock: Clock) -> None:
    spool.append(_ms(clock), Encoder())
    spool.ack([7, 8])
    assert [seq for seq, _ in spool.pending(10)] == [1]


def test_rejected_are_counted(spool: Spool, clock: Clock) -> None:
    for _ in range(4):
        spool.append(_ms(clock), Encoder())
    spool.ack([1, 2], rejected=1)
    spool.ack([3, 4], rejected=2)
    status = spool.status()
    assert status.rejected_total == 3
    assert status.depth == 0


def test_counters_survive_reopen(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "spool.db"
    s = Spool(path, max_bytes=250, max_age=1e9, clock=clock)
    for _ in range(4):
        s.append(_ms(clock), Encoder(100))
    s.ack([3], rejected=1)
    before = s.status()
    s.close()
    s = Spool(path, max_bytes=250, max_age=1e9, clock=clock)
    try:
        assert s.status() == before
        assert before.dropped_total == 2
        assert before.rejected_total == 1
        assert before.last_ack_at == T0
    finally:
        s.close()


def test_size_bound_evicts_oldest_and_counts(tmp_path: Path, clock: Clock) -> None:
    s = Spool(tmp_path / "spool.db", max_bytes=250, max_age=1e9, clock=clock)
    try:
        enc = Encoder(100)
        s.append(_ms(clock), enc)
        s.append(_ms(clock), enc)
        assert s.status().dropped_total == 0

        s.append(_ms(clock), enc)  # 300 > 250: seq 1 goes
        assert [seq for seq, _ in s.pending(10)] == [2, 3]
        status = s.status()
        assert status.dropped_total == 1
        assert status.bytes == 200
        # The last encode of the newest report carries the loss it caused.
        assert enc.calls[-1] == (3, SpoolStats(dropped_total=1, depth=1))
        assert s.pending(10)[-1][1].startswith(b"3:1:1:")

        s.append(_ms(clock), enc)
        assert [seq for seq, _ in s.pending(10)] == [3, 4]
        assert s.status().dropped_total == 2
        assert enc.calls[-1] == (4, SpoolStats(dropped_total=2, depth=1))
    finally:
        s.close()


def test_size_bound_evicts_several_for_a_big_report(tmp_path: Path, clock: Clock) -> None:
    s = Spool(tmp_path / "spool.db", max_bytes=400, max_age=1e9, clock=clock)
    try:
        for _ in range(3):
            s.append(_ms(clock), Encoder(100))
        big = Encoder(250)
        assert s.append(_ms(clock), big) == 4
        assert [seq for seq, _ in s.pending(10)] == [3, 4]
        assert s.status().dropped_total == 2
        assert big.calls[-1] == (4, SpoolStats(dropped_total=2, depth=1))
    finally:
        s.close()


def test_later_reports_keep_carrying_the_loss(tmp_path: Path, clock: Clock) -> None:
    s = Spool(tmp_path / "spool.db", max_bytes=250, max_age=1e9, clock=clock)
    try:
        enc = Encoder(100)
        for _ in range(3):
            s.append(_ms(clock), enc)
        s.ack([2, 3])
        s.append(_ms(clock), enc)  # no eviction now, but the loss is still reported
        assert enc.calls[-1] == (4, SpoolStats(dropped_total=1, depth=0))
    finally:
        s.close()


def test_report_larger_than_bound_is_still_kept_alone(tmp_path: Path, clock: Clock) -> None:
    s = Spool(tmp_path / "spool.db", max_bytes=50, max_age=1e9, clock=clock)
    try:
        s.append(_ms(clock), Encoder(100))
        s.append(_ms(clock), Encoder(100))
        assert [seq for seq, _ in s.pending(10)] == [2]
        assert s.status().dropped_total == 1
    finally:
        s.close()


def test_age_bound_evicts_old_reports(tmp_path: Path, clock: Clock) -> None:
    s = Spool(tmp_path / "spool.db", max_bytes=BIG, max_age=3600, clock=clock)
    try:
        enc = Encoder()
        s.append(_ms(clock), enc)  # collected at T0
        clock.now = T0 + 1800
        s.append(_ms(clock), enc)  # T0 + 30 min
        clock.now = T0 + 3601
        s.append(_ms(clock), enc)  # seq 1 is now older than an hour
        assert [seq for seq, _ in s.pending(10)] == [2, 3]
        assert s.status().dropped_total == 1
        assert enc.calls[-1] == (3, SpoolStats(dropped_total=1, depth=1))

        clock.now = T0 + 3 * 3600
        s.append(_ms(clock), enc)
        assert [seq for seq, _ in s.pending(10)] == [4]
        assert s.status().dropped_total == 3
        assert enc.calls[-1] == (4, SpoolStats(dropped_total=3, depth=0))
    finally:
        s.close()


def test_age_is_measured_from_collection_time(tmp_path: Path, clock: Clock) -> None:
    s = Spool(tmp_path / "spool.db", max_bytes=BIG, max_age=3600, clock=clock)
    try:
        # Collected two hours before it was appended: evicted by the next append.
        s.append(int((T0 - 7200) * 1000), Encoder())
        s.append(_ms(clock), Encoder())
        assert [seq for seq, _ in s.pending(10)] == [2]
        assert s.status().dropped_total == 1
    finally:
        s.close()


def test_failed_encode_stores_nothing(spool: Spool, clock: Clock) -> None:
    def broken(seq: int, stats: SpoolStats) -> bytes:
        raise RuntimeError("cannot encode")

    spool.append(_ms(clock), Encoder())
    with pytest.raises(RuntimeError):
        spool.append(_ms(clock), broken)
    assert [seq for seq, _ in spool.pending(10)] == [1]
    assert spool.status().last_seq == 1


def test_unopenable_path_raises_spool_error(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "spool.db"
    path.mkdir()  # a directory where the database file should be
    with pytest.raises(SpoolError) as exc:
        Spool(path, max_bytes=BIG, max_age=1e9, clock=clock)
    assert str(path) in str(exc.value)


def test_parent_that_is_a_file_raises_spool_error(tmp_path: Path, clock: Clock) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("not a directory")
    path = blocker / "spool.db"
    with pytest.raises(SpoolError) as exc:
        Spool(path, max_bytes=BIG, max_age=1e9, clock=clock)
    assert str(path) in str(exc.value)


def test_creates_missing_parent_directories(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "a" / "b" / "spool.db"
    s = Spool(path, max_bytes=BIG, max_age=1e9, clock=clock)
    try:
        s.append(_ms(clock), Encoder())
        assert path.is_file()
    finally:
        s.close()


def test_append_reads_the_age_index_not_the_payloads(tmp_path: Path) -> None:
    # With a day of backlog each append scanned every payload (≈ 20 ms CPU per report).
    db = sqlite3.connect(tmp_path / "spool.db")
    Spool(tmp_path / "spool.db", 1 << 20, 3600.0).close()
    plans = [
        " ".join(str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}"))
        for sql in (
            "DELETE FROM reports WHERE collected_at_ms < 5",
            "SELECT count(*), coalesce(sum(size), 0) FROM reports",
        )
    ]
    db.close()
    assert "USING INDEX reports_age_size" in plans[0]
    assert "USING COVERING INDEX reports_age_size" in plans[1]


# --- spool lifetimes: ids, resets, a machine of another name ------------------------------------


def _open(path: Path, clock: Clock, origin: str = "pc-01") -> Spool:
    return Spool(path, max_bytes=BIG, max_age=1e9, clock=clock, origin=origin)


def test_spool_lost_a_fresh_spool_draws_a_new_id_and_the_same_file_keeps_it(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "spool.db"
    first = _open(path, clock)
    first_id = first.spool_id
    first.close()
    again = _open(path, clock)
    assert again.spool_id == first_id != 0
    assert again.status().resets_total == 0
    again.close()
    other = _open(tmp_path / "elsewhere" / "spool.db", clock)
    assert other.spool_id not in (0, first_id)
    other.close()


@pytest.mark.parametrize("damage", ["corrupt", "zero-byte", "deleted"])
def test_spool_lost_is_replaced_counted_and_reported(
    tmp_path: Path, clock: Clock, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "spool.db"
    s = _open(path, clock)
    old_id = s.spool_id
    for _ in range(3):
        s.append(_ms(clock), Encoder())
    s.close()
    if damage == "corrupt":
        with path.open("r+b") as f:  # the header and the first pages overwritten
            f.write(b"\x00garbage" * 512)
    elif damage == "zero-byte":
        path.write_bytes(b"")
    else:
        path.unlink()
    s = _open(path, clock)
    try:
        st = s.status()
        assert s.spool_id not in (0, old_id)
        assert (st.resets_total, st.last_seq, st.depth) == (1, 0, 0)
        enc = Encoder()
        assert s.append(_ms(clock), enc) == 1
        assert enc.calls[-1][1].resets_total == 1  # the reset travels with the next report
    finally:
        s.close()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and str(path) in errors[0]
    aside = list(tmp_path.glob("spool.db.corrupt-*"))
    assert len(aside) == (1 if damage == "corrupt" else 0)


def test_clone_a_spool_on_a_machine_of_another_name_numbers_new_reports_anew(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "spool.db"
    s = _open(path, clock, origin="pc-01")
    first_id = s.spool_id
    s.append(_ms(clock), Encoder())
    s.close()
    s = _open(path, clock, origin="pc-02")  # the image copied to another machine
    try:
        assert s.spool_id not in (0, first_id)
        assert [seq for seq, _ in s.pending(10)] == [1]  # what was spooled stays, and goes first
        assert s.append(_ms(clock), Encoder()) == 2
        assert s.status().resets_total == 0  # nothing was lost
    finally:
        s.close()
    s = _open(path, clock, origin="pc-02")
    assert s.spool_id not in (0, first_id)
    s.close()


def test_a_spool_written_before_spool_ids_keeps_id_0(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "spool.db"
    s = _open(path, clock)
    s.append(_ms(clock), Encoder())
    s.close()
    with sqlite3.connect(path) as db:  # what an older agent left
        db.execute("DELETE FROM meta WHERE key IN ('spool_id', 'origin')")
    s = _open(path, clock)
    try:
        assert s.spool_id == 0
        assert s.append(_ms(clock), Encoder()) == 2
    finally:
        s.close()


def test_disk_full_append_is_counted_and_carried_by_the_next_report(
    tmp_path: Path, clock: Clock
) -> None:
    s = _open(tmp_path / "spool.db", clock)
    try:
        s.append(_ms(clock), Encoder())
        s._db.execute("PRAGMA max_page_count = 1")  # what a full disk answers: SQLITE_FULL
        with pytest.raises(SpoolError, match="full"):
            s.append(_ms(clock), Encoder(size=100_000))
        assert s.status().unspooled_total == 1
        s._db.execute("PRAGMA max_page_count = 1073741823")
        enc = Encoder()
        assert s.append(_ms(clock), enc) == 2
        assert enc.calls[-1][1].unspooled_total == 1
    finally:
        s.close()
