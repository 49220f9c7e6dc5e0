"""`canhgac-collector`: serve, tokens, agents, rules, alerts, meetings, store; errors become
one line."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from canhgac_common.i18n import LANGUAGES, N_, choose_language, use_language
from canhgac_common.i18n import gettext_ as _
from canhgac_common.output import (
    Column,
    add_output_options,
    emit_document,
    emit_records,
    iso_time,
    output_parent,
    survive_closed_pipe,
)
from canhgac_common.text import nfc
from canhgac_common.units import duration_option, format_duration
from collector import __version__
from collector.alerts.engine import recurrence_gap
from collector.alerts.notify.render import render_test
from collector.alerts.notify.smtp import build_message
from collector.alerts.notify.smtp import send as send_mail
from collector.app import CollectorApp
from collector.cli_releases import add_release_parsers
from collector.cli_reports import add_report_parsers
from collector.cli_settings import add_settings_parsers
from collector.compliance.loader import load_pack
from collector.config import CollectorConfig, load_config
from collector.errors import CollectorError, ConfigError
from collector.logs import configure_logging
from collector.meetings import MeetingBook, parse_local_time, room_names
from collector.model import ROLES, Meeting, Placement
from collector.processes import Supervisor, processes_for, reload_siblings
from collector.retention import RetentionPass
from collector.sites import load_sites
from collector.store import MaintenanceWindow, Store

__all__ = ["main"]

log = logging.getLogger("canhgac.collector")


def _place(p: Placement) -> dict[str, str | None]:
    """A placement's fields for output; an empty one (no commune, no unit) is null."""
    return {k: v or None for k, v in p.__dict__.items()}


CONFIG_ENV = "CANHGAC_CONFIG"
DEFAULT_CONFIG = Path("/etc/canhgac/collector.yaml")


def config_path(given: Path | None, environ: Mapping[str, str]) -> Path:
    """--config, else $CANHGAC_CONFIG, else /etc/canhgac/collector.yaml if it exists. Never the
    built-in defaults: they would open (and create) an empty store where nobody looks."""
    if given is not None:
        return given
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    if DEFAULT_CONFIG.exists():
        return DEFAULT_CONFIG
    raise ConfigError(
        _(
            "no config: --config not given, {env} not set, and {path} does not exist "
            "(start from configs/collector.example.yaml)"
        ).format(env=CONFIG_ENV, path=DEFAULT_CONFIG)
    )


def _store(cfg: CollectorConfig) -> Store:
    return Store(cfg.store.url, cfg.store.sqlite_synchronous)


