"""Human-friendly durations ("15s", "7d") and sizes ("64MiB") used in configs and CLIs."""

from __future__ import annotations

import argparse
import re

from canhgac_common.i18n import gettext_ as _

__all__ = [
    "duration_option",
    "duration_value",
    "format_duration",
    "parse_duration",
    "parse_size",
    "size_value",
]

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")


def parse_duration(text: str | int | float) -> float:
    """Seconds from "90s", "15m", "1h30m", "7d" or a bare number of seconds."""
    if isinstance(text, bool):
        raise ValueError(_("not a duration: {value!r}").format(value=text))
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(_("duration must not be negative: {value!r}").format(value=text))
        return float(text)
    s = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(
            _("not a duration: {value!r} (use e.g. 30s, 15m, 2h, 7d)").format(value=text)
        )
    return total


def format_duration(seconds: float) -> str:
    """`seconds` written as `parse_duration` reads it back: 21600 -> "6h", 5400 -> "1h30m",
    90 -> "1m30s", 0.25 -> "250ms"; the same spelling the configs and the options use."""
    if seconds < 0:
        raise ValueError(_("duration must not be negative: {value!r}").format(value=seconds))
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    parts = []
    for unit in ("w", "d", "h", "m", "s"):
        size = round(_DURATION_UNITS[unit] * 1000)
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    if ms:
        parts.append(f"{ms}ms")
    return "".join(parts)


def duration_option(text: str) -> float:
    """An argparse `type=`: `--interval 15s` read as the configs read `interval: 15s`."""
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_size(text: str | int) -> int:
    """Bytes from "4MiB", "500kB", "1GB" or a bare number of bytes."""
    if isinstance(text, bool):
        raise ValueError(_("not a size: {value!r}").format(value=text))
    if isinstance(text, int):
        if text < 0:
            raise ValueError(_("size must not be negative: {value!r}").format(value=text))
        return text
    m = _SIZE.fullmatch(text.strip().lower())
    if not m or m.group(2) not in _SIZE_UNITS:
        raise ValueError(
            _("not a size: {value!r} (use e.g. 512KiB, 64MiB, 1GB)").format(value=text)
        )
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])


def duration_value(value: object) -> float:
    """`parse_duration` of a config value of any type (a list or a mapping is not a duration)."""
    if isinstance(value, str | int | float):
        return parse_duration(value)
    raise ValueError(_("not a duration: {value!r}").format(value=value))


def size_value(value: object) -> int:
    """`parse_size` of a config value of any type."""
    if isinstance(value, str | int):
        return parse_size(value)
    raise ValueError(_("not a size: {value!r}").format(value=value))
