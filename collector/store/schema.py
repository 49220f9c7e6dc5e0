"""The collector's tables, in SQLAlchemy Core so one schema runs on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "ALERT_TABLES",
    "MAIL_TABLES",
    "PLACE_COLUMNS",
    "SCHEMA_VERSION",
    "agents",
    "alert_history",
    "alerts",
    "mail_outbox",
    "mail_queue",
    "maintenance_windows",
    "meeting_results",
    "meetings",
    "metadata",
    "notifications",
    "releases",
    "report_blocks",
    "reports",
    "retention_marks",
    "rollups",
    "rule_results",
    "schema_version",
    "settings_layers",
    "silences",
    "snapshots",
    "software_inventories",
    "spools",
    "tokens",
]

# Bump together with a migration in collector/store/database.py:_MIGRATIONS.
SCHEMA_VERSION = 15

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
    # Schema 8: the agent an enrollment with this token re-enrolls (keeping its id), an
    # operator's answer to "this machine was reinstalled and lost its credential".
    Column("replaces", String(32)),
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
    # Schema 6: raised by every ingest that stores a new report of the agent, so /metrics
    # finds which agents' snapshots may have changed without reading `snapshots`.
    Column("snapshot_version", BigInteger, nullable=False, server_default="0"),
    # Schema 7: when reports of two live spools of this agent interleaved, or a seq came
    # again with other content (a cloned image, two machines with one credential), and how
    # many such conflicting reports were refused as duplicates.
    Column("clone_suspected_at", Float),
    Column("seq_conflicts", BigInteger, nullable=False, server_default="0"),
    # Schema 8: the active agent whose machine id this one enrolled with, without proof
    # (neither that agent's credential nor a token replacing it): a cloned image, a
    # reinstall that lost its state, or a takeover attempt. Cleared when that agent is revoked.
    Column("clone_of", String(32)),
    # Schema 13: when the machine was taken out of service (`agent retire`) and why. A retired
    # agent is revoked too (revoked_at set at the same time, unless it was already): every
    # "active agents" read leaves it out, and its rollups stop at that time.
    Column("retired_at", Float),
    Column("retired_reason", Text, nullable=False, server_default=""),
)

# Schema 7: each spool an agent numbered reports with, in the order the collector first saw
# them; `ordinal` is the high part of the stored seq (collector.model.stored_seq).
spools = Table(
    "spools",
    metadata,
    Column("agent_id", String(32), ForeignKey("agents.agent_id"), nullable=False),
    Column("spool_id", BigInteger, nullable=False),  # the wire's fixed64, as signed 64 bits
    Column("ordinal", Integer, nullable=False),
    Column("first_seen_at", Float, nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    # Reports of the spools before it that the collector never got: the gap at the reset.
    Column("lost_before", BigInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint("agent_id", "spool_id"),
    UniqueConstraint("agent_id", "ordinal"),
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
    # JSON of collector.model.Report: every row before schema 5, and reports built
    # in-process; empty when `wire` holds the report.
    Column("payload", Text, nullable=False),
    Column("wire", LargeBinary),  # schema 5: the Report as received (protobuf)
    PrimaryKeyConstraint("agent_id", "seq"),
    # Schema 9: the order the rollup pass reads reports in and retention deletes them by.
    Index("reports_received", "received_at", "agent_id", "seq"),
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

# ---- schema 2: compliance and alerts -----------------------------------------------------

# The open alert of each (rule, subject): pending or firing. Resolved alerts leave this table;
# their story stays in alert_history.
alerts = Table(
    "alerts",
    metadata,
    Column("rule_id", String(100), nullable=False),
    Column("subject", String(300), nullable=False),  # agent id, or commune:/district: path
    Column("severity", String(20), nullable=False),
    Column("district", String(200), nullable=False, default=""),
    Column("commune", String(200), nullable=False, default=""),
    Column("unit", String(200), nullable=False, default=""),
    Column("host", String(255), nullable=False, default=""),
    Column("state", String(20), nullable=False),  # pending | firing
    Column("started_at", Float, nullable=False),  # first failing observation
    Column("fired_at", Float),
    Column("passing_since", Float),  # firing but passing again: resolves after the hold
    Column("last_observed_at", Float, nullable=False),
    Column("notified", Boolean, nullable=False, default=False),
    Column("acked_by", String(100)),
    Column("acked_at", Float),
    PrimaryKeyConstraint("rule_id", "subject"),
)

# Append-only: every lifecycle event, silence, ack; `at` is when it happened (report time),
# `recorded_at` when the collector learnt it (they differ for a replayed backlog).
alert_history = Table(
    "alert_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule_id", String(100), nullable=False, index=True),
    Column("subject", String(300), nullable=False, index=True),
    Column("district", String(200), nullable=False, default=""),
    Column("commune", String(200), nullable=False, default=""),
    Column("event", String(20), nullable=False),  # pending|firing|resolved|cleared|ack
    Column("at", Float, nullable=False),
    Column("started_at", Float),
    Column("recorded_at", Float, nullable=False),
    Column("detail", Text, nullable=False, default=""),
)

silences = Table(
    "silences",
    metadata,
    Column("silence_id", String(16), primary_key=True),
    Column("matchers", Text, nullable=False),  # JSON {label: glob}
    Column("starts_at", Float, nullable=False),
    Column("ends_at", Float, nullable=False),
    Column("author", String(100), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expired_at", Float),  # ended early from the CLI
)

maintenance_windows = Table(
    "maintenance_windows",
    metadata,
    Column("window_id", String(16), primary_key=True),
    Column("matchers", Text, nullable=False),
    Column("weekdays", String(50), nullable=False),  # "mon,tue,...", collector local time
    Column("start", String(5), nullable=False),  # HH:MM
    Column("duration_seconds", Float, nullable=False),
    Column("author", String(100), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

# The notification seam: lifecycle transitions that should reach people. The notifier
# (issue 6) reads unsent rows in id order and sets sent_at; nothing here sends anything.
notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", Float, nullable=False),
    Column("kind", String(20), nullable=False),  # firing | resolved
    Column("rule_id", String(100), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("severity", String(20), nullable=False),
    Column("payload", Text, nullable=False),  # JSON: titles, remediation, place, times
    Column("sent_at", Float),
    Column("attempts", Integer, nullable=False, default=0),
)

# The latest verdict of each rule on each subject: what the pass-ratio metric counts.
rule_results = Table(
    "rule_results",
    metadata,
    Column("rule_id", String(100), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("district", String(200), nullable=False, default=""),
    Column("commune", String(200), nullable=False, default=""),
    Column("ok", Boolean, nullable=False),
    Column("at", Float, nullable=False),
    PrimaryKeyConstraint("rule_id", "subject"),
)

ALERT_TABLES = (alerts, alert_history, silences, maintenance_windows, notifications, rule_results)

# ---- schema 3: mail (issue 6) ---------------------------------------------------------

# What a recipient should be told and has not been yet: routed from `notifications` (and
# escalations) in the transaction that marks them sent, merged into one message per
# recipient when its rate limit allows; `message_id` is then the outbox row that carried it
# (kept, not deleted: `dedup_key` makes an escalation happen once, across restarts).
mail_queue = Table(
    "mail_queue",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recipient", String(100), nullable=False, index=True),
    Column("created_at", Float, nullable=False),
    Column("kind", String(20), nullable=False),  # firing | resolved | escalation
    Column("payload", Text, nullable=False),
    Column("dedup_key", String(400), unique=True),
    Column("message_id", Integer, index=True),
)

# Every message, persisted before the first attempt. state: pending (to send at
# next_attempt_at) | sent | partial (some recipients refused) | failed (5xx, or attempts
# exhausted). `refused` is JSON {address: "code reply"}. `dedup_key` stops a digest twice.
mail_outbox = Table(
    "mail_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", Float, nullable=False),
    Column("recipient", String(100), nullable=False),
    Column("to_addrs", Text, nullable=False),  # JSON list
    Column("kind", String(20), nullable=False),  # alerts | digest | test
    Column("subject", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("state", String(20), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("sent_at", Float),
    Column("last_error", Text, nullable=False, default=""),
    Column("refused", Text, nullable=False, default="{}"),
    Column("dedup_key", String(400), unique=True),
    # Schema 11: files the message carries (the monthly report's PDF), JSON
    # [{"name", "type", "data": base64}]: kept with the message, so a retry sends the same bytes.
    Column("attachments", Text, nullable=False, server_default="[]"),
)

MAIL_TABLES = (mail_queue, mail_outbox)

# ---- schema 4: meetings (one-off meetings added from the CLI; recurring ones live in config) -

meetings = Table(
    "meetings",
    metadata,
    Column("meeting_id", Integer, primary_key=True, autoincrement=True),
    Column("title", String(500), nullable=False),
    Column("starts_at", Float, nullable=False),
    Column("duration", Float, nullable=False),
    Column("rooms", Text, nullable=False),  # JSON list of names, ["all"] for every room
    Column("created_at", Float, nullable=False),
    Column("cancelled_at", Float),
)

# Each room's verdict when a meeting started (history: was the room ready for each meeting).
meeting_results = Table(
    "meeting_results",
    metadata,
    Column("meeting_id", String(40), nullable=False),  # as `meeting list` shows it
    Column("agent_id", String(32), nullable=False),
    Column("title", String(500), nullable=False),
    Column("starts_at", Float, nullable=False),
    Column("room", String(500), nullable=False),
    Column("verdict", String(10), nullable=False),  # go | no-go
    Column("state", String(10), nullable=False),  # green | amber | red | silent
    Column("reasons", Text, nullable=False),  # JSON list
    Column("checked_at", Float),
    Column("recorded_at", Float, nullable=False),
    PrimaryKeyConstraint("meeting_id", "agent_id"),
)

# ---- schema 9: rollups and retention (issue 16) --------------------------------------------

# What the history keeps for years: per agent, bucket and metric, a collector.model.Stat
# (count, sum, least, greatest). Hourly buckets become daily ones past `retention.hourly`.
rollups = Table(
    "rollups",
    metadata,
    Column("span", Integer, nullable=False),  # 3600 | 86400 seconds
    Column("start", Float, nullable=False),  # Unix seconds
    Column("agent_id", String(32), nullable=False),
    Column("section", String(50), nullable=False),  # a report section, availability, rule
    Column("metric", String(200), nullable=False),  # dotted path in the section, or rule id
    Column("count", BigInteger, nullable=False),
    Column("total", Float, nullable=False),
    Column("low", Float, nullable=False),
    Column("high", Float, nullable=False),
    PrimaryKeyConstraint("span", "start", "agent_id", "section", "metric"),
)

# Where each step of the retention pass has got to, moved in the transaction of its work:
# `rolled` (received_at, agent_id, seq of the last report rolled up), `expected` (the hour
# whose expected counts are being written, and the last agent written).
retention_marks = Table(
    "retention_marks",
    metadata,
    Column("name", String(20), primary_key=True),
    Column("at", Float, nullable=False),
    Column("agent_id", String(32), nullable=False, default=""),
    Column("seq", BigInteger, nullable=False, default=0),
)

# ---- schema 15: packed reports -------------------------------------------------------------

# Raw reports past `retention.pack`, moved out of `reports` by the retention pass: one row per
# agent, spool and arrival window (collector.retention.PACK_WINDOW), the reports compressed
# together (collector.store.blocks). Seq ranges of one agent may interleave only for reports that
# arrived late into a gap; `collector.store.rollups` reads both tables as one history.
report_blocks = Table(
    "report_blocks",
    metadata,
    Column("agent_id", String(32), ForeignKey("agents.agent_id"), nullable=False),
    Column("first_seq", BigInteger, nullable=False),  # stored seqs (collector.model.stored_seq)
    Column("last_seq", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    Column("first_received", Float, nullable=False),
    Column("last_received", Float, nullable=False),  # expiry: the block goes as a whole
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("agent_id", "first_seq"),
    Index("report_blocks_received", "last_received"),
)

# ---- schema 10: software inventory ---------------------------------------------------------

# The last full software list of each agent: reports carry the list only when it changed (the
# hash in every one), so a hash-only report never replaces it (docs/probes.md, software).
software_inventories = Table(
    "software_inventories",
    metadata,
    Column("agent_id", String(32), ForeignKey("agents.agent_id"), primary_key=True),
    Column("seq", BigInteger, nullable=False),  # stored_seq of the report that carried it
    Column("collected_at", Float, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("source", String(32), nullable=False),
    Column("programs", Text, nullable=False),  # JSON list of the proto's InstalledProgram
)

# ---- schema 12: central agent settings (collector/agent_settings.py, docs/fleet.md) ---------

# Every change of a layer is a row: the layer's whole document after the change, who made it,
# when and why. The newest version of each layer is the one in force; "{}" removes a layer.
settings_layers = Table(
    "settings_layers",
    metadata,
    Column("change_id", Integer, primary_key=True, autoincrement=True),
    Column("layer", String(600), nullable=False),  # "defaults", "role:workstation", ...
    Column("version", Integer, nullable=False),  # 1, 2, ... per layer
    Column("document", Text, nullable=False),  # JSON object, keys as in agent.yaml
    Column("author", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("layer", "version"),
)

# ---- schema 14: agent releases (issue 18, self-update) -------------------------------------

# A signed release: the manifest exactly as signed (the package files live in
# `releases.dir`), and its rollout. Offered to agents of its channel once rolled out, to a
# stable share of them and/or to places (docs/fleet.md, Releases).
releases = Table(
    "releases",
    metadata,
    Column("version", String(50), primary_key=True),
    Column("channel", String(30), nullable=False),
    Column("manifest", LargeBinary, nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column("added_at", Float, nullable=False),
    Column("rolled_out_at", Float),  # None: not offered yet
    Column("share", Integer, nullable=False, default=0),  # percent of the channel's agents
    Column("places", Text, nullable=False, default="[]"),  # JSON [{district, commune, unit}]
    Column("report_within", Float, nullable=False),  # seconds; later = failed
    Column("withdrawn_at", Float),
)
