"""Log-safe text: strings from the wire or from other servers, bounded and on one line."""

from __future__ import annotations

__all__ = ["LOG_LIMIT", "printable"]

# Characters of a client-supplied string that reach a log line (a real hostname is < 64).
LOG_LIMIT = 200


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
