"""What turns a new store back into one an older collector left, for the migration tests."""

# Schema 7 -> 6: the spools table and the agents' clone marks.
UNDO_V7 = (
    "DROP TABLE spools",
    "ALTER TABLE agents DROP COLUMN clone_suspected_at",
    "ALTER TABLE agents DROP COLUMN seq_conflicts",
)
