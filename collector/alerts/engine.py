"""Runs the rules: agent rules when a report is stored, fleet rules on a timer; owns alert state."""

from __future__ import annotations

import datetime
import fnmatch
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from canhgac_common.text import printable
from collector.alerts.lifecycle import evolve, expire, observe
from collector.compliance.evaluate import Memo, agent_variables, judge, report_variables
from collector.compliance.loader import load_pack
from collector.compliance.model import Rule, RulePack
from collector.compliance.schema import GROUP_FIELDS
from collector.errors import NotFoundError, RuleError, StoreError
from collector.model import MEETING_ROLE, AgentRecord, Alert, Event, Labels, Report
from collector.sites import Sites
from collector.store import AlertWrite, HistoryEntry, MaintenanceWindow, Silence, Store

__all__ = [
    "AGENT_GONE",
    "AlertEngine",
    "Pacer",
    "fleet_subject",
    "in_maintenance",
    "matches",
    "notification_payload",
    "recurrence_gap",
]

log = logging.getLogger(__name__)

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def notification_payload(
    rule: Rule, a: Alert, resolved_at: float | None = None, ended: str = ""
) -> dict[str, Any]:
    """What a notification carries (the notifier renders mail from it). `ended`: why a
    resolved alert ended without being fixed (a key of AGENT_GONE), else empty."""
    return {
        "rule": rule.id,
        "severity": rule.severity,
        "title": {"vi": rule.title.vi, "en": rule.title.en},
        "remediation": {"vi": rule.remediation.vi, "en": rule.remediation.en},
        "labels": a.labels.as_dict(),
        "started_at": a.started_at,
        "fired_at": a.fired_at,
        "resolved_at": resolved_at,
        **({"ended": ended} if ended else {}),
    }


def fleet_subject(district: str, commune: str) -> str:
    return f"commune:{district}/{commune}" if commune else f"district:{district}"


def matches(matchers: dict[str, str], labels: Labels) -> bool:
    values = labels.as_dict()
    return all(fnmatch.fnmatchcase(values.get(k, ""), glob) for k, glob in matchers.items())


def recurrence_gap(weekdays: tuple[str, ...]) -> float:
    """Seconds between the two closest starts of a window opening on `weekdays` (mon..sun) at
    one time of day: a window longer than that would still be open when it opens again."""
    days = sorted({_WEEKDAYS.index(d) for d in weekdays})
    gaps = [(b - a) % 7 or 7 for a, b in zip(days, [*days[1:], days[0]], strict=True)]
    return min(gaps) * 86400.0


def in_maintenance(w: MaintenanceWindow, now: float) -> bool:
    """True while a recurring window (local time; may run past midnight) is open at `now`."""
    hour, minute = (int(x) for x in w.start.split(":"))
    today = datetime.datetime.fromtimestamp(now).date()
    for back in (0, 1, 2, 3, 4, 5, 6, 7):
        day = today - datetime.timedelta(days=back)
        if _WEEKDAYS[day.weekday()] not in w.weekdays:
            continue
        start = datetime.datetime.combine(day, datetime.time(hour, minute)).timestamp()
        if start <= now < start + w.duration_seconds:
            return True
    return False


def _count(g: dict[str, Any], verdicts: list[tuple[str, bool]]) -> None:
    """Add one member's latest agent-rule verdicts to its group's passing/judged counts."""
    for rule_id, ok in verdicts:
        g["judged"][rule_id] += 1
        g["passing"][rule_id] += ok


# The history detail of an alert ended because its agent left (revoked, or its machine
# retired), and the `ended` word its resolution notice carries: closed, not fixed.
AGENT_GONE = {"revoked": "agent revoked", "retired": "agent retired"}

# Alert keys per write transaction of a tick (`AlertWrite.split`): a few milliseconds of the
# store's writer each.
WRITE_KEYS = 250


