"""Text as people type it and as logs may show it: names NFC-normalised, wire strings bounded."""

from __future__ import annotations

import unicodedata

__all__ = ["LOG_LIMIT", "nfc", "printable"]

# Characters of a client-supplied string that reach a log line (a real hostname is < 64).
LOG_LIMIT = 200


def nfc(value: object) -> object:
    """`value` with every string in it (nested lists and mappings, keys too) in Unicode NFC:
    "Nhật" typed with a combining dot below (NFD, as macOS and some Vietnamese keyboards
    produce it) is the same name as the precomposed one in the sites file."""
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, list):
        return [nfc(v) for v in value]
    if isinstance(value, dict):
        return {nfc(k): nfc(v) for k, v in value.items()}
    return value


def printable(value: object, limit: int = LOG_LIMIT) -> str:
    """`value` as it may appear in a log line: cut to `limit` characters (saying how many
    were cut), control characters, line separators and backslashes escaped as repr escapes
    them, so a hostname with a newline cannot forge a line and a 1 MB one writes 200 bytes.
    Printable text (Vietnamese included) is kept as it is."""
    text = str(value)
    cut = len(text) - limit
    if cut > 0:
        text = text[:limit]
    if not text.isprintable() or "\\" in text:
        text = "".join(c if c.isprintable() and c != "\\" else repr(c)[1:-1] for c in text)
    return f"{text}…(+{cut} chars)" if cut > 0 else text