def cmd_serve(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    processes = processes_for(cfg, args.processes)
    if args.process_index is None and processes > 1:
        return _supervise(cfg, args, processes)
    supervised = args.process_index is not None
    app = CollectorApp(
        cfg,
        reuse_port=supervised,
        serve_http=args.process_index in (None, 0),
        reload_all=reload_siblings if supervised else None,
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    def on_hup(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=app.reload_rules, name="reload", daemon=True).start()

    # A process of several: Ctrl-C reaches the supervisor, which stops them all in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN if supervised else on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_hup)
    app.start()
    if supervised:
        with contextlib.suppress(OSError):  # a supervisor gone is noticed below
            os.write(args.ready_fd, b"1")  # the supervisor waits for every process to serve
            os.close(args.ready_fd)
    else:
        print(
            _(
                "canhgac-collector {version}: gRPC on {grpc}, metrics on {metrics}, store {store}"
            ).format(
                version=__version__,
                grpc=cfg.grpc_listen,
                metrics=f"http://{cfg.http_listen}/metrics",
                store=cfg.store.url,
            ),
            flush=True,
        )
    # Woken each second: a signal handler runs only when the main thread runs Python, and a
    # wait without a timeout was seen to miss Ctrl-C under `make run`.
    while not stop.wait(1.0):
        if supervised and os.getppid() != args.supervisor:
            log.error("collector process %d: its supervisor is gone, stopping", args.process_index)
            break
    app.stop()
    return 0


def _supervise(cfg: CollectorConfig, args: argparse.Namespace, processes: int) -> int:
    """`serve --processes N`: N collector processes on one gRPC port (collector/processes.py)."""
    path = config_path(args.config, os.environ).resolve()
    lang = ["--lang", args.ui_lang] if args.ui_lang else []

    def command(index: int, ready_fd: int) -> list[str]:
        return [
            *(sys.executable, "-m", "collector", "--config", str(path), *lang, "serve"),
            *("--processes", str(processes), "--process-index", str(index)),
            *("--ready-fd", str(ready_fd), "--supervisor", str(os.getpid())),
        ]

    # With a log file, this process is its one writer and the others' lines pass through it.
    relay = logging.getLogger().handlers[0] if cfg.log_file is not None else None
    supervisor = Supervisor(command, processes, cfg.grpc_listen, log_handler=relay)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping the collector processes", signum)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, lambda *_: supervisor.signal(signal.SIGHUP))
    # POST /-/reload reached process 0, which reloaded itself and asks for the others.
    others = range(1, processes)
    signal.signal(signal.SIGUSR1, lambda *_: supervisor.signal(signal.SIGHUP, others))
    # The schema made or migrated once, here: N processes opening an empty PostgreSQL at once
    # raced on creating the tables (duplicate key on pg_type), and one of them failed.
    _store(cfg).close()
    supervisor.start()
    print(
        _(
            "canhgac-collector {version}: {processes} processes, gRPC on {grpc}, metrics on "
            "{metrics}, store {store}"
        ).format(
            version=__version__,
            processes=processes,
            grpc=cfg.grpc_listen,
            metrics=f"http://{cfg.http_listen}/metrics",
            store=cfg.store.url,
        ),
        flush=True,
    )
    while not stop.wait(1.0):
        supervisor.watch()
    supervisor.stop()
    return 0


def cmd_token_create(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    if cfg.sites_file is not None:
        load_sites(cfg.sites_file).check_place(args.district, args.commune, args.unit)
    ttl: float = args.expires
    if ttl <= 0:
        raise ConfigError(_("--expires 0s: a token must live a while, e.g. 12h or 7d"))
    if args.uses is not None and args.uses < 1:
        raise ConfigError(
            _("--uses {n}: at least 1 (leave it out for any number of uses)").format(n=args.uses)
        )
    placement = Placement(
        province=args.province or cfg.province,
        district=args.district,
        commune=args.commune or "",
        unit=args.unit or "",
        role=args.role,
    )
    uses = args.uses if args.uses is not None or args.replaces is None else 1
    store = _store(cfg)
    try:
        record, token = store.create_token(
            placement, ttl, time.time(), uses, args.note or "", replaces=args.replaces
        )
    finally:
        store.close()
    where = " / ".join(x for x in (placement.district, placement.commune, placement.unit) if x)
    print(token)
    print(
        _("token {id}: {where}, role {role}, expires {expires}").format(
            id=record.token_id,
            where=where,
            role=placement.role,
            expires=iso_time(record.expires_at),
        )
        + (_(", {n} uses").format(n=uses) if uses else "")
        + (
            _(", re-enrolls agent {agent} (same machine id)").format(agent=args.replaces)
            if args.replaces
            else ""
        ),
        file=sys.stderr,
    )
    print(
        _(
            "enroll a machine with: canhgac-agent enroll --collector HOST:PORT "
            "--token-file FILE (the token above in FILE, or in CANHGAC_TOKEN)"
        ),
        file=sys.stderr,
    )
    return 0


TOKEN_COLUMNS: list[Column] = [
    (N_("ID"), "token_id"),
    (N_("STATE"), lambda t: t["state"] + (f", replaces {t['replaces']}" if t["replaces"] else "")),
    (N_("DISTRICT"), "district"),
    (N_("COMMUNE"), "commune"),
    (N_("UNIT"), "unit"),
    (N_("ROLE"), "role"),
    (N_("USES"), lambda t: f"{t['uses']}/{t['max_uses']}" if t["max_uses"] else t["uses"]),
    (N_("EXPIRES"), "expires_at"),
]


def cmd_token_list(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    now = time.time()
    records = []
    for t in _store(cfg).list_tokens():
        state = "revoked" if t.revoked_at else ("expired" if t.expires_at <= now else "active")
        records.append(
            {
                "token_id": t.token_id,
                "state": state,
                **_place(t.placement),
                "uses": t.uses,
                "max_uses": t.max_uses or None,
                "replaces": t.replaces or None,
                "created_at": iso_time(t.created_at),
                "expires_at": iso_time(t.expires_at),
                "revoked_at": iso_time(t.revoked_at),
            }
        )
    emit_records(args, records, TOKEN_COLUMNS)
    return 0


def cmd_token_revoke(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    _store(cfg).revoke_token(args.token_id, time.time())
    print(_("token {id} revoked").format(id=args.token_id))
    return 0


AGENT_COLUMNS: list[Column] = [
    (N_("AGENT"), "agent_id"),
    (N_("STATE"), lambda a: a["state"] + _clone_note(a)),
    (N_("HOST"), "hostname"),
    (N_("DISTRICT"), "district"),
    (N_("COMMUNE"), "commune"),
    (N_("UNIT"), "unit"),
    (N_("ROLE"), "role"),
    (N_("LAST SEEN"), "last_seen_at"),
]


def _clone_note(a: Mapping[str, Any]) -> str:
    if a["state"] in ("revoked", "retired"):
        return ""
    if a["possible_clone_of"]:
        return f", clone of {a['possible_clone_of']}?"
    return ", reports from two machines?" if a["reports_from_two_machines_since"] else ""


def cmd_agent_list(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    stale = cfg.report_interval * cfg.stale_after_intervals
    now = time.time()
    records = []
    for a in _store(cfg).list_agents():
        if a.retired_at is not None:
            if not args.all:
                continue  # out of service: kept for the audit trail, shown with --all
            state = "retired"
        elif a.revoked_at:
            state = "revoked"
        elif a.last_seen_at and now - a.last_seen_at <= stale:
            state = "up"
        else:
            state = "silent"
        records.append(
            {
                "agent_id": a.agent_id,
                "state": state,
                "hostname": a.hostname,
                **_place(a.placement),
                "enrolled_at": iso_time(a.enrolled_at),
                "last_seen_at": iso_time(a.last_seen_at),
                "revoked_at": iso_time(a.revoked_at),
                "retired_at": iso_time(a.retired_at),
                "retired_reason": a.retired_reason or None,
                "possible_clone_of": a.clone_of,
                "reports_from_two_machines_since": iso_time(a.clone_suspected_at),
            }
        )
    emit_records(args, records, AGENT_COLUMNS)
    return 0


def cmd_agent_show(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    store = _store(cfg)
    a = store.get_agent(args.agent_id)
    out = {
        "agent_id": a.agent_id,
        "hostname": a.hostname,
        "machine_id": a.machine_id,
        # Enrolled with this agent's machine id, without proof: a cloned image, a reinstall
        # that lost its credential, or a takeover attempt (revoke the one that is not it).
        "possible_clone_of": a.clone_of,
        # Its own reports came from two machines: a cloned image holding this credential.
        "reports_from_two_machines_since": iso_time(a.clone_suspected_at),
        "placement": _place(a.placement),
        "enrolled_at": iso_time(a.enrolled_at),
        "revoked_at": iso_time(a.revoked_at),
        # Taken out of service (`agent retire`): kept for the audit trail, in no figure since.
        "retired_at": iso_time(a.retired_at),
        "retired_reason": a.retired_reason or None,
        "last_seen_at": iso_time(a.last_seen_at),
        "last_seq": a.last_seq,
        # Each spool it numbered reports with (a new one after a reinstall or a lost spool),
        # and the reports of the one before that never arrived.
        "spools": [
            {
                **s,
                "spool_id": f"{s['spool_id']:016x}",
                "first_seen_at": iso_time(s["first_seen_at"]),
            }
            for s in store.spools(a.agent_id)
        ],
        "snapshot": store.snapshot(a.agent_id),
    }
    emit_document(args, out)
    return 0


def cmd_agent_revoke(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    _store(cfg).revoke_agent(args.agent_id, time.time())
    print(_("agent {id} revoked: its credential is refused from now on").format(id=args.agent_id))
    return 0


def cmd_agent_retire(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    a = _store(cfg).retire_agent(args.agent_id, time.time(), args.reason or "")
    print(
        _(
            "agent {id} ({host}) retired: its credential is refused, its open alerts close as"
            " retired, and it counts in no figure from now on; its history stays"
            " (agent list --all, agent show)"
        ).format(id=a.agent_id, host=a.hostname)
    )
    return 0


def _rules_path(cfg: CollectorConfig, given: Path | None) -> Path:
    path = given or cfg.rules.path
    if path is None:
        raise ConfigError(_("rules.path: not set; name a pack: rules check PATH"))
    return path


def cmd_rules_check(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    pack = load_pack(_rules_path(cfg, args.path), cfg.rules.hold)
    kinds = {k: sum(r.kind == k for r in pack.rules) for k in ("agent", "fleet")}
    print(
        _("ok: {n} rules ({agent} agent, {fleet} fleet) in {files}").format(
            n=len(pack.rules),
            agent=kinds["agent"],
            fleet=kinds["fleet"],
            files=", ".join(pack.files),
        )
    )
    return 0


def cmd_rules_reload(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    host, _sep, port = cfg.http_listen.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 (a listen address, mapped to loopback)
        host = "127.0.0.1"
    url = f"http://{host}:{port}/-/reload"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=30) as r:
            print(r.read().decode().strip())
            return 0
    except urllib.error.HTTPError as e:
        print(
            _("reload refused, the running rules stay:\n{why}").format(
                why=e.read().decode().strip()
            )
        )
        return 1
    except OSError as e:
        raise CollectorError(
            _("cannot reach the collector at {url}: {error}").format(url=url, error=e)
        ) from None


ALERT_COLUMNS: list[Column] = [
    (N_("RULE"), "rule"),
    (N_("SUBJECT"), "subject"),
    (N_("STATE"), lambda a: a["state"] + (" (clearing)" if a["passing_since"] else "")),
    (N_("SEVERITY"), "severity"),
    (N_("DISTRICT"), "district"),
    (N_("COMMUNE"), "commune"),
    (N_("HOST"), "host"),
    (N_("SINCE"), "started_at"),
    (N_("NOTIFIED"), "notified"),
    (N_("ACK"), lambda a: a["acked_by"] or ""),
]


def cmd_alerts_list(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    records = [
        {
            "rule": a.labels.rule_id,
            "subject": a.labels.subject,
            "state": a.state,
            "severity": a.labels.severity,
            "district": a.labels.district or None,
            "commune": a.labels.commune or None,
            "unit": a.labels.unit or None,
            "host": a.labels.host or None,
            "started_at": iso_time(a.started_at),
            "fired_at": iso_time(a.fired_at),
            "passing_since": iso_time(a.passing_since),
            "notified": a.notified,
            "acked_by": a.acked_by,
        }
        for a in _store(cfg).alerts.open_alerts()
    ]
    emit_records(args, records, ALERT_COLUMNS)
    return 0


def cmd_alerts_show(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    store = _store(cfg)
    current = next(
        (a for a in store.alerts.open_alerts() if a.key == (args.rule, args.subject)), None
    )
    history = store.alerts.alert_history(args.rule, args.subject)
    if current is None and not history:
        raise CollectorError(
            _("no alert {rule} on {subject} (see `alerts list`)").format(
                rule=args.rule, subject=args.subject
            )
        )
    episodes = []
    for h in history:
        if h.event == "resolved" and h.started_at is not None:
            episodes.append(
                {
                    "started": iso_time(h.started_at),
                    "fixed": iso_time(h.at),
                    "time_to_remediate_seconds": round(h.at - h.started_at, 1),
                }
            )
    out = {
        "rule": args.rule,
        "subject": args.subject,
        "open": None
        if current is None
        else {
            "state": current.state,
            "started_at": iso_time(current.started_at),
            "fired_at": iso_time(current.fired_at),
            "passing_since": iso_time(current.passing_since),
            "notified": current.notified,
            "acked_by": current.acked_by,
        },
        "remediated": episodes,
        "history": [
            {
                "event": h.event,
                "at": iso_time(h.at),
                "recorded": iso_time(h.recorded_at),
                "detail": h.detail,
            }
            for h in history
        ],
    }
    emit_document(args, out)
    return 0


def _matchers(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, glob = pair.partition("=")
        if not sep or key not in (
            "rule",
            "subject",
            "severity",
            "district",
            "commune",
            "unit",
            "host",
        ):
            raise ConfigError(
                _(
                    "--match {pair}: use LABEL=GLOB with LABEL one of rule, subject, severity, "
                    "district, commune, unit, host"
                ).format(pair=repr(pair))
            )
        out[key] = glob
    if not out:
        raise ConfigError(_("--match: at least one LABEL=GLOB is required"))
    return out


def cmd_silence_add(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    now = time.time()
    s = _store(cfg).alerts.add_silence(
        _matchers(args.match),
        now,
        now + args.duration,
        args.author,
        args.reason,
    )
    print(_("silence {id} until {until}").format(id=s.silence_id, until=iso_time(s.ends_at)))
    return 0


SILENCE_COLUMNS: list[Column] = [
    (N_("ID"), "silence_id"),
    (N_("MATCHERS"), "matchers"),
    (N_("UNTIL"), "ends_at"),
    (N_("AUTHOR"), "author"),
    (N_("REASON"), "reason"),
]


def cmd_silence_list(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    records = [
        {
            "silence_id": s.silence_id,
            "matchers": s.matchers,
            "starts_at": iso_time(s.starts_at),
            "ends_at": iso_time(s.ends_at),
            "author": s.author,
            "reason": s.reason,
        }
        for s in _store(cfg).alerts.silences(time.time())
    ]
    emit_records(args, records, SILENCE_COLUMNS)
    return 0


def cmd_silence_expire(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    _store(cfg).alerts.expire_silence(args.silence_id, time.time())
    print(_("silence {id} expired").format(id=args.silence_id))
    return 0


def cmd_ack(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    _store(cfg).alerts.ack_alert(args.rule, args.subject, args.author, args.note or "", time.time())
    print(
        _("alert {rule} on {subject} acknowledged by {author}").format(
            rule=args.rule, subject=args.subject, author=args.author
        )
    )
    return 0


def cmd_maintenance_add(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    days = tuple(d.strip().lower()[:3] for d in args.weekdays.split(","))
    valid = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    if not days or any(d not in valid for d in days):
        raise ConfigError(
            _("--weekdays {given}: comma-separated {valid}").format(
                given=repr(args.weekdays), valid=", ".join(valid)
            )
        )
    hh, sep, mm = args.start.partition(":")
    if not (sep and hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60):
        raise ConfigError(
            _("--start {given}: use HH:MM (collector local time)").format(given=repr(args.start))
        )
    gap = recurrence_gap(days)
    if not 0 < args.duration <= gap:
        raise ConfigError(
            _(
                "--duration {given}: a window on {days} must last more than 0s and at most "
                "{most}, the time until it opens again"
            ).format(
                given=format_duration(args.duration), days=",".join(days), most=format_duration(gap)
            )
        )
    w = MaintenanceWindow(
        secrets.token_hex(4),
        _matchers(args.match),
        days,
        f"{int(hh):02d}:{int(mm):02d}",
        args.duration,
        args.author,
        args.reason,
    )
    _store(cfg).alerts.add_maintenance(w, time.time())
    print(
        _("maintenance window {id}: {days} {start} for {duration}").format(
            id=w.window_id,
            days=",".join(days),
            start=w.start,
            duration=format_duration(w.duration_seconds),
        )
    )
    return 0


MAINTENANCE_COLUMNS: list[Column] = [
    (N_("ID"), "window_id"),
    (N_("MATCHERS"), "matchers"),
    (N_("DAYS"), "weekdays"),
    (N_("START"), "start"),
    (N_("DURATION"), lambda w: format_duration(w["duration_seconds"])),
    (N_("AUTHOR"), "author"),
    (N_("REASON"), "reason"),
]


def cmd_maintenance_list(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    records = [
        {
            "window_id": w.window_id,
            "matchers": w.matchers,
            "weekdays": list(w.weekdays),
            "start": w.start,
            "duration_seconds": w.duration_seconds,
            "author": w.author,
            "reason": w.reason,
        }
        for w in _store(cfg).alerts.maintenance()
    ]
    emit_records(args, records, MAINTENANCE_COLUMNS)
    return 0


def cmd_maintenance_delete(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    _store(cfg).alerts.delete_maintenance(args.window_id)
    print(_("maintenance window {id} deleted").format(id=args.window_id))
    return 0


def cmd_notify_test(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    """Straight to the SMTP server (not through the outbox): the answer is the point."""
    smtp_cfg = cfg.notify.smtp
    subject, text, html = render_test(args.language or cfg.notify.language)
    message = build_message(smtp_cfg.from_address, args.to, subject, text, html)
    print(
        f"SMTP {smtp_cfg.host}:{smtp_cfg.port} ({smtp_cfg.security}) from {smtp_cfg.from_address}"
    )
    result = send_mail(smtp_cfg, args.to, message)
    print(f"{result.outcome}: {result.detail}")
    for address, reply in result.refused.items():
        print(f"  refused {address}: {reply}")
    return 0 if result.outcome == "sent" else 1


OUTBOX_COLUMNS: list[Column] = [
    (N_("ID"), "id"),
    (N_("STATE"), "state"),
    (N_("KIND"), "kind"),
    (N_("RECIPIENT"), "recipient"),
    (N_("CREATED"), "created_at"),
    (N_("TRIES"), "attempts"),
    (N_("NEXT/SENT"), lambda m: m["next_attempt_at"] if m["state"] == "pending" else m["sent_at"]),
    (
        N_("ERROR"),
        lambda m: "; ".join(
            [m["last_error"] or "", *(f"{a}: {r}" for a, r in m["refused"].items())]
        ).strip("; "),
    ),
]


def cmd_notify_outbox(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    states = ("pending", "failed", "partial") if not args.all else ()
    records = [
        {
            "id": m.id,
            "state": m.state,
            "kind": m.kind,
            "recipient": m.recipient,
            "created_at": iso_time(m.created_at),
            "attempts": m.attempts,
            "next_attempt_at": iso_time(m.next_attempt_at) if m.state == "pending" else None,
            "sent_at": iso_time(m.sent_at),
            "last_error": m.last_error or None,
            "refused": m.refused,
        }
        for m in _store(cfg).mail.outbox(states)
    ]
    emit_records(args, records, OUTBOX_COLUMNS)
    return 0


def _notify_parsers(sub: Any) -> None:
    no = sub.add_parser("notify", help=_("alert mail")).add_subparsers(dest="sub", required=True)
    nt = no.add_parser("test", help=_("send a test message now and print the SMTP result"))
    nt.add_argument("--to", action="append", required=True, metavar="ADDRESS")
    nt.add_argument("--language", choices=("vi", "en"))
    nt.set_defaults(handler=cmd_notify_test)
    ob = no.add_parser(
        "outbox", help=_("messages pending, failed or partly refused"), parents=[output_parent()]
    )
    ob.add_argument("--all", action="store_true", help=_("sent messages too"))
    ob.set_defaults(handler=cmd_notify_outbox)


def _meeting_time(meeting: Meeting, cfg: CollectorConfig) -> str:
    return datetime.fromtimestamp(meeting.starts_at, cfg.meetings.zone).strftime("%Y-%m-%d %H:%M")


MEETING_COLUMNS: list[Column] = [
    (N_("ID"), "id"),
    (N_("START"), "starts_at"),
    (N_("DURATION"), lambda m: format_duration(m["duration_seconds"])),
    (N_("ROOMS"), "rooms"),
    (N_("TITLE"), "title"),
]


def cmd_meeting_add(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    try:
        starts_at = parse_local_time(args.at, cfg.meetings.zone)
    except ValueError:
        zone = cfg.timezone
        raise ConfigError(
            _("--at {given}: use 'YYYY-MM-DD HH:MM' ({zone})").format(
                given=repr(args.at), zone=zone
            )
        ) from None
    now = time.time()
    if starts_at < now:
        raise ConfigError(
            _("--at {given}: in the past ({zone})").format(given=repr(args.at), zone=cfg.timezone)
        )
    if args.duration <= 0:
        raise ConfigError(_("--duration 0s: a meeting lasts a while, e.g. 2h"))
    rooms = [r.strip() for r in args.rooms.split(",") if r.strip()] or ["all"]
    store = _store(cfg)
    known = room_names(store.list_agents()) | (
        load_sites(cfg.sites_file).names() if cfg.sites_file is not None else set()
    )
    folded = {k.casefold() for k in known}
    unknown = [r for r in rooms if r.casefold() != "all" and r.casefold() not in folded]
    if unknown:
        shown = ", ".join(sorted(known)[:30]) + (", …" if len(known) > 30 else "") or _("none yet")
        raise ConfigError(
            _(
                "--rooms: unknown {rooms}: name districts, communes, units or hosts of meeting "
                "rooms, or all (known: {known})"
            ).format(rooms=", ".join(map(repr, unknown)), known=shown)
        )
    m = store.meetings.add_meeting(args.title, starts_at, args.duration, rooms, now)
    print(
        _("meeting {id}: {start} {zone} {title}").format(
            id=m.id, start=_meeting_time(m, cfg), zone=cfg.timezone, title=m.title
        )
    )
    return 0


def cmd_meeting_list(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    now = time.time()
    book = MeetingBook(_store(cfg), cfg.meetings)
    records = [
        {
            "id": m.id,
            "title": m.title,
            "starts_at": iso_time(m.starts_at, cfg.meetings.zone),
            "duration_seconds": m.duration,
            "rooms": list(m.rooms),
        }
        for m in book.between(now, now + args.ahead)
    ]
    emit_records(args, records, MEETING_COLUMNS)
    return 0


def cmd_meeting_cancel(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    if not args.meeting_id.isdigit():
        raise ConfigError(
            _("meeting {id}: only meetings added here can be cancelled").format(id=args.meeting_id)
        )
    _store(cfg).meetings.cancel_meeting(int(args.meeting_id), time.time())
    print(_("meeting {id} cancelled").format(id=args.meeting_id))
    return 0


def cmd_meeting_status(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    summary = MeetingBook(_store(cfg), cfg.meetings).status(args.meeting_id, time.time())
    m = summary.meeting
    out = {
        "meeting": {
            "id": m.id,
            "title": m.title,
            "starts_at": iso_time(m.starts_at, cfg.meetings.zone),
            "duration_seconds": m.duration,
            "rooms": list(m.rooms),
        },
        "verdict": summary.verdict,
        "ready": summary.ready,
        "expected": summary.expected,
        "rooms": [
            {
                "agent_id": r.agent_id,
                "room": r.name,
                "verdict": r.verdict,
                "state": r.state,
                "reasons": list(r.reasons),
                "checked_at": iso_time(r.checked_at),
            }
            for r in summary.rooms
        ],
    }
    emit_document(args, out)
    return 0


def _meeting_parsers(sub: Any) -> None:
    me = sub.add_parser("meeting", help=_("online meeting schedule and go/no-go")).add_subparsers(
        dest="sub", required=True
    )
    ma = me.add_parser("add", help=_("a one-off meeting (recurring ones live in the config)"))
    ma.add_argument("--title", required=True)
    ma.add_argument("--at", required=True, help=_("'YYYY-MM-DD HH:MM' in the config's timezone"))
    ma.add_argument("--duration", type=duration_option, default="2h")
    ma.add_argument(
        "--rooms", default="all", help=_("'all' or communes/units/hosts, comma-separated")
    )
    ma.set_defaults(handler=cmd_meeting_add)
    ml = me.add_parser(
        "list", help=_("meetings ahead, recurring and one-off"), parents=[output_parent()]
    )
    ml.add_argument("--ahead", type=duration_option, default="31d")
    ml.set_defaults(handler=cmd_meeting_list)
    mc = me.add_parser("cancel", help=_("cancel a meeting added with `meeting add`"))
    mc.add_argument("meeting_id")
    mc.set_defaults(handler=cmd_meeting_cancel)
    ms = me.add_parser(
        "status", help=_("go/no-go per room for one meeting"), parents=[output_parent()]
    )
    ms.add_argument("meeting_id")
    ms.set_defaults(handler=cmd_meeting_status)


def _bytes(n: int | None) -> str:
    if n is None:
        return "-"
    if n < 1024:
        return f"{n} B"
    size, unit = n / 1024.0, "KiB"
    for bigger in ("MiB", "GiB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{size:.1f} {unit}"


def cmd_store_stats(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    store = _store(cfg)
    try:
        tables = store.rollups.tables()
        total = store.rollups.database_bytes()
        rolled = store.rollups.rolled_until()
        packed = store.rollups.packed_reports()
    finally:
        store.close()
    records = [
        {"name": t.name, "rows": t.rows, "bytes": t.bytes, "oldest": iso_time(t.oldest)}
        for t in tables
    ]
    if args.output == "json":
        document = {
            "database_bytes": total,
            "rolled_up_until": iso_time(rolled),
            "packed_reports": packed,
        }
        emit_document(args, {**document, "tables": records})
        return 0
    columns: list[Column] = [
        (N_("TABLE"), "name"),
        (N_("ROWS"), "rows"),
        (N_("SIZE"), lambda r: _bytes(r["bytes"])),
        (N_("OLDEST"), "oldest"),
    ]
    emit_records(args, records, columns)
    print(f"cơ sở dữ liệu / database: {_bytes(total)}")
    print(f"đã tổng hợp đến / rolled up until: {iso_time(rolled) or '-'}")
    print(f"báo cáo đã nén / packed reports: {packed:,}")
    return 0


def cmd_store_prune(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    pack = load_pack(cfg.rules.path, cfg.rules.hold) if cfg.rules.path is not None else None
    store = _store(cfg)
    try:
        retention = RetentionPass(
            store,
            cfg.retention,
            report_interval=cfg.report_interval,
            reachable_within=cfg.report_interval * cfg.stale_after_intervals,
            rules=lambda: pack.agent_rules() if pack is not None else (),
        )
        now = time.time()
        counts = retention.plan(now) if args.dry_run else retention.run(now).done
    finally:
        store.close()
    if args.output == "json":
        emit_document(args, {"dry_run": args.dry_run, "rows": counts})
        return 0
    print("sẽ xử lý / would process:" if args.dry_run else "đã xử lý / processed:")
    records = [{"step": k, "rows": v} for k, v in counts.items()]
    emit_records(args, records, [(N_("STEP"), "step"), (N_("ROWS"), "rows")])
    return 0


def _store_parsers(sub: Any) -> None:
    st = sub.add_parser("store", help=_("the store's size and retention")).add_subparsers(
        dest="sub", required=True
    )
    ss = st.add_parser("stats", help=_("rows, size and oldest data of each table"))
    add_output_options(ss)
    ss.set_defaults(handler=cmd_store_stats)
    sp = st.add_parser(
        "prune", help=_("run the retention pass now (rollups, then expiry past each horizon)")
    )
    sp.add_argument("--dry-run", action="store_true", help=_("only count what would go"))
    add_output_options(sp)
    sp.set_defaults(handler=cmd_store_prune)


def _rules_parsers(sub: Any) -> None:
    ru = sub.add_parser("rules", help=_("compliance rule packs")).add_subparsers(
        dest="sub", required=True
    )
    rc = ru.add_parser(
        "check", help=_("validate a pack (file or directory); errors name file:line")
    )
    rc.add_argument("path", nargs="?", type=Path, help=_("default: the config's rules.path"))
    rc.set_defaults(handler=cmd_rules_check)
    ru.add_parser(
        "reload", help=_("ask the running collector to reload (it keeps its pack on error)")
    ).set_defaults(handler=cmd_rules_reload)
    al = sub.add_parser("alerts", help=_("alerts, silences, maintenance")).add_subparsers(
        dest="sub", required=True
    )
    al.add_parser(
        "list", help=_("open alerts (pending and firing)"), parents=[output_parent()]
    ).set_defaults(handler=cmd_alerts_list)
    ash = al.add_parser(
        "show",
        help=_("one alert with its history and times to remediate"),
        parents=[output_parent()],
    )
    ash.add_argument("rule")
    ash.add_argument("subject", help=_("agent id, commune:DISTRICT/COMMUNE or district:DISTRICT"))
    ash.set_defaults(handler=cmd_alerts_show)
    ack = al.add_parser("ack", help=_("acknowledge an open alert"))
    ack.add_argument("rule")
    ack.add_argument("subject")
    ack.add_argument("--author", required=True)
    ack.add_argument("--note")
    ack.set_defaults(handler=cmd_ack)
    si = al.add_parser("silence", help=_("mute notifications for matching alerts")).add_subparsers(
        dest="action", required=True
    )
    sa = si.add_parser("add", help=_("a new silence"))
    sa.add_argument("--match", action="append", default=[], help=_("LABEL=GLOB, repeatable"))
    sa.add_argument(
        "--for", dest="duration", type=duration_option, required=True, help=_("e.g. 2h, 3d")
    )
    sa.add_argument("--author", required=True)
    sa.add_argument("--reason", required=True)
    sa.set_defaults(handler=cmd_silence_add)
    si.add_parser("list", help=_("silences not yet over"), parents=[output_parent()]).set_defaults(
        handler=cmd_silence_list
    )
    se = si.add_parser("expire", help=_("end a silence now"))
    se.add_argument("silence_id")
    se.set_defaults(handler=cmd_silence_expire)
    mw = al.add_parser("maintenance", help=_("recurring maintenance windows")).add_subparsers(
        dest="action", required=True
    )
    ma = mw.add_parser("add", help=_("a weekly window, collector local time"))
    ma.add_argument("--match", action="append", default=[], help=_("LABEL=GLOB, repeatable"))
    ma.add_argument("--weekdays", required=True, help=_("e.g. sat,sun"))
    ma.add_argument("--start", required=True, help=_("HH:MM"))
    ma.add_argument("--duration", type=duration_option, required=True, help=_("e.g. 4h"))
    ma.add_argument("--author", required=True)
    ma.add_argument("--reason", required=True)
    ma.set_defaults(handler=cmd_maintenance_add)
    mw.add_parser("list", help=_("every window"), parents=[output_parent()]).set_defaults(
        handler=cmd_maintenance_list
    )
    md = mw.add_parser("delete", help=_("remove a window"))
    md.add_argument("window_id")
    md.set_defaults(handler=cmd_maintenance_delete)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="canhgac-collector", description=_("{name} collector").format(name="Canh Gác")
    )
    p.add_argument(
        "--config",
        type=Path,
        help=_("collector YAML config (default: ${env}, else {path})").format(
            env=CONFIG_ENV, path=DEFAULT_CONFIG
        ),
    )
    p.add_argument(
        "--version",
        action="version",
        version=f"canhgac-collector {__version__}",
        help=_("show the version and exit"),
    )
    p.add_argument(
        "--lang",
        dest="ui_lang",
        choices=LANGUAGES,
        help=_("vi (default) or en; else the locale"),
    )
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help=_("run the gRPC and HTTP servers until stopped"))
    serve.add_argument(
        "--processes",
        type=int,
        metavar="N",
        help=_(
            "collector processes sharing the gRPC port (PostgreSQL only; default: one per "
            "core on PostgreSQL, 1 on SQLite)"
        ),
    )
    # How the supervisor starts its processes; not for people.
    serve.add_argument("--process-index", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--supervisor", type=int, help=argparse.SUPPRESS)  # its pid
    serve.set_defaults(handler=cmd_serve)
    tok = sub.add_parser("token", help=_("enrollment tokens")).add_subparsers(
        dest="sub", required=True
    )
    tc = tok.add_parser("create", help=_("create a token that places agents in the org tree"))
    tc.add_argument("--province", help=_("default: the config's province"))
    tc.add_argument("--district", required=True)
    tc.add_argument("--commune")
    tc.add_argument("--unit")
    tc.add_argument("--role", required=True, choices=ROLES)
    tc.add_argument(
        "--expires",
        type=duration_option,
        default="7d",
        help=_("lifetime, e.g. 12h, 7d (default 7d)"),
    )
    tc.add_argument(
        "--uses", type=int, help=_("how many machines may enroll with it (default: any)")
    )
    tc.add_argument("--note")
    tc.add_argument(
        "--replaces",
        metavar="AGENT",
        help=_(
            "re-enroll this agent, keeping its id, from the same machine (e.g. reinstalled "
            "and its credential lost); default --uses 1"
        ),
    )
    tc.set_defaults(handler=cmd_token_create)
    tok.add_parser(
        "list", help=_("all tokens and their state"), parents=[output_parent()]
    ).set_defaults(handler=cmd_token_list)
    tr = tok.add_parser("revoke", help=_("stop a token from enrolling more machines"))
    tr.add_argument("token_id")
    tr.set_defaults(handler=cmd_token_revoke)
    ag = sub.add_parser("agent", help=_("enrolled agents")).add_subparsers(
        dest="sub", required=True
    )
    al = ag.add_parser(
        "list",
        help=_("every agent in service, its place and state"),
        parents=[output_parent()],
    )
    al.add_argument("--all", action="store_true", help=_("retired agents too"))
    al.set_defaults(handler=cmd_agent_list)
    ash = ag.add_parser(
        "show", help=_("one agent with its latest snapshot"), parents=[output_parent()]
    )
    ash.add_argument("agent_id")
    ash.set_defaults(handler=cmd_agent_show)
    ar = ag.add_parser("revoke", help=_("refuse this agent's credential from now on"))
    ar.add_argument("agent_id")
    ar.set_defaults(handler=cmd_agent_revoke)
    at = ag.add_parser(
        "retire",
        help=_(
            "a machine taken out of service: credential refused, alerts closed, gone from"
            " coverage; kept for the audit trail"
        ),
    )
    at.add_argument("agent_id")
    at.add_argument("--reason", metavar="TEXT", help=_("why, kept with the agent"))
    at.set_defaults(handler=cmd_agent_retire)
    _rules_parsers(sub)
    _notify_parsers(sub)
    _meeting_parsers(sub)
    add_report_parsers(sub)
    add_settings_parsers(sub)
    add_release_parsers(sub)
    _store_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    return survive_closed_pipe(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    use_language(choose_language(sys.argv[1:] if argv is None else argv, os.environ))
    args = _parser().parse_args(argv)
    # Names as the sites file and the store hold them, however they were typed (Paths stay).
    vars(args).update({k: nfc(v) for k, v in vars(args).items()})
    try:
        cfg = load_config(config_path(args.config, os.environ))
        configure_logging(
            cfg.log_level,
            cfg.log_format,
            # One of several processes writes to its supervisor, which owns the file.
            None if getattr(args, "process_index", None) is not None else cfg.log_file,
            cfg.log_file_max_bytes,
            cfg.log_file_backups,
        )
        code: int = args.handler(cfg, args)
        return code
    except ConfigError as e:
        # A bad option is one line; a config file with several problems lists them below.
        sep = "\n" if "\n" in str(e) else " "
        print(
            _("canhgac-collector: config error:{sep}{error}").format(sep=sep, error=e),
            file=sys.stderr,
        )
        return 2
    except CollectorError as e:
        print(f"canhgac-collector: {e}", file=sys.stderr)
        return 1
