"""The store: tokens, agents, report history and latest snapshots, one transaction per change."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import secrets
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    String,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    update,
)

from canhgac_common import refusal
from canhgac_common.i18n import gettext_ as _
from canhgac_common.output import iso_time
from canhgac_common.text import printable
from collector.errors import AuthError, InvalidRequest, NotFoundError, StoreError
from collector.model import (
    MAX_SEQ,
    SEQ_BITS,
    SETTINGS_KEY,
    SOFTWARE_SECTION,
    SPOOL_KEY,
    UPDATE_KEY,
    AgentRecord,
    Placement,
    Report,
    TokenRecord,
    status_key,
    stored_seq,
)
from collector.store.alerts import AlertTables
from collector.store.base import Part
from collector.store.database import Database
from collector.store.fleet import FleetTables
from collector.store.hotpath import AgentRow, HotPath
from collector.store.inventory import InventoryTables
from collector.store.mail import MailTables
from collector.store.meetings import MeetingTables
from collector.store.releases import ReleaseTables
from collector.store.rollups import RollupTables
from collector.store.schema import (
    PLACE_COLUMNS,
    agents,
    report_blocks,
    reports,
    snapshots,
    spools,
    tokens,
)
from collector.store.settings import SettingsTables

__all__ = ["Enrollment", "MachineFacts", "Store"]

log = logging.getLogger(__name__)


TOKEN_PREFIX = "cgt"  # noqa: S105 (a prefix, not a secret)

# What each machine fact may hold: its column's length.
_FACT_CHARS: dict[str, int] = {
    c.name: c.type.length
    for c in agents.c
    if c.name in ("machine_id", "hostname", "os_name", "os_version", "agent_version")
    and isinstance(c.type, String)
    and c.type.length
}
_MACHINE_ID_CHARS = _FACT_CHARS["machine_id"]


@dataclass(frozen=True)
class MachineFacts:
    machine_id: str
    hostname: str
    os_name: str
    os_version: str
    agent_version: str


@dataclass(frozen=True)
class Enrollment:
    agent: AgentRecord  # agent.clone_of set: a new agent, its machine id was taken
    reenrolled: bool  # kept its id: proved by `proof`
    credential: str = field(repr=False)  # shown once, to the agent; only its hash is kept
    # What let a re-enrollment keep the agent id: "credential" (the previous one) or
    # "token" (a token made with `--replaces AGENT`); "" for a new agent.
    proof: str = ""


# Group commit bound: jobs per transaction.
_GROUP_COMMIT_JOBS = 64


@dataclass
class _Job:
    agent_id: str
    batch: Sequence[Report]
    now: float
    # The store's seq of each report of `batch` (collector.model.stored_seq).
    keys: list[int]
    # Set when the job is done (result or error) or when its caller is to lead.
    wake: threading.Event = field(default_factory=threading.Event)
    leads: bool = False
    result: tuple[list[int], int] | None = None
    error: StoreError | None = None


def _hash(secret: str) -> str:
    # Secrets are 192-bit random strings, so a fast hash is enough (nothing to brute-force).
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(value: str, parts: int) -> list[str] | None:
    fields = value.split(".")
    return fields if len(fields) == parts and all(fields) else None


def _bounded(facts: MachineFacts) -> MachineFacts:
    """The facts as stored. The machine id must fit its column (the agent sends 32 hex
    characters); the free text is cut to its column's length, with control characters
    replaced, since a hostname is shown in tables, logs and metric labels (a 1 MB or a
    multi-line hostname is refused by no operating system's API, so it comes from a forger)."""
    if len(facts.machine_id) > _MACHINE_ID_CHARS:
        raise InvalidRequest(
            f"machine_id of {len(facts.machine_id)} characters exceeds {_MACHINE_ID_CHARS}"
        )

    def text(value: str, column: str) -> str:
        value = value[: _FACT_CHARS[column]]
        if value.isprintable():
            return value
        return "".join("\ufffd" if unicodedata.category(c)[0] == "C" else c for c in value)

    return MachineFacts(
        facts.machine_id,
        text(facts.hostname, "hostname"),
        text(facts.os_name, "os_name"),
        text(facts.os_version, "os_version"),
        text(facts.agent_version, "agent_version"),
    )


def _placement(row: Any) -> Placement:
    return Placement(**{c: getattr(row, c) for c in PLACE_COLUMNS})


def _agent(row: Any) -> AgentRecord:
    """From a Row or an AgentRow (the two share column names)."""
    return AgentRecord(
        agent_id=row.agent_id,
        machine_id=row.machine_id,
        hostname=row.hostname,
        os_name=row.os_name,
        os_version=row.os_version,
        agent_version=row.agent_version,
        placement=_placement(row),
        enrolled_at=row.enrolled_at,
        revoked_at=row.revoked_at,
        last_seen_at=row.last_seen_at,
        last_report_at=row.last_report_at,
        last_seq=row.last_seq,
        clone_of=row.clone_of,
        clone_suspected_at=row.clone_suspected_at,
        retired_at=row.retired_at,
        retired_reason=row.retired_reason,
    )


# AgentRecord's fields in order, the placement's columns in its place: list_agents builds
# records from plain tuples (named access on 10,000 Rows was most of an alert tick).
_RECORD_HEAD = ("agent_id", "machine_id", "hostname", "os_name", "os_version", "agent_version")
_RECORD_TAIL = (
    "enrolled_at",
    "revoked_at",
    "last_seen_at",
    "last_report_at",
    "last_seq",
    "clone_of",
    "clone_suspected_at",
    "retired_at",
    "retired_reason",
)
_LIST_AGENTS = select(
    *(agents.c[c] for c in (*_RECORD_HEAD, *PLACE_COLUMNS, *_RECORD_TAIL))
).order_by(agents.c.district, agents.c.commune, agents.c.hostname)


def _agent_of(r: Any) -> AgentRecord:
    """From a _LIST_AGENTS row."""
    (
        a_id,
        m_id,
        host,
        os_name,
        os_version,
        version,
        pr,
        di,
        co,
        un,
        ro,
        en,
        rv,
        se,
        rp,
        sq,
        cl,
        cs,
        rt,
        rr,
    ) = r
    return AgentRecord(
        a_id,
        m_id,
        host,
        os_name,
        os_version,
        version,
        Placement(pr, di, co, un, ro),
        en,
        rv,
        se,
        rp,
        sq,
        cl,
        cs,
        rt,
        rr,
    )


# Enroll's statements, built once with bound parameters: statements built per call with their
# values cost SQLAlchemy ~3 ms of CPU per enrollment (a fleet re-enrolling at once, and the
# benchmarks' 10,000-agent set-ups).
_ENROLL_TOKEN = select(tokens).where(tokens.c.token_id == bindparam("token"))
# The agent a machine id belongs to: the oldest active one not itself flagged as a clone.
_ENROLL_MACHINE = (
    select(agents.c.agent_id)
    .where(agents.c.machine_id == bindparam("machine"), agents.c.revoked_at.is_(None))
    .order_by(agents.c.clone_of.is_not(None), agents.c.enrolled_at)
    .limit(1)
)
_ENROLL_UPDATE = update(agents).where(agents.c.agent_id == bindparam("agent"))
# One use of the token, counted only while it has one left (and is live): the check and the
# count are one statement, so concurrent enrollments cannot all pass a check made before any
# of them counted (PostgreSQL re-checks the condition on the row a concurrent use updated).
_ENROLL_USE = (
    update(tokens)
    .where(
        tokens.c.token_id == bindparam("token"),
        tokens.c.revoked_at.is_(None),
        tokens.c.expires_at > bindparam("now"),
        or_(tokens.c.max_uses.is_(None), tokens.c.uses < tokens.c.max_uses),
    )
    .values(uses=tokens.c.uses + literal_column("1"))
)
_ENROLL_AGENT = select(agents).where(agents.c.agent_id == bindparam("agent"))
_ACTIVE = select(agents.c.agent_id).where(
    agents.c.agent_id == bindparam("agent"), agents.c.revoked_at.is_(None)
)


class Store(Part):
    """SQLite (WAL) by default, PostgreSQL by URL; acks are given only after `ingest` commits.

    Made of parts over one `Database`: this object holds tokens, agents and reports (the ack
    path); `alerts`, `mail`, `meetings`, `scrape`, `rollups` and `inventory` hold their own
    tables, and each consumer is handed the part it needs."""

    def __init__(self, url: str, sqlite_synchronous: str = "full") -> None:
        super().__init__(Database(url, sqlite_synchronous))
        self.url, self.dialect = url, self._db.dialect
        self.alerts = AlertTables(self._db)
        self.mail = MailTables(self._db)
        self.meetings = MeetingTables(self._db)
        self.scrape = FleetTables(self._db)
        self.rollups = RollupTables(self._db)
        self.inventory = InventoryTables(self._db)
        self.settings = SettingsTables(self._db)
        self.releases = ReleaseTables(self._db)
        self._queue: list[_Job] = []
        self._queue_lock = threading.Lock()
        self._committing = False
        # (agent, spool id) -> the spool's ordinal, and each agent's newest ordinal: known
        # spools cost the ack path nothing. Spools are never renumbered, so this never goes
        # stale but for a newer spool another collector registered, which the next report
        # of that spool brings here.
        self._ordinals: dict[tuple[str, int], int] = {}
        self._newest_spool: dict[str, int] = {}
        # Unix time of the first failed ingest write since the last one that succeeded:
        # /readyz says not ready while it is set (a full disk, a read-only database).
        self.write_failing_since: float | None = None
        self._hot = HotPath(self._engine.dialect)

    @property
    def engine(self) -> Engine:
        """For collector.leader only (advisory locks need a session of their own)."""
        return self._engine

    def close(self) -> None:
        self._db.close()

    def ping(self) -> bool:
        return self._db.ping()

    def reclaim(self, pace: Callable[[], None], stopped: Callable[[], bool]) -> int:
        """After retention deleted rows: SQLite's freed pages given back (paced)."""
        return self._db.reclaim(pace, stopped)

    def ready(self) -> bool:
        """The store answers and its last ingest write did not fail (/readyz)."""
        return self.write_failing_since is None and self.ping()

    # ---- tokens -------------------------------------------------------------------------

    def create_token(
        self,
        placement: Placement,
        ttl: float,
        now: float,
        max_uses: int | None = None,
        note: str = "",
        *,
        replaces: str | None = None,
    ) -> tuple[TokenRecord, str]:
        """A new enrollment token; the returned secret string is shown once and never stored.
        `replaces`: the active agent an enrollment from the same machine re-enrolls with it."""
        token_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(24)
        with self._write() as conn:
            if replaces is not None and conn.execute(_ACTIVE, {"agent": replaces}).first() is None:
                raise NotFoundError(
                    _("no active agent {id!r} to replace (see `agent list`)").format(id=replaces)
                )
            conn.execute(
                tokens.insert().values(
                    token_id=token_id,
                    token_hash=_hash(secret),
                    created_at=now,
                    expires_at=now + ttl,
                    max_uses=max_uses,
                    uses=0,
                    note=note,
                    replaces=replaces,
                    **dataclasses.asdict(placement),
                )
            )
        record = TokenRecord(token_id, placement, now, now + ttl, None, max_uses, 0, note, replaces)
        return record, f"{TOKEN_PREFIX}.{token_id}.{secret}"

    def list_tokens(self) -> list[TokenRecord]:
        with self._read() as conn:
            rows = conn.execute(select(tokens).order_by(tokens.c.created_at)).all()
        return [
            TokenRecord(
                r.token_id,
                _placement(r),
                r.created_at,
                r.expires_at,
                r.revoked_at,
                r.max_uses,
                r.uses,
                r.note,
                r.replaces,
            )
            for r in rows
        ]

    def revoke_token(self, token_id: str, now: float) -> None:
        self._change_one(
            update(tokens)
            .where(tokens.c.token_id == token_id, tokens.c.revoked_at.is_(None))
            .values(revoked_at=now),
            _("no active token {id!r} (see `token list`)").format(id=token_id),
        )

    # ---- agents -------------------------------------------------------------------------

    def enroll(
        self, token: str, facts: MachineFacts, now: float, previous_credential: str = ""
    ) -> Enrollment:
        """Trade a token for a credential.

        A machine id already held by an active agent keeps that agent's id (and gets a new
        secret: the old one stops working) only with proof: `previous_credential` is that
        agent's credential, or the token was made to replace it (`--replaces`). Without proof
        the enrollment gets a new agent flagged `clone_of` the existing one, which keeps its
        id and credential: a machine id is readable by any local user and shared by cloned
        images, so it proves nothing. A valid previous credential keeps its agent id whatever
        the machine id says (the machine id is updated).
        """
        parts = _split(token, 3)
        if parts is None or parts[0] != TOKEN_PREFIX:
            raise AuthError("malformed enrollment token")
        _, token_id, secret = parts
        if not facts.machine_id:
            raise AuthError("machine_id is required")
        facts = _bounded(facts)
        with self._write() as conn:
            t = conn.execute(_ENROLL_TOKEN, {"token": token_id}).first()
            if t is None or not hmac.compare_digest(t.token_hash, _hash(secret)):
                raise AuthError("unknown enrollment token")
            if t.revoked_at is not None:
                raise AuthError(f"enrollment token {token_id} was revoked")
            if t.expires_at <= now:
                raise AuthError(f"enrollment token {token_id} has expired")
            used_up = AuthError(f"enrollment token {token_id} has been used {t.max_uses} times")
            if t.max_uses is not None and t.uses >= t.max_uses:
                raise used_up
            agent_id, proof = self._proven(conn, previous_credential), "credential"
            existing = conn.execute(_ENROLL_MACHINE, {"machine": facts.machine_id}).scalar()
            if agent_id is None and t.replaces is not None:
                replaced = conn.execute(_ENROLL_AGENT, {"agent": t.replaces}).first()
                if (
                    replaced is None
                    or replaced.revoked_at is not None
                    or replaced.machine_id != facts.machine_id
                ):
                    raise AuthError(
                        f"enrollment token {token_id} re-enrolls agent {t.replaces}, "
                        "which is not this machine's (or is revoked)"
                    )
                agent_id, proof = t.replaces, "token"
            # Counted before the agent is written: a use that loses the race writes nothing.
            if not conn.execute(_ENROLL_USE, {"token": token_id, "now": now}).rowcount:
                raise used_up
            placement = _placement(t)
            agent_secret = secrets.token_urlsafe(24)
            values = {
                "credential_hash": _hash(agent_secret),
                "token_id": token_id,
                "machine_id": facts.machine_id,
                "hostname": facts.hostname,
                "os_name": facts.os_name,
                "os_version": facts.os_version,
                "agent_version": facts.agent_version,
                **dataclasses.asdict(placement),
            }
            if agent_id is not None:
                conn.execute(_ENROLL_UPDATE, {"agent": agent_id, **values})
            else:
                proof = ""
                agent_id = secrets.token_hex(6)
                conn.execute(
                    agents.insert(),
                    {
                        "agent_id": agent_id,
                        "enrolled_at": now,
                        "last_seq": 0,
                        "clone_of": existing,
                        **values,
                    },
                )
            row = conn.execute(_ENROLL_AGENT, {"agent": agent_id}).one()
        return Enrollment(_agent(row), bool(proof), f"{agent_id}.{agent_secret}", proof)

    @staticmethod
    def _proven(conn: Connection, credential: str) -> str | None:
        """The active agent `credential` belongs to, or None (absent, unknown, revoked)."""
        parts = _split(credential, 2) if credential else None
        if parts is None:
            return None
        row = conn.execute(_ENROLL_AGENT, {"agent": parts[0]}).first()
        if row is None or row.revoked_at is not None:
            return None
        return row.agent_id if hmac.compare_digest(row.credential_hash, _hash(parts[1])) else None

    def authenticate(self, credential: str) -> AgentRecord:
        parts = _split(credential, 2)
        if parts is None:
            raise AuthError("malformed credential", refusal.MALFORMED)
        agent_id, secret = parts
        with self._cursor(write=False) as cursor:
            cursor.execute(self._hot.select_agent, {"id": agent_id})
            found = cursor.fetchone()
        row: Any = AgentRow(*found) if found is not None else None
        if row is None or not hmac.compare_digest(row.credential_hash, _hash(secret)):
            raise AuthError("unknown credential", refusal.UNKNOWN)
        if row.retired_at is not None:
            why = f" ({printable(row.retired_reason)})" if row.retired_reason else ""
            raise AuthError(
                f"agent {agent_id} was retired at {iso_time(row.retired_at)}{why}: "
                "the machine is out of service",
                refusal.RETIRED,
            )
        if row.revoked_at is not None:
            raise AuthError(
                f"agent {agent_id} was revoked at {iso_time(row.revoked_at)}: "
                "re-enroll this machine with a new token",
                refusal.REVOKED,
            )
        return _agent(row)

    def list_agents(self, pace: Callable[[], None] | None = None) -> list[AgentRecord]:
        """Every agent, revoked included. `pace` is called between chunks of rows: the alert
        timer passes one so that reading 10,000 agents lets the Submit handlers run."""
        out: list[AgentRecord] = []
        with self._read() as conn:
            for rows in conn.execute(_LIST_AGENTS).partitions(500):
                out += map(_agent_of, rows)
                if pace is not None:
                    pace()
        return out

    def get_agent(self, agent_id: str) -> AgentRecord:
        with self._read() as conn:
            row = conn.execute(select(agents).where(agents.c.agent_id == agent_id)).first()
        if row is None:
            raise NotFoundError(_("no agent {id!r} (see `agent list`)").format(id=agent_id))
        return _agent(row)

    def revoke_agent(self, agent_id: str, now: float) -> None:
        """Refuse the agent's credential from now on. Agents flagged as its possible clones
        lose the flag: the operator has chosen which of them is the machine."""
        with self._write() as conn:
            done: Any = conn.execute(
                update(agents)
                .where(agents.c.agent_id == agent_id, agents.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            if not done.rowcount:
                raise NotFoundError(
                    _("no active agent {id!r} (see `agent list`)").format(id=agent_id)
                )
            conn.execute(update(agents).where(agents.c.clone_of == agent_id).values(clone_of=None))

    def retire_agent(self, agent_id: str, now: float, reason: str = "") -> AgentRecord:
        """Take the agent's machine out of service: kept for the audit trail (its reports,
        rollups and alert history stay), its credential refused like a revoked one, and gone
        from every figure of active agents. An agent revoked earlier keeps that time."""
        with self._write() as conn:
            row = conn.execute(select(agents).where(agents.c.agent_id == agent_id)).first()
            if row is None:
                raise NotFoundError(
                    _("no agent {id!r} (see `agent list --all`)").format(id=agent_id)
                )
            if row.retired_at is not None:
                raise NotFoundError(
                    _("agent {id!r} was already retired at {at}").format(
                        id=agent_id, at=iso_time(row.retired_at)
                    )
                )
            revoked = row.revoked_at if row.revoked_at is not None else now
            conn.execute(
                update(agents)
                .where(agents.c.agent_id == agent_id)
                .values(revoked_at=revoked, retired_at=now, retired_reason=reason)
            )
            conn.execute(update(agents).where(agents.c.clone_of == agent_id).values(clone_of=None))
            done = conn.execute(select(agents).where(agents.c.agent_id == agent_id)).one()
        return _agent(done)

    # ---- reports ------------------------------------------------------------------------

    def ingest(self, agent_id: str, batch: Sequence[Report], now: float) -> tuple[list[int], int]:
        """Store reports exactly once by (agent, seq), durably.

        Returns (every seq now durably stored, including earlier duplicates; how many were new).
        Only after this returns may the collector acknowledge them.

        Group commit: concurrent callers share one transaction (and one fsync). A caller that
        finds no commit in progress leads: it commits everything queued (at most
        _GROUP_COMMIT_JOBS a transaction) until its own job is done, then hands the lead to the
        oldest caller still queued. The others sleep until their job is done or the lead is
        theirs: no polling, and a woken follower always has its answer or the lead.
        """
        job = _Job(agent_id, batch, now, self._keys(agent_id, batch, now))
        with self._queue_lock:
            self._queue.append(job)
            job.leads = not self._committing
            self._committing = True
        if not job.leads:
            job.wake.wait()
        if job.leads:
            self._lead(job)
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def _lead(self, own: _Job) -> None:
        """Commit queued jobs until `own` is done; then pass the lead on, or end it."""
        try:
            while own.result is None and own.error is None:
                with self._queue_lock:
                    jobs = self._queue[:_GROUP_COMMIT_JOBS]
                    del self._queue[:_GROUP_COMMIT_JOBS]
                self._commit(jobs)
        finally:
            with self._queue_lock:
                if self._queue:
                    heir = self._queue[0]
                    heir.leads = True
                    heir.wake.set()
                else:
                    self._committing = False

    def _commit(self, jobs: list[_Job]) -> None:
        try:
            with self._cursor(write=True) as cursor:
                results = self._ingest_jobs(cursor, jobs)
        except Exception as e:  # every waiter must hear about it, whatever it was
            if len(jobs) > 1:
                # One agent's bad report must not cost the others their acks: each job
                # again alone, so only the one that fails fails.
                for j in jobs:
                    self._commit([j])
                return
            error = (
                e
                if isinstance(e, StoreError)
                else StoreError(_("store write failed: {error}").format(error=e))
            )
            if self.write_failing_since is None:
                self.write_failing_since = jobs[0].now
            for j in jobs:
                j.error = error
                j.wake.set()
            return
        self.write_failing_since = None
        for j, result in zip(jobs, results, strict=True):
            j.result = result
            j.wake.set()

    def _keys(self, agent_id: str, batch: Sequence[Report], now: float) -> list[int]:
        """The stored seq of each report, registering spools not seen before."""
        keys = []
        for r in batch:
            if not 1 <= r.seq <= MAX_SEQ:  # decode rejects these; past it they would collide
                raise InvalidRequest(f"seq {r.seq} is outside 1..{MAX_SEQ}")
            ordinal = self._ordinals.get((agent_id, r.spool_id))
            if ordinal is None:
                ordinal = self._register_spool(agent_id, r, now)
            keys.append(stored_seq(ordinal, r.seq))
        return keys

    def _register_spool(self, agent_id: str, first: Report, now: float) -> int:
        """The ordinal of `first`'s spool: found, or the next one for the agent (a spool the
        agent started after a reinstall, a re-image or a lost spool)."""
        signed = _signed(first.spool_id)
        with self._read() as conn:
            ordinals = self._spool_ordinals(conn, agent_id)
        ordinal = ordinals.get(signed)
        for attempt in range(3):
            if ordinal is not None:
                break
            try:
                ordinals, ordinal = self._add_spool(agent_id, signed, first.seq, now)
            except StoreError:
                # Registered meanwhile by a concurrent Submit (of this collector or another,
                # on PostgreSQL): the unique keys refused the second; read what won.
                if attempt == 2:
                    raise
                with self._read() as conn:
                    ordinals = self._spool_ordinals(conn, agent_id)
                ordinal = ordinals.get(signed)
        assert ordinal is not None
        self._ordinals[agent_id, first.spool_id] = ordinal
        self._newest_spool[agent_id] = max(
            self._newest_spool.get(agent_id, 0), ordinal, *ordinals.values()
        )
        return ordinal

    def _add_spool(
        self, agent_id: str, spool_id: int, first_seq: int, now: float
    ) -> tuple[dict[int, int], int]:
        """Register a spool not seen before; (the agent's spools, its ordinal)."""
        with self._write() as conn:
            ordinals = self._spool_ordinals(conn, agent_id)
            ordinal = ordinals.get(spool_id)
            if ordinal is not None:
                return ordinals, ordinal
            ordinal = max(ordinals.values(), default=-1) + 1
            lost = self._gap(conn, agent_id, ordinal - 1) if ordinal else 0
            conn.execute(
                spools.insert().values(
                    agent_id=agent_id,
                    spool_id=spool_id,
                    ordinal=ordinal,
                    first_seen_at=now,
                    first_seq=first_seq,
                    lost_before=lost,
                )
            )
        if ordinal:
            log.warning(
                "agent %s numbers reports with a new spool (its %d.; %d reports of the one"
                " before never arrived): reinstalled, re-imaged or spool lost",
                agent_id,
                ordinal + 1,
                lost,
            )
        return ordinals, ordinal

    @staticmethod
    def _spool_ordinals(conn: Connection, agent_id: str) -> dict[int, int]:
        rows = conn.execute(
            select(spools.c.spool_id, spools.c.ordinal).where(spools.c.agent_id == agent_id)
        ).all()
        return {int(r.spool_id): int(r.ordinal) for r in rows}

    @staticmethod
    def _extent(conn: Connection, agent_id: str, ordinal: int) -> tuple[int, int]:
        """(reports stored, highest agent seq) of the agent's spool `ordinal`."""
        low, high = stored_seq(ordinal, 0), stored_seq(ordinal + 1, 0)
        count, top = conn.execute(
            select(func.count(), func.max(reports.c.seq)).where(
                reports.c.agent_id == agent_id, reports.c.seq > low, reports.c.seq < high
            )
        ).one()
        b = report_blocks.c  # a block never spans two spools
        packed, packed_top = conn.execute(
            select(func.coalesce(func.sum(b.count), 0), func.max(b.last_seq)).where(
                b.agent_id == agent_id, b.first_seq > low, b.first_seq < high
            )
        ).one()
        tops = [t for t in (top, packed_top) if t is not None]
        return int(count) + int(packed), int(max(tops) - low) if tops else 0

    def _gap(self, conn: Connection, agent_id: str, ordinal: int) -> int:
        """Seqs of spool `ordinal` that the collector never got although it got later ones."""
        count, last = self._extent(conn, agent_id, ordinal)
        return last - count

    def _ingest_jobs(self, cursor: Any, jobs: list[_Job]) -> list[tuple[list[int], int]]:
        """One statement per table for the whole group, however many agents it holds."""
        rows = [
            {
                "agent_id": j.agent_id,
                "seq": key,
                "boot_id": r.boot_id,
                "collected_at": r.collected_at,
                "received_at": j.now,
                "payload": "" if r.wire else _payload(r),
                "wire": r.wire or None,
            }
            for j in jobs
            for r, key in zip(j.batch, j.keys, strict=True)
        ]
        inserted = self._hot.insert_reports(cursor, rows)
        results: list[tuple[list[int], int]] = []
        new_by_agent: dict[str, list[tuple[Report, int]]] = {}
        touched: dict[str, dict[str, Any]] = {}
        suspects: list[dict[str, Any]] = []
        for j in jobs:
            # A row sent twice in one group (concurrent retries) is new for one job only.
            new = [
                (r, k) for r, k in zip(j.batch, j.keys, strict=True) if (j.agent_id, k) in inserted
            ]
            inserted.difference_update((j.agent_id, k) for _, k in new)
            results.append(([r.seq for r in j.batch], len(new)))
            new_by_agent.setdefault(j.agent_id, []).extend(new)
            agent = touched.setdefault(j.agent_id, {"id": j.agent_id, "seen": j.now})
            agent["seen"] = max(agent["seen"], j.now)
            if new:
                agent["seq"] = max(agent.get("seq", 0), *(k for _, k in new))
                agent["at"] = max(agent.get("at", 0.0), *(r.collected_at for r, _ in new))
            conflicts = self._conflicts(cursor, j, new)
            newest = self._newest_spool.get(j.agent_id, 0)
            if conflicts or any(k >> SEQ_BITS < newest for _, k in new):
                suspects.append({"id": j.agent_id, "now": j.now, "conflicts": conflicts})
        if suspects:
            cursor.executemany(self._hot.suspect_clone, suspects)
            for s in suspects:
                log.warning(
                    "agent %s: reports of two live spools, or a seq again with other content"
                    " (%d refused): a cloned machine or a shared credential",
                    s["id"],
                    s["conflicts"],
                )
        snapshot_rows = []
        for agent_id, new in new_by_agent.items():
            # Newest first: each section is taken (and decoded, and encoded) once, from the
            # newest report carrying it; older reports fill in only what newer ones lack.
            have: set[str] = set()
            for r, key in sorted(new, key=lambda n: n[1], reverse=True):
                for section, data in _snapshot_sections(r, have).items():
                    have.add(section)
                    snapshot_rows.append(
                        {
                            "agent_id": agent_id,
                            "section": section,
                            "seq": key,
                            "collected_at": r.collected_at,
                            "data": _json(data),
                        }
                    )
        if snapshot_rows:
            cursor.executemany(self._hot.upsert_snapshot, snapshot_rows)
        inventories = _inventory_rows(new_by_agent)
        if inventories:
            cursor.executemany(self._hot.upsert_inventory, inventories)
        for statement, params in (
            (self._hot.advance_agent, [a for a in touched.values() if "seq" in a]),
            (self._hot.touch_agent, [a for a in touched.values() if "seq" not in a]),
        ):
            if params:
                cursor.executemany(statement, params)
        return results

    def _conflicts(self, cursor: Any, job: _Job, new: list[tuple[Report, int]]) -> int:
        """Reports of `job` refused as duplicates whose stored namesake differs: the same
        (spool, seq) from two machines. Read only when a batch had duplicates (a retry)."""
        fresh = {k for _, k in new}
        conflicts = 0
        for r, key in zip(job.batch, job.keys, strict=True):
            if key in fresh:
                continue
            cursor.execute(self._hot.select_report_origin, {"id": job.agent_id, "seq": key})
            stored = cursor.fetchone()
            if stored is not None and (stored[0], stored[1]) != (r.boot_id, r.collected_at):
                conflicts += 1
        return conflicts

    def spools(self, agent_id: str) -> list[dict[str, Any]]:
        """The spools an agent numbered its reports with, oldest first, with what each holds."""
        with self._read() as conn:
            rows = conn.execute(
                select(spools).where(spools.c.agent_id == agent_id).order_by(spools.c.ordinal)
            ).all()
            out = []
            for r in rows:
                count, last = self._extent(conn, agent_id, r.ordinal)
                out.append(
                    {
                        "spool_id": r.spool_id % (1 << 64),
                        "ordinal": r.ordinal,
                        "first_seen_at": r.first_seen_at,
                        "first_seq": r.first_seq,
                        "reports": count,
                        "last_seq": last,
                        "lost_before": r.lost_before,
                    }
                )
        return out

    def report_seqs(self, agent_id: str) -> list[int]:
        """The stored seq of every report kept for one agent, raw or packed, in order."""
        return [r.seq for r in self.rollups.history(agent_id)]

    def history(self, agent_id: str) -> list[tuple[bytes | None, str]]:
        """Every report stored for one agent (raw or packed), in seq order, as stored: (the
        protobuf received, or None for a row kept as JSON; that JSON).
        `collector.decode.stored_report` reads either."""
        return [(r.wire, r.payload) for r in self.rollups.history(agent_id)]

    def snapshot(self, agent_id: str) -> dict[str, Any]:
        """The newest data of each section for one agent."""
        with self._read() as conn:
            rows = conn.execute(
                select(snapshots.c.section, snapshots.c.data).where(
                    snapshots.c.agent_id == agent_id
                )
            ).all()
        return {r.section: json.loads(r.data) for r in rows}

    def with_section(
        self, role: str, section: str
    ) -> list[tuple[AgentRecord, float | None, dict[str, Any] | None]]:
        """Every active agent of `role`, the collection time (agent clock) of its latest
        `section` and the section; None, None when it never reported one."""
        joined = agents.outerjoin(
            snapshots,
            (agents.c.agent_id == snapshots.c.agent_id) & (snapshots.c.section == section),
        )
        with self._read() as conn:
            rows = conn.execute(
                select(agents, snapshots.c.collected_at, snapshots.c.data)
                .select_from(joined)
                .where(agents.c.role == role, agents.c.revoked_at.is_(None))
                .order_by(agents.c.agent_id)
            ).all()
        return [(_agent(r), r.collected_at, json.loads(r.data) if r.data else None) for r in rows]

    def fleet(self) -> list[tuple[AgentRecord, dict[str, Any]]]:
        """Every active agent with its latest snapshot: what /metrics renders."""
        with self._read() as conn:
            rows = conn.execute(
                select(agents, snapshots.c.section, snapshots.c.data)
                .select_from(agents.outerjoin(snapshots, agents.c.agent_id == snapshots.c.agent_id))
                .where(agents.c.revoked_at.is_(None))
                .order_by(agents.c.agent_id)
            ).all()
        out: dict[str, tuple[AgentRecord, dict[str, Any]]] = {}
        for r in rows:
            entry = out.get(r.agent_id)
            if entry is None:
                entry = out[r.agent_id] = (_agent(r), {})
            if r.section is not None:
                entry[1][r.section] = json.loads(r.data)
        return list(out.values())


def _signed(spool_id: int) -> int:
    """The wire's fixed64 as the signed 64 bits both databases store."""
    return spool_id - (1 << 64) if spool_id >= 1 << 63 else spool_id


def _payload(r: Report) -> str:
    """The report as JSON for the history table (dataclasses.asdict would deep-copy it first)."""
    return json.dumps(
        {
            "seq": r.seq,
            "boot_id": r.boot_id,
            "collected_at": r.collected_at,
            "agent_version": r.agent_version,
            "sections": dict(r.sections),
            "errors": r.errors,
            "spool": r.spool,
        },
        ensure_ascii=False,
    )


def _json(data: Any) -> str:
    """JSON text of snapshot data: orjson (a tenth of json.dumps' cost), but orjson writes
    NaN and Infinity as null, so text with a null in it is written by json.dumps instead,
    which keeps them (the readers take both). Decoded sections have no None of their own
    (message_to_plain leaves unset fields out), so this is rare; a false alarm from a string
    containing "null" only costs the slower encoder."""
    try:
        out = orjson.dumps(data)
    except orjson.JSONEncodeError:  # e.g. an int beyond 64 bits: json.dumps takes it
        return json.dumps(data, ensure_ascii=False)
    return json.dumps(data, ensure_ascii=False) if b"null" in out else out.decode()


def _inventory_rows(new_by_agent: dict[str, list[tuple[Report, int]]]) -> list[dict[str, Any]]:
    """Per agent, the newest new report's full software list; hash-only ones give none."""
    rows = []
    for agent_id, new in new_by_agent.items():
        for r, key in sorted(new, key=lambda n: n[1], reverse=True):
            if SOFTWARE_SECTION not in r.sections:
                continue
            section = r.sections[SOFTWARE_SECTION]
            if section.get("complete"):
                rows.append(
                    {
                        "agent_id": agent_id,
                        "seq": key,
                        "collected_at": r.collected_at,
                        "hash": section.get("hash", ""),
                        "source": section.get("source", ""),
                        "programs": _json(section.get("programs", [])),
                    }
                )
                break
    return rows


def _snapshot_sections(r: Report, have: set[str]) -> dict[str, Any]:
    """What one report contributes to the latest snapshot, but for what a newer report of
    the batch already gave (`have`): its sections, per-probe status, the agent's spool."""
    # A section's status always comes with the section itself, so this says it all.
    if (
        SPOOL_KEY in have
        and have.issuperset(r.sections)
        and (not r.errors or all(status_key(e["probe"]) in have for e in r.errors))
    ):
        return {}
    out: dict[str, Any] = {name: r.sections[name] for name in r.sections if name not in have}
    for name in r.sections:
        out[status_key(name)] = {"ok": True, "error": ""}
    for e in r.errors:
        out[status_key(e["probe"])] = {"ok": False, "error": e["message"]}
    out[SPOOL_KEY] = r.spool
    if r.settings:
        out[SETTINGS_KEY] = r.settings
    if r.update is not None:
        out[UPDATE_KEY] = r.update
    return {k: v for k, v in out.items() if k not in have}
