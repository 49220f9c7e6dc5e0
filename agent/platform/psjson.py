"""Pure readers of PowerShell ConvertTo-Json output as 5.1 and 7 write it (dates, arrays, nulls)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from agent.errors import ProbeFailed

__all__ = [
    "as_bool",
    "as_int",
    "as_list",
    "as_text",
    "load_document",
    "parse_date",
]

# Windows PowerShell 5.1 writes DateTime as "\/Date(1700000000000)\/" (json.loads leaves
# "/Date(...)/"), sometimes with a zone suffix "+0700" that does not change the instant.
_MS_DATE = re.compile(r"/?Date\((-?\d{1,15})(?:[+-]\d{4})?\)/?")
# .NET "o" format has 7 fractional digits; Python reads at most 6.
_FRACTION = re.compile(r"(\.\d{6})\d+")


def load_document(document: str, what: str) -> dict[str, Any]:
    """The JSON object a probe script printed; ProbeFailed naming `what` when it is not one."""
    text = document.lstrip("\ufeff").strip()
    if not text:
        raise ProbeFailed(f"PowerShell {what} document is empty")
    try:
        parsed: object = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise ProbeFailed(f"PowerShell {what} document is not valid JSON (truncated?)") from e
    if not isinstance(parsed, dict):
        raise ProbeFailed(
            f"PowerShell {what} document is a JSON {type(parsed).__name__}, not an object"
        )
    return parsed


def as_list(value: object) -> list[dict[str, Any]]:
    """Instances of a section: PowerShell writes one instance as an object, none as null."""
    items = value if isinstance(value, list) else [] if value is None else [value]
    return [item for item in items if isinstance(item, dict)]


def as_text(value: object) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return " ".join(str(value).split())


def as_bool(value: object) -> bool | None:
    """True/False from a JSON bool, 1/0, or their text; None when absent or anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 20:
        return int(value.strip())
    return None


def parse_date(value: object) -> float | None:
    """Unix seconds from a "/Date(ms)/" or ISO 8601 date (no zone = UTC); None otherwise."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    match = _MS_DATE.fullmatch(text.replace("\\/", "/"))
    try:
        if match:
            return int(match.group(1)) / 1000.0
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", text))
    except (ValueError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.timestamp()
    except (ValueError, OverflowError, OSError):
        return None