class Pacer:
    """Lets the other threads of the process run during a long pass of this one: after each
    `work` seconds it sleeps `pause` seconds, in which the GIL is free.

    A timer tick over 10,000 agents is half a second of pure Python. Without pauses the gRPC
    handlers, which need the GIL at each of their many hand-offs, waited behind it at every
    one: Submit p99 went from 22-48 ms with no ticks to 650-1,000 ms with them, and calls
    were refused at the concurrency limit (bench/sustained.py). Call it once per item."""

    def __init__(self, work: float = 0.005, pause: float = 0.005) -> None:
        self._work = work
        self._pause = pause
        self._since = time.perf_counter()

    def __call__(self) -> None:
        if time.perf_counter() - self._since >= self._work:
            time.sleep(self._pause)
            self._since = time.perf_counter()


class AlertEngine:
    """One worker thread owns the open alerts; reports and ticks are queued to it, so the
    gRPC ack path only enqueues and an evaluation error never reaches an agent."""

    def __init__(
        self,
        store: Store,
        pack: RulePack,
        rules_path: Path,
        *,
        report_interval: float,
        silent_after_intervals: int,
        default_hold: float,
        sites: Sites | None = None,
        clock: Callable[[], float] = time.time,
        on_tick: Callable[[float, float], None] = lambda lag, took: None,
        on_write_error: Callable[[], None] = lambda: None,
        on_notify: Callable[[], None] = lambda: None,
    ) -> None:
        """`on_tick(lag, took)` after each timer tick: how long it waited in the queue and
        how long it ran; `on_write_error` when writing alert state fails (/metrics);
        `on_notify` after notifications were written (the notifier's wake)."""
        self._store = store
        self._on_notify = on_notify
        self._on_tick_done = on_tick
        self._on_write_error = on_write_error
        self.pack = pack
        self._rules_path = rules_path
        self._interval = report_interval
        self._silent_after = report_interval * silent_after_intervals
        self._default_hold = default_hold
        self._sites = sites
        self._clock = clock
        self._alerts: dict[tuple[str, str], Alert] = {a.key: a for a in store.alerts.open_alerts()}
        self._verdicts = store.alerts.rule_verdicts()
        self._memo = Memo()
        # The firing root causes: (district, commune or "") of each, and their alert keys.
        self._suppressors: set[tuple[str, str]] = set()
        self._causes: set[tuple[str, str]] = set()
        self._silences: list[Silence] = []
        self._windows: list[MaintenanceWindow] = []
        self._queue: queue.Queue[tuple[Callable[[], Any], Future[Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="alerts", daemon=True)

    # ---- threads -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            fn, fut = item
            try:
                fut.set_result(fn())
            except Exception as e:
                log.exception("alert evaluation failed")
                fut.set_exception(e)

    def _call(self, fn: Callable[[], Any]) -> Future[Any]:
        fut: Future[Any] = Future()
        self._queue.put((fn, fut))
        return fut

    def submit(self, agent: AgentRecord, reports: Sequence[Report]) -> None:
        """Judge `agent`'s rules on newly stored reports (queued; returns at once)."""
        if reports:
            received = self._clock()
            self._call(lambda: self._on_reports(agent, reports, received))

    def tick(self, now: float | None = None) -> Future[Any]:
        """Fleet rules, silence, hold expiry and notifications, as of `now` (queued)."""
        queued = time.monotonic()

        def run() -> None:
            started = time.monotonic()
            try:
                self._on_tick(self._clock() if now is None else now)
            finally:
                self._on_tick_done(started - queued, time.monotonic() - started)

        return self._call(run)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until everything queued so far has been processed."""
        self._call(lambda: None).result(timeout)

    def reload(self) -> tuple[bool, str]:
        """Load the pack again; on error keep the running one and say why."""
        try:
            pack = load_pack(self._rules_path, self._default_hold)
        except RuleError as e:
            # One line per problem; a problem quoting rule text cannot add lines of its own.
            problems = "\n".join(printable(line, 1000) for line in str(e).splitlines())
            log.error(
                "rule reload refused, keeping %d running rules:\n%s", len(self.pack.rules), problems
            )
            return False, str(e)
        self._call(lambda: self._swap(pack)).result(30.0)
        msg = f"{len(pack.rules)} rules loaded from {', '.join(pack.files)}"
        log.info("rules reloaded: %s", msg)
        return True, msg

    def _swap(self, pack: RulePack) -> None:
        keep = {r.id for r in pack.rules}
        self.pack = pack
        self._memo = Memo()
        self._alerts = {k: a for k, a in self._alerts.items() if k[0] in keep}
        self._verdicts = {k: v for k, v in self._verdicts.items() if k[0] in keep}
        self._store.alerts.forget_rules(keep)

    # ---- evaluation (worker thread only) --------------------------------------------------

    def _observe(self, w: AlertWrite, rule: Rule, labels: Labels, ok: bool, at: float) -> None:
        key = labels.rule_id, labels.subject
        if self._verdicts.get(key) != ok:
            self._verdicts[key] = ok
            w.results.append((labels, ok, at))
        old = self._alerts.get(key)
        new, events = observe(
            old, labels, ok, at, for_seconds=rule.for_seconds, hold_seconds=rule.hold_seconds
        )
        self._record(w, rule, old, new, events)

    def _record(
        self,
        w: AlertWrite,
        rule: Rule,
        old: Alert | None,
        new: Alert | None,
        events: list[tuple[Event, float]],
        *,
        detail: str = "",
        ended: str = "",
    ) -> None:
        if new is old:
            return
        if (
            old is not None
            and new is not None
            and new == evolve(old, last_observed_at=new.last_observed_at)
        ):
            # Only the observation time moved (an open alert seen again): kept in memory and
            # written with the next real change, not one write transaction per report.
            self._alerts[new.key] = new
            if new.key in w.upserts:
                w.upserts[new.key] = new
            return
        labels = (new or old).labels  # type: ignore[union-attr]
        started = (new or old).started_at  # type: ignore[union-attr]
        for event, at in events:
            w.history.append(HistoryEntry(labels, event, at, started, w.now, detail))
            if event == "resolved" and old is not None and old.notified:
                w.notify.append(("resolved", labels, notification_payload(rule, old, at, ended)))
        # One row per key in a batch: an alert that fired and resolved within one replayed
        # backlog must not leave its earlier upsert behind (applied after the delete).
        key = labels.rule_id, labels.subject
        w.upserts.pop(key, None)
        if new is None:
            del self._alerts[key]
            w.deletes.append(key)
        else:
            self._alerts[key] = new
            w.upserts[key] = new

    def _apply(self, w: AlertWrite) -> None:
        try:
            self._store.alerts.apply_alerts(w)
        except StoreError:
            self._on_write_error()
            raise
        if w.notify:
            self._on_notify()

    def _labels(self, rule: Rule, agent: AgentRecord) -> Labels:
        p = agent.placement
        return Labels(
            rule.id, agent.agent_id, rule.severity, p.district, p.commune, p.unit, agent.hostname
        )

    def _on_reports(self, agent: AgentRecord, reports: Sequence[Report], received: float) -> None:
        w = AlertWrite(now=received)
        rules = [r for r in self.pack.agent_rules() if r.scope.matches(agent.placement)]
        for i, report in enumerate(ordered := sorted(reports, key=lambda r: r.collected_at)):
            variables = report_variables(agent, report, self._interval)
            last = i == len(ordered) - 1
            for rule in rules:
                # Silence is measured on the collector's clock: judged once, at arrival.
                if rule.time_dependent and not last:
                    continue
                ok = self._memo.judge(rule, variables)
                if ok is not None:
                    at = received if rule.time_dependent else report.collected_at
                    self._observe(w, rule, self._labels(rule, agent), ok, at)
        touched = set(w.upserts)
        self._reconcile(w, [self._alerts[k] for k in touched if k in self._alerts])
        if w:
            self._apply(w)

    def _on_tick(self, now: float) -> None:
        w = AlertWrite(now=now)
        pace = Pacer()
        self._silences = self._store.alerts.silences(now)
        self._windows = self._store.alerts.maintenance()
        fleet = self._tick_fleet(pace)
        self._retire(w, {a.agent_id for a, _ in fleet}, now, pace)
        self._fleet_rules(w, fleet, now, pace)
        causes = [
            a
            for a in self._alerts.values()
            if a.state == "firing" and (rule := self.pack.get(a.labels.rule_id)) and rule.suppresses
        ]
        self._suppressors = {(a.labels.district, a.labels.commune) for a in causes}
        self._causes = {a.key for a in causes}
        timed = [r for r in self.pack.agent_rules() if r.time_dependent]
        for agent, snapshot in fleet:
            pace()
            rules = [r for r in timed if r.scope.matches(agent.placement)]
            if not rules:
                continue
            silent = (
                now - agent.last_seen_at
                if agent.last_seen_at is not None
                else now - agent.enrolled_at
            )
            if silent <= self._interval:
                # Heard from within one report interval: not silent, and judged at that
                # arrival. Skipping these keeps a tick proportional to the silent machines.
                continue
            variables = agent_variables(agent, snapshot, now, self._interval, max(silent, 0.0))
            for rule in rules:
                ok = judge(rule, variables)
                if ok is not None:
                    self._observe(w, rule, self._labels(rule, agent), ok, now)
        for a in list(self._alerts.values()):
            pace()
            rule = self.pack.get(a.labels.rule_id)
            if rule is not None and a.passing_since is not None:
                new, events = expire(a, now, rule.hold_seconds)
                self._record(w, rule, a, new, events)
        self._reconcile(w, list(self._alerts.values()), pace)
        for part in w.split(WRITE_KEYS):
            self._apply(part)
            pace()  # Submit's commits wait for the store's writer between the parts

    def _retire(self, w: AlertWrite, active: set[str], now: float, pace: Pacer) -> None:
        """The open alerts of an agent no longer active (revoked, or its machine retired) end
        now: nothing is left to fix on it. A firing one resolves with the reason in its
        history and in its notice ("closed: machine revoked", never "fixed"); a pending one
        clears."""
        gone: dict[str, str] = {}
        for a in list(self._alerts.values()):
            pace()
            rule = self.pack.get(a.labels.rule_id)
            if rule is None or rule.kind != "agent" or a.labels.subject in active:
                continue
            if a.labels.subject not in gone:
                gone[a.labels.subject] = self._why_gone(a.labels.subject)
            why = gone[a.labels.subject]
            event: Event = "resolved" if a.state == "firing" else "cleared"
            self._record(w, rule, a, None, [(event, now)], detail=AGENT_GONE[why], ended=why)

    def _why_gone(self, agent_id: str) -> str:
        """ "retired" or "revoked": why an agent left the active ones."""
        try:
            agent = self._store.get_agent(agent_id)
        except NotFoundError:
            return "revoked"
        return "retired" if agent.retired_at is not None else "revoked"

    def _tick_fleet(self, pace: Pacer) -> list[tuple[AgentRecord, dict[str, Any]]]:
        """Active agents, with their stored snapshots only when a timed agent rule or a fleet
        rule reads more than `agent`/`now` (decoding 10,000 snapshots is most of a tick)."""
        timed = [r for r in self.pack.agent_rules() if r.time_dependent]
        needs = any(p[0] not in ("agent", "now") for r in timed for p in r.reads) or any(
            "members" in r.program.variables() for r in self.pack.fleet_rules()
        )
        if needs:
            return self._store.fleet()
        return [(a, {}) for a in self._store.list_agents(pace) if a.revoked_at is None]

    def _fleet_rules(
        self,
        w: AlertWrite,
        fleet: list[tuple[AgentRecord, dict[str, Any]]],
        now: float,
        pace: Pacer,
    ) -> None:
        rules = self.pack.fleet_rules()
        if not rules:
            return
        members = any("members" in r.program.variables() for r in rules)
        counts = sorted(frozenset().union(*(r.counts for r in rules)))
        groups = self._groups(fleet, now, members, counts, pace)
        for rule in rules:
            for (district, commune), g in sorted(groups.items()):
                if bool(commune) != (rule.group_by == "commune"):
                    continue
                if rule.scope.districts and district not in rule.scope.districts:
                    continue
                if rule.scope.communes and commune not in rule.scope.communes:
                    continue
                ok = judge(rule, g)
                if ok is not None:
                    labels = Labels(
                        rule.id, fleet_subject(district, commune), rule.severity, district, commune
                    )
                    self._observe(w, rule, labels, ok, now)

    def _groups(
        self,
        fleet: list[tuple[AgentRecord, dict[str, Any]]],
        now: float,
        wants_members: bool,
        counts: Sequence[str],
        pace: Pacer,
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """The variables of every commune and district: sites.yaml plan plus what reports;
        `members` only when wanted, and passing/judged counts of the `counts` agent rules."""
        groups: dict[tuple[str, str], dict[str, Any]] = {}
        province = self._sites.province if self._sites else ""

        def group(district: str, commune: str) -> dict[str, Any]:
            g = groups.get((district, commune))
            if g is None:
                g = groups[district, commune] = {
                    "group": {
                        **GROUP_FIELDS,
                        "province": province,
                        "district": district,
                        "commune": commune,
                    },
                    "members": [],
                    "passing": dict.fromkeys(counts, 0),
                    "judged": dict.fromkeys(counts, 0),
                    "now": now,
                }
            return g

        if self._sites is not None:
            for d in self._sites.districts:
                dg = group(d.name, "")["group"]
                for u in d.units:
                    dg["expected_machines"] += u.machines
                    dg["expected_meeting_rooms"] += u.meeting_rooms
                for c in d.communes:
                    cg = group(d.name, c.name)["group"]
                    cg["expected_machines"] = c.machines + sum(u.machines for u in c.units)
                    cg["expected_meeting_rooms"] = c.meeting_rooms + sum(
                        u.meeting_rooms for u in c.units
                    )
                    dg["expected_machines"] += cg["expected_machines"]
                    dg["expected_meeting_rooms"] += cg["expected_meeting_rooms"]
        for agent, snapshot in fleet:
            pace()
            p = agent.placement
            silent = now - (agent.last_seen_at or agent.enrolled_at)
            reporting = silent <= self._silent_after
            targets = [group(p.district, "")]
            if p.commune:
                targets.append(group(p.district, p.commune))
            member = (
                agent_variables(agent, snapshot, now, self._interval, max(silent, 0.0))
                if wants_members
                else None
            )
            if member is not None:
                del member["now"]
            # A silent machine's last verdict is not news: only reporting members count.
            verdicts = [
                (r, ok)
                for r in (counts if reporting else ())
                if (ok := self._verdicts.get((r, agent.agent_id))) is not None
            ]
            for g in targets:
                _count(g, verdicts)
                gg = g["group"]
                gg["agents"] += 1
                gg["reporting" if reporting else "silent"] += 1
                if reporting and p.role == MEETING_ROLE:
                    gg["meeting_rooms_reporting"] += 1
                if member is not None:
                    g["members"].append(member)
        for g in groups.values():
            gg = g["group"]
            gg["machines"] = gg["expected_machines"] or gg["agents"]
        return groups

    def _muted(self, a: Alert, now: float) -> bool:
        lab = a.labels
        # Everything inside a place whose root cause fires is explained by it: its machines'
        # alerts, its other group rules (commune.meeting-room during the outage) and, under a
        # district cause, its communes' causes. Only the cause itself is notified.
        for district, commune in self._suppressors:
            inside = lab.district == district and (not commune or lab.commune == commune)
            if inside and (a.key not in self._causes or (not commune and lab.commune != "")):
                return True
        if any(s.starts_at <= now < s.ends_at and matches(s.matchers, lab) for s in self._silences):
            return True
        return any(matches(m.matchers, lab) and in_maintenance(m, now) for m in self._windows)

    def _reconcile(
        self, w: AlertWrite, candidates: list[Alert], pace: Callable[[], None] = lambda: None
    ) -> None:
        """Notify firing alerts that are failing now, not yet notified, and not muted by a
        root-cause incident, a silence or a maintenance window. A replayed backlog whose
        condition already ended never gets here as failing, so it never notifies."""
        for a in candidates:
            pace()
            if not a.failing or a.notified or self._muted(a, w.now):
                continue
            rule = self.pack.get(a.labels.rule_id)
            if rule is None:
                continue
            notified = Alert(**{**a.__dict__, "notified": True})
            self._alerts[a.key] = notified
            w.upserts[a.key] = notified
            w.notify.append(("firing", a.labels, notification_payload(rule, a)))
