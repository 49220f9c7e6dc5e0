"""What turns a new store back into one an older collector left, for the migration tests."""

# Schema 10 -> 9: the kept software lists.
UNDO_SOFTWARE_INVENTORY = ("DROP TABLE software_inventories",)
# Schema 9 -> 8: rollups, retention marks, the reports' arrival index.
UNDO_V9 = (
    "DROP TABLE rollups",
    "DROP TABLE retention_marks",
    "DROP INDEX reports_received",
)
# Schema 8 -> 7: the clone mark of enrollments and the tokens that replace an agent.
UNDO_V8 = (
    "ALTER TABLE agents DROP COLUMN clone_of",
    "ALTER TABLE tokens DROP COLUMN replaces",
)
# Schema 7 -> 6: the spools table and the agents' clone marks of ingest.
UNDO_V7 = (
    "DROP TABLE spools",
    "ALTER TABLE agents DROP COLUMN clone_suspected_at",
    "ALTER TABLE agents DROP COLUMN seq_conflicts",
)
# Back to schema 6, what the older downgrades start from.
TO_V6 = UNDO_SOFTWARE_INVENTORY + UNDO_V9 + UNDO_V8 + UNDO_V7
