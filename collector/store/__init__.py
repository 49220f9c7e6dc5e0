"""Persistence of the collector (SQLite by default, PostgreSQL by URL)."""

from collector.store.store import Enrollment, MachineFacts, Store

__all__ = ["Enrollment", "MachineFacts", "Store"]
