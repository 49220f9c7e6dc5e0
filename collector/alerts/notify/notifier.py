"""The notifier: outbox rows of the alert engine, digests and meeting go/no-go summaries to
mail (and alerts to Alertmanager), on a timer."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from canhgac_common.text import printable
from collector.alerts.engine import notification_payload
from collector.alerts.notify import smtp
from collector.alerts.notify.alertmanager import AlertmanagerForwarder
from collector.alerts.notify.config import NotifyConfig, Recipient
from collector.alerts.notify.digest import build_digest
from collector.alerts.notify.meeting import build_meeting_summary
from collector.alerts.notify.render import render_alerts, render_digest, render_meeting
from collector.alerts.notify.routing import (
    due_digests,
    due_meeting_summaries,
    escalation_targets,
    meeting_rooms_for,
    recipients_for,
)
from collector.compliance.model import RulePack
from collector.meetings import MeetingBook
from collector.model import MEETING_ROLE, MEETING_SECTION
from collector.sites import Sites
from collector.store import Store
from collector.store.mail import OutboxMessage

__all__ = ["Notifier"]

log = logging.getLogger(__name__)


class Notifier:
    """Each step is one store transaction, so a restart between steps loses nothing and
    routes nothing twice. `tick(now)` runs them all; tests call it with their own clock."""

    def __init__(
        self,
        store: Store,
        cfg: NotifyConfig,
        *,
        pack: Callable[[], RulePack | None] = lambda: None,
        stale_after: float = 45.0,
        sites: Sites | None = None,
        clock: Callable[[], float] = time.time,
        leading: Callable[[], bool] = lambda: True,
        meetings: MeetingBook | None = None,
        on_send_failure: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self._on_send_failure = on_send_failure  # each failed delivery attempt (/metrics)
        # With several collectors on one PostgreSQL only the leader sends (collector.leader).
        self._leading = leading
        self.cfg = cfg
        self._pack = pack
        self._stale_after = stale_after
        self._sites = sites
        self._clock = clock
        self._meetings = meetings
        self._by_name = {r.name: r for r in cfg.recipients}
        self.alertmanager = (
            AlertmanagerForwarder(cfg.alertmanager, self._annotations, cfg.grafana_url)
            if cfg.alertmanager.url
            else None
        )
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._ticking = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="notifier", daemon=True)

    # ---- the timer -----------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()

    def wake(self) -> None:
        """Run the steps now rather than at the next `every`: the alert engine calls this when
        it has written notifications, so an alert's mail leaves within the second."""
        self._wake.set()

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.cfg.every)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                if self._leading():
                    self.tick()
            except Exception:
                # One bad step (store busy, template bug) must not end notifications.
                log.exception("notifier step failed; trying again next period")

    def tick(self, now: float | None = None) -> None:
        # One tick at a time: a wake and a caller's tick (`notify` CLI, tests) would both
        # compose the same queued items otherwise.
        with self._ticking:
            self._tick(self._clock() if now is None else now)

    def _tick(self, now: float) -> None:
        self.route(now)
        self.escalate(now)
        self.compose(now)
        self.digests(now)
        self.meeting_summaries(now)
        self.deliver(now)
        if self.alertmanager is not None:
            self.alertmanager.tick(self.store.alerts.open_alerts(), now)

    # ---- rules text ----------------------------------------------------------------------

    def _rationale(self) -> dict[str, dict[str, str]]:
        pack = self._pack()
        if pack is None:
            return {}
        return {r.id: {"vi": r.rationale.vi, "en": r.rationale.en} for r in pack.rules}

    def _title(self, lang: str) -> Callable[[str], str]:
        pack = self._pack()

        def title(rule_id: str) -> str:
            rule = pack.get(rule_id) if pack is not None else None
            return getattr(rule.title, lang) if rule is not None else rule_id

        return title

    def _annotations(self, rule_id: str) -> dict[str, str]:
        pack = self._pack()
        rule = pack.get(rule_id) if pack is not None else None
        if rule is None:
            return {"summary": rule_id}
        return {
            "summary": rule.title.vi,
            "summary_en": rule.title.en,
            "description": rule.remediation.vi,
            "description_en": rule.remediation.en,
        }

    def _lang(self, r: Recipient) -> str:
        return r.language or self.cfg.language

    # ---- steps ---------------------------------------------------------------------------

    def route(self, now: float) -> None:
        """The engine's unsent notifications become queue items, one per recipient."""
        while batch := self.store.alerts.unsent_notifications():
            routed = [
                (
                    n.id,
                    [
                        (r.name, n.kind, n.payload)
                        for r in recipients_for(n.payload, self.cfg.recipients)
                    ],
                )
                for n in batch
            ]
            self.store.mail.route_notifications(routed, now)

    def escalate(self, now: float) -> None:
        """A firing, notified alert of an escalating severity, unacknowledged `after`
        since it fired, goes to the next level, once per alert."""
        after = self.cfg.escalation.after
        if after is None:
            return
        pack = self._pack()
        for a in self.store.alerts.open_alerts():
            rule = pack.get(a.labels.rule_id) if pack is not None else None
            if (
                rule is None  # not in the running pack: the engine clears it
                or a.state != "firing"
                or not a.notified
                or a.acked_at is not None
                or a.fired_at is None
                or a.labels.severity not in self.cfg.escalation.severities
                or now - a.fired_at < after
            ):
                continue
            payload = notification_payload(rule, a)
            for r in escalation_targets(self.cfg, a.labels.as_dict()):
                key = f"escalation:{r.name}:{a.labels.rule_id}:{a.labels.subject}:{a.fired_at}"
                self.store.mail.queue_once(r.name, "escalation", payload, key, now)

    def compose(self, now: float) -> None:
        """Everything queued for a recipient becomes one message, at most one alert message
        per `rate_limit` per recipient: a storm waits and leaves as one."""
        rationale = self._rationale()
        for name, items in self.store.mail.queued().items():
            r = self._by_name.get(name)
            if r is None:
                continue  # removed from the config; its items stay for inspection
            last = self.store.mail.last_mail_at(name, "alerts")
            if last is not None and now - last < self.cfg.rate_limit:
                continue
            subject, text, html = render_alerts(
                [(i.kind, i.payload) for i in items],
                self._lang(r),
                self.cfg.grafana_url,
                rationale,
                self.cfg.zone,
            )
            self.store.mail.enqueue_mail(
                name,
                r.to,
                "alerts",
                subject=subject,
                text=text,
                html=html,
                now=now,
                consumed=[i.id for i in items],
            )

    def digests(self, now: float) -> None:
        for period, key, since in due_digests(self.cfg, now):
            for r in self.cfg.recipients:
                if r.role != "district" or not r.district:
                    continue
                lang = self._lang(r)
                ctx = build_digest(
                    self.store,
                    r.district,
                    period=period,
                    since=since,
                    now=now,
                    stale_after=self._stale_after,
                    sites=self._sites,
                    title=self._title(lang),
                )
                subject, text, html = render_digest(ctx, lang, self.cfg.grafana_url, self.cfg.zone)
                self.store.mail.enqueue_mail(
                    r.name,
                    r.to,
                    "digest",
                    subject=subject,
                    text=text,
                    html=html,
                    now=now,
                    dedup_key=f"digest:{r.name}:{key}",
                )

    def meeting_summaries(self, now: float) -> None:
        """One go/no-go summary per meeting occurrence and recipient, `meeting_summary_before`
        the start: the verdicts of the rooms in the recipient's place."""
        before = self.cfg.meeting_summary_before
        if self._meetings is None or before is None:
            return
        # Cancelled meetings are not in the book any more.
        due = due_meeting_summaries(self.cfg, self._meetings.between(now, now + before + 1), now)
        if not due:
            return
        agents = self.store.with_section(MEETING_ROLE, MEETING_SECTION)
        places = {a.agent_id: a.placement for a, _, _ in agents}
        for m in due:
            summary = self._meetings.status(m.id, now)
            for r in self.cfg.recipients:
                rooms = meeting_rooms_for(r, self.cfg, summary.rooms, places)
                if not rooms:
                    continue
                ctx = build_meeting_summary(m, rooms, self._meetings.cfg.zone)
                subject, text, html = render_meeting(ctx, self._lang(r), self.cfg.grafana_url)
                self.store.mail.enqueue_mail(
                    r.name,
                    r.to,
                    "meeting",
                    subject=subject,
                    text=text,
                    html=html,
                    now=now,
                    dedup_key=f"meeting:{r.name}:{m.id}:{m.starts_at:.0f}",
                )

    def deliver(self, now: float) -> None:
        for m in self.store.mail.due_mail(now):
            self._attempt(m, now)

    def _attempt(self, m: OutboxMessage, now: float) -> None:
        body = smtp.build_message(self.cfg.smtp.from_address, m.to_addrs, m.subject, m.text, m.html)
        result = smtp.send(self.cfg.smtp, m.to_addrs, body)
        if result.outcome != "sent":
            self._on_send_failure()
        if result.outcome == "retry" and m.attempts + 1 < self.cfg.retry.max_attempts:
            delay = min(self.cfg.retry.backoff * 2**m.attempts, self.cfg.retry.max_backoff)
            # The SMTP server's reply: bounded and escaped like anything from another host.
            log.warning(
                "mail %d to %s: %s; retry in %.0fs",
                m.id,
                m.recipient,
                printable(result.detail),
                delay,
            )
            self.store.mail.mail_attempted(
                m.id,
                state="pending",
                now=now,
                next_attempt_at=now + delay,
                error=result.detail,
                refused=result.refused,
            )
            return
        state = "failed" if result.outcome == "retry" else result.outcome
        if state != "sent":
            log.error(
                "mail %d to %s %s: %s %s",
                m.id,
                m.recipient,
                state,
                printable(result.detail),
                printable(result.refused, 1000),
            )
        self.store.mail.mail_attempted(
            m.id,
            state=state,
            now=now,
            error="" if state == "sent" else result.detail,
            refused=result.refused,
        )
