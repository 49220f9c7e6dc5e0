"""The collector's tables, in SQLAlchemy Core so one schema runs on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

__all__ = [
    "PLACE_COLUMNS",
    "SCHEMA_VERSION",
    "agents",
    "metadata",
    "reports",
    "schema_version",
    "snapshots",
    "tokens",
]

# Bump together with a migration in collector/store/store.py:_MIGRATIONS.
SCHEMA_VERSION = 1

metadata = MetaData()

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

PLACE_COLUMNS = ("province", "district", "commune", "unit", "role")


def _place_columns() -> list[Column[str]]:
    """A fresh set per table: a Column belongs to exactly one Table."""
    return [Column(name, String(200), nullable=False, default="") for name in PLACE_COLUMNS]


tokens = Table(
    "tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    *_place_columns(),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("revoked_at", Float),
    Column("max_uses", Integer),
    Column("uses", Integer, nullable=False, default=0),
    Column("note", Text, nullable=False, default=""),
)

agents = Table(
    "agents",
    metadata,
    Column("agent_id", String(32), primary_key=True),
    Column("machine_id", String(64), nullable=False, index=True),
    Column("credential_hash", String(64), nullable=False, unique=True),
    Column("token_id", String(32), ForeignKey("tokens.token_id"), nullable=False),
    *_place_columns(),
    Column("hostname", String(255), nullable=False, default=""),
    Column("os_name", String(200), nullable=False, default=""),
    Column("os_version", String(200), nullable=False, default=""),
    Column("agent_version", String(50), nullable=False, default=""),
    Column("enrolled_at", Float, nullable=False),
    Column("revoked_at", Float),
    Column("last_seen_at", Float),  # collector clock: when it last delivered anything
    Column("last_report_at", Float),  # agent clock: newest collected_at stored
    Column("last_seq", BigInteger, nullable=False, default=0),
)

# Append-only history, exactly once per (agent, seq).
reports = Table(
    "reports",
    metadata,
    Column("agent_id", String(32), ForeignKey("agents.agent_id"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("boot_id", String(64), nullable=False),
    Column("collected_at", Float, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("payload", Text, nullable=False),  # JSON of collector.model.Report
    PrimaryKeyConstraint("agent_id", "seq"),
)

# The newest value of each report section per agent: what /metrics and rules read.
snapshots = Table(
    "snapshots",
    metadata,
    Column("agent_id", String(32), ForeignKey("agents.agent_id"), nullable=False),
    Column("section", String(50), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("collected_at", Float, nullable=False),
    Column("data", Text, nullable=False),
    PrimaryKeyConstraint("agent_id", "section"),
)
