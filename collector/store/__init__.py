"""Persistence of the collector (SQLite by default, PostgreSQL by URL)."""

from collector.store.alerts import (
    AlertWrite,
    HistoryEntry,
    MaintenanceWindow,
    Notification,
    Silence,
)
from collector.store.fleet import FleetAgent
from collector.store.store import Enrollment, MachineFacts, Store

__all__ = [
    "AlertWrite",
    "Enrollment",
    "FleetAgent",
    "HistoryEntry",
    "MachineFacts",
    "MaintenanceWindow",
    "Notification",
    "Silence",
    "Store",
]
