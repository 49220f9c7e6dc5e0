"""The notifier's mail queue and outbox (mixed into Store)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from collector.errors import StoreError
from collector.store.alerts import HistoryEntry, history_entry
from collector.store.base import Part
from collector.store.schema import alert_history, mail_outbox, mail_queue, notifications

__all__ = ["MailTables", "OutboxMessage", "QueuedItem"]


@dataclass(frozen=True)
class QueuedItem:
    id: int
    recipient: str
    created_at: float
    kind: str  # firing | resolved | escalation
    payload: dict[str, Any]


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    created_at: float
    recipient: str
    to_addrs: list[str]
    kind: str
    subject: str
    text: str
    html: str
    state: str  # pending | sent | partial | failed
    attempts: int
    next_attempt_at: float
    sent_at: float | None
    last_error: str
    refused: dict[str, str]


def _message(r: Any) -> OutboxMessage:
    return OutboxMessage(
        r.id,
        r.created_at,
        r.recipient,
        json.loads(r.to_addrs),
        r.kind,
        r.subject,
        r.text,
        r.html,
        r.state,
        r.attempts,
        r.next_attempt_at,
        r.sent_at,
        r.last_error,
        json.loads(r.refused),
    )


class MailTables(Part):
    """The notifier's tables: the mail queue and outbox, and what digests read."""

    def route_notifications(
        self, routed: Sequence[tuple[int, Sequence[tuple[str, str, dict[str, Any]]]]], now: float
    ) -> None:
        """Queue each notification's items (recipient, kind, payload) and mark it sent, in
        one transaction: a restart never routes a notification twice."""
        with self._write() as conn:
            for notification_id, items in routed:
                for recipient, kind, payload in items:
                    conn.execute(
                        mail_queue.insert().values(
                            recipient=recipient,
                            created_at=now,
                            kind=kind,
                            payload=json.dumps(payload, ensure_ascii=False),
                        )
                    )
                conn.execute(
                    update(notifications)
                    .where(notifications.c.id == notification_id)
                    .values(sent_at=now, attempts=notifications.c.attempts + 1)
                )

    def queue_once(
        self, recipient: str, kind: str, payload: dict[str, Any], dedup_key: str, now: float
    ) -> bool:
        """Queue an item unless one with `dedup_key` ever was (escalations)."""
        return self._insert_once(
            mail_queue.insert().values(
                recipient=recipient,
                created_at=now,
                kind=kind,
                payload=json.dumps(payload, ensure_ascii=False),
                dedup_key=dedup_key,
            )
        )

    def _insert_once(self, stmt: Any) -> bool:
        try:
            with self._write() as conn:
                conn.execute(stmt)
        except StoreError as e:
            # The unique dedup_key is the record that this was done before.
            if isinstance(e.__cause__ or e.__context__, IntegrityError):
                return False
            raise
        return True

    def queued(self) -> dict[str, list[QueuedItem]]:
        with self._read() as conn:
            rows = conn.execute(
                select(mail_queue)
                .where(mail_queue.c.message_id.is_(None))
                .order_by(mail_queue.c.id)
            ).all()
        out: dict[str, list[QueuedItem]] = {}
        for r in rows:
            out.setdefault(r.recipient, []).append(
                QueuedItem(r.id, r.recipient, r.created_at, r.kind, json.loads(r.payload))
            )
        return out

    def last_mail_at(self, recipient: str, kind: str) -> float | None:
        """When the newest message of `kind` to `recipient` was put in the outbox."""
        with self._read() as conn:
            found = conn.execute(
                select(func.max(mail_outbox.c.created_at)).where(
                    mail_outbox.c.recipient == recipient, mail_outbox.c.kind == kind
                )
            ).scalar()
        return float(found) if found is not None else None

    def enqueue_mail(
        self,
        recipient: str,
        to_addrs: Sequence[str],
        kind: str,
        *,
        subject: str,
        text: str,
        html: str,
        now: float,
        consumed: Sequence[int] = (),
        dedup_key: str | None = None,
    ) -> bool:
        """Persist a message before any attempt; the queue items it carries are marked with
        its id in the same transaction. False when `dedup_key` was already used."""
        row = {
            "created_at": now,
            "recipient": recipient,
            "to_addrs": json.dumps(list(to_addrs)),
            "kind": kind,
            "subject": subject,
            "text": text,
            "html": html,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": "",
            "refused": "{}",
            "dedup_key": dedup_key,
        }
        try:
            with self._write() as conn:
                key = conn.execute(mail_outbox.insert().values(**row)).inserted_primary_key
                message_id = key[0] if key is not None else None
                if consumed:
                    conn.execute(
                        update(mail_queue)
                        .where(mail_queue.c.id.in_(list(consumed)))
                        .values(message_id=message_id)
                    )
        except StoreError as e:
            if isinstance(e.__cause__ or e.__context__, IntegrityError):
                return False
            raise
        return True

    def due_mail(self, now: float) -> list[OutboxMessage]:
        with self._read() as conn:
            rows = conn.execute(
                select(mail_outbox)
                .where(mail_outbox.c.state == "pending", mail_outbox.c.next_attempt_at <= now)
                .order_by(mail_outbox.c.id)
            ).all()
        return [_message(r) for r in rows]

    def outbox_counts(self) -> dict[str, int]:
        """Messages in the outbox by state (the collector's /metrics)."""
        with self._read() as conn:
            rows = conn.execute(
                select(mail_outbox.c.state, func.count()).group_by(mail_outbox.c.state)
            ).all()
        return {state: n for state, n in rows}

    def outbox(self, states: Sequence[str] = ()) -> list[OutboxMessage]:
        q = select(mail_outbox).order_by(mail_outbox.c.id)
        if states:
            q = q.where(mail_outbox.c.state.in_(list(states)))
        with self._read() as conn:
            rows = conn.execute(q).all()
        return [_message(r) for r in rows]

    def mail_attempted(
        self,
        message_id: int,
        *,
        state: str,
        now: float,
        next_attempt_at: float | None = None,
        error: str = "",
        refused: dict[str, str] | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "state": state,
            "attempts": mail_outbox.c.attempts + 1,
            "last_error": error,
        }
        if state in ("sent", "partial"):
            values["sent_at"] = now
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        if refused is not None:
            values["refused"] = json.dumps(refused, ensure_ascii=False)
        with self._write() as conn:
            conn.execute(update(mail_outbox).where(mail_outbox.c.id == message_id).values(**values))

    def resolved_between(self, district: str, since: float, until: float) -> list[HistoryEntry]:
        """Resolved events of a district's alerts in [since, until) (what the digest lists)."""
        with self._read() as conn:
            rows = conn.execute(
                select(alert_history)
                .where(
                    alert_history.c.event == "resolved",
                    alert_history.c.district == district,
                    alert_history.c.at >= since,
                    alert_history.c.at < until,
                )
                .order_by(alert_history.c.at)
            ).all()
        return [history_entry(r) for r in rows]
