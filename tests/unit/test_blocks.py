"""Report blocks (collector.store.blocks): what is packed reads back exactly; damage is named."""

from __future__ import annotations

import lzma

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.store.blocks import MAGIC, BlockError, PackedReport, pack, unpack

# A row keeps the protobuf received, or (older rows) JSON: never both.
body = st.one_of(
    st.tuples(st.binary(max_size=3000), st.just("")),
    st.tuples(st.none(), st.text(max_size=300)),
)
reports = st.lists(
    st.builds(
        lambda seq, boot, collected, received, kept: PackedReport(
            seq, boot, collected, received, *kept
        ),
        st.integers(1, (1 << 63) - 1),
        st.text(max_size=80),
        st.floats(allow_nan=False),
        st.floats(allow_nan=False),
        body,
    ),
    max_size=40,
)


@given(reports)
def test_a_block_reads_back_exactly_what_was_packed(packed: list[PackedReport]) -> None:
    assert unpack(pack(packed)) == packed


def test_repeating_reports_compress_to_a_fraction() -> None:
    body = b"hostname=ubnd-duc-quang-01 antivirus=Windows Defender signatures=1.403.1234.0 "
    rows = [
        PackedReport(s, "boot-1", 1e9 + 15 * s, 1e9 + 15 * s + 1, body * 8 + s.to_bytes(4), "")
        for s in range(1, 501)
    ]
    raw = sum(len(r.wire or b"") for r in rows)
    assert len(pack(rows)) < raw / 20


def test_damage_is_an_error_that_says_so() -> None:
    block = pack([PackedReport(1, "b", 1.0, 2.0, b"x" * 100, "")])
    with pytest.raises(BlockError, match="not a report block"):
        unpack(b"PK\x03\x04" + block)
    flipped = block[:30] + bytes([block[30] ^ 0xFF]) + block[31:]
    with pytest.raises(BlockError, match="damaged report block"):
        unpack(flipped)
    # Intact compression around frames that are cut short (a writer bug, not disk damage).
    cut = MAGIC + lzma.compress(b"\x01\x00\x00\x00\x00\x00\x00\x00" + b"\x00" * 5)
    with pytest.raises(BlockError, match="damaged report block"):
        unpack(cut)
