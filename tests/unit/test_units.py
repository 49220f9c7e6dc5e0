"""Durations and sizes as written in configs and on the command line."""

from __future__ import annotations

import pytest

from canhgac_common.units import format_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15s", 15.0),
        ("15m", 900.0),
        ("2h", 7200.0),
        ("1h30m", 5400.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1s500ms", 1.5),
        ("7d", 604800.0),
        ("2w", 1209600.0),
        ("1.5h", 5400.0),
        ("  30S ", 30.0),
        ("90", 90.0),
        ("2.5", 2.5),
        ("0", 0.0),
        (0, 0.0),
        (20, 20.0),
        (0.25, 0.25),
    ],
)
def test_parse_duration_accepts(text: str | int | float, seconds: float) -> None:
    result = parse_duration(text)
    assert result == seconds
    assert isinstance(result, float)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "abc", "15x", "s", "1m30", "-5s", "h1", "1 h", "1e3", "5s garbage", "1d-2h"],
)
def test_parse_duration_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("value", [-1, -0.5])
def test_parse_duration_rejects_negative_numbers(value: float) -> None:
    with pytest.raises(ValueError, match="negative"):
        parse_duration(value)


@pytest.mark.parametrize("value", [True, False])
def test_parse_duration_rejects_bool(value: bool) -> None:
    # bool is an int subclass: `enabled: true` put under a duration key must not become 1 s.
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(value)


def test_parse_duration_error_shows_examples() -> None:
    with pytest.raises(ValueError, match=r"'15x'.*30s"):
        parse_duration("15x")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4MiB", 4 * 1024**2),
        ("64mib", 64 * 1024**2),
        ("512KiB", 512 * 1024),
        ("1GiB", 1024**3),
        ("500kB", 500_000),
        ("1MB", 1_000_000),
        ("1GB", 1_000_000_000),
        ("10 MB", 10_000_000),
        ("1.5KiB", 1536),
        ("100B", 100),
        ("100", 100),
        (" 7 ", 7),
        (0, 0),
        (4096, 4096),
        (2**40, 2**40),
    ],
)
def test_parse_size_accepts(text: str | int, size: int) -> None:
    result = parse_size(text)
    assert result == size
    assert type(result) is int


@pytest.mark.parametrize("text", ["", "MiB", "abc", "4XB", "4 Mebibytes", "-1", "-4MiB", "4MiB!"])
def test_parse_size_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_parse_size_rejects_negative_int() -> None:
    with pytest.raises(ValueError, match="negative"):
        parse_size(-1)


@pytest.mark.parametrize("value", [True, False])
def test_parse_size_rejects_bool(value: bool) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.25, "250ms"),
        (15, "15s"),
        (90, "1m30s"),
        (5400, "1h30m"),
        (21600, "6h"),
        (86400 * 8, "1w1d"),
        (1.5, "1s500ms"),
    ],
)
def test_durations_are_written_as_they_are_read(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


def test_a_negative_duration_is_not_written() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(-1)
