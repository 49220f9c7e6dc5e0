"""Linux readers shared by the probes: small text files under /etc, /proc and /sys."""

from __future__ import annotations

__all__ = ["read_text"]


def read_text(path: str) -> str | None:
    """Return the file's text, or None when it is absent or unreadable.

    Unreadable is normal here (e.g. /sys/class/dmi/id/product_serial is root-only), so the
    caller decides what a missing value means instead of handling exceptions.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None
