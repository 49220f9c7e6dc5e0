"""`canhgac-agent`: enroll, run, once, status, service. The one place mapping errors to exits."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import platform
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType

from agent import __version__
from agent.central import SETTINGS_FILE, Central, read_saved
from agent.config import AgentConfig, LocalFile, load_config
from agent.errors import AgentError, ConfigError, NotEnrolledError
from agent.identity import (
    Credential,
    Refusal,
    load_credential,
    load_refusal,
    machine_id,
    save_credential,
    save_refusal,
)
from agent.probes import PROBES
from agent.probes.base import CollectorLink
from agent.runner import Runner, Scheduled, collect, read_boot_id
from agent.spool import Spool, SpoolStatus
from agent.transport.client import CollectorClient, DeliveryError, MachineFacts
from agent.transport.encode import plain
from agent.update import Updater
from canhgac_common import refusal as refusals
from canhgac_common.i18n import LANGUAGES, choose_language, use_language
from canhgac_common.i18n import gettext_ as _
from canhgac_common.output import add_output_options, iso_time, survive_closed_pipe
from canhgac_common.units import duration_option, format_duration

__all__ = ["main"]

log = logging.getLogger("canhgac.agent")


def _schedule(
    cfg: AgentConfig,
    default_interval: float,
    running: Mapping[str, Scheduled] | None = None,
    link: CollectorLink | None = None,
) -> dict[str, Scheduled]:
    """The enabled probes of `cfg`; one of `running` whose options did not change is kept (its
    state with it: CPU baseline, the software list's hash), a new one is connected to `link`."""
    out = {}
    for name, probe in PROBES.items():
        options = getattr(cfg.probes, name)
        if not options.enabled:
            continue
        interval = options.interval or default_interval
        kept = (running or {}).get(name)
        if kept is not None and kept.probe.options == options:
            out[name] = Scheduled(kept.probe, interval)
            continue
        built = probe.from_options(options)
        if link is not None:
            built.connect(link)
        out[name] = Scheduled(built, interval)
    return out


def _spool(cfg: AgentConfig) -> Spool:
    return Spool(
        cfg.state_dir / "spool.db",
        cfg.spool.max_bytes,
        cfg.spool.max_age,
        origin=socket.gethostname(),
    )


def _client(cfg: AgentConfig, cred: Credential) -> CollectorClient:
    return CollectorClient(
        cfg.collector.address or cred.collector,
        tls=cfg.collector.tls,
        timeout=cfg.collector.timeout,
        gzip=cfg.collector.gzip,
        secret=cred.secret,
    )


TOKEN_ENV = "CANHGAC_TOKEN"  # noqa: S105 (the variable's name, not a token)


def _token(args: argparse.Namespace) -> str:
    """From --token-file (`-`: standard input), else CANHGAC_TOKEN, else --token: a token on
    the command line is visible to every local user in `ps` while the agent runs."""
    path = args.token_file
    if path is not None:
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(
                _("--token-file {path}: cannot read: {error}").format(path=args.token_file, error=e)
            ) from None
        if not text.strip():
            raise ConfigError(_("--token-file {path}: empty").format(path=args.token_file))
        return text.strip()
    if args.token is not None:
        return str(args.token)
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise ConfigError(
            f"enroll: no token; give it in a file (--token-file PATH, `-` for standard input) "
            f"or in {TOKEN_ENV} (--token works too, but shows it to other users in ps)"
        )
    return token


def _previous_credential(cfg: AgentConfig, collector: str) -> str:
    """The credential this machine holds for `collector`, if any: the proof that lets the
    re-enrollment keep its agent id. Never sent to another collector (it would let that one
    act as this agent); without it a machine whose id is taken gets a new agent id."""
    try:
        cred = load_credential(cfg.state_dir)
    except NotEnrolledError:
        return ""
    except AgentError as e:
        log.warning("previous credential not sent: %s", e)
        return ""
    if cred.collector != collector:
        log.warning("previous credential not sent: it is for %s, not %s", cred.collector, collector)
        return ""
    return cred.secret


ENROLL_TOKEN_FILE = "enroll.token"  # noqa: S105 (a file name)


def _enroll(cfg: AgentConfig, collector: str, token: str) -> tuple[Credential, Path]:
    facts = MachineFacts(
        machine_id=machine_id(cfg.state_dir),
        hostname=socket.gethostname(),
        os_name=platform.system(),
        os_version=platform.version(),
        agent_version=__version__,
    )
    with CollectorClient(collector, tls=cfg.collector.tls, timeout=cfg.collector.timeout) as c:
        r = c.enroll(token, facts, _previous_credential(cfg, collector))
    cred = Credential(
        collector=collector,
        agent_id=r.agent_id,
        secret=r.secret,
        report_interval_seconds=r.report_interval_seconds,
        district=r.district,
        commune=r.commune,
        unit=r.unit,
        role=r.role,
    )
    return cred, save_credential(cfg.state_dir, cred)


def cmd_enroll(cfg: AgentConfig, args: argparse.Namespace) -> int:
    cred, path = _enroll(cfg, args.collector, _token(args))
    place = " / ".join(p for p in (cred.district, cred.commune, cred.unit) if p)
    print(
        _("enrolled as {agent} ({place}, role {role}); credential saved to {path}").format(
            agent=cred.agent_id, place=place, role=cred.role, path=path
        )
    )
    return 0


def enrolled_credential(cfg: AgentConfig) -> Credential:
    """The credential; on a first start, the one got with `<state_dir>/enroll.token`.

    Installers (the .deb's docs, the MSI's TOKEN property) leave the token there and
    collector.address in the config; the service enrolls on its first start and deletes the
    token, so it stays on disk only until it has been used.
    """
    token_path = cfg.state_dir / ENROLL_TOKEN_FILE
    try:
        held = load_credential(cfg.state_dir)
        # Revoked or retired, and a new token left beside it: enroll again with that one.
        if load_refusal(cfg.state_dir, held.agent_id) is None or not token_path.exists():
            return held
    except NotEnrolledError:
        if not token_path.exists():
            raise
    if not cfg.collector.address:
        raise ConfigError(f"{token_path} is waiting to enroll, but collector.address is not set")
    try:
        token = token_path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{token_path}: cannot read: {e}") from None
    cred, path = _enroll(cfg, cfg.collector.address, token)
    token_path.unlink()
    log.info("enrolled as %s; credential saved to %s, %s deleted", cred.agent_id, path, token_path)
    return cred


def refused_sentence(r: Refusal) -> str:
    """What `status` and the log say of a refusal for good: when, why, what to do."""
    if r.reason == refusals.RETIRED:
        return _(
            "retired by the collector at {at} ({details}): this machine is out of service;"
            " uninstall the agent, or enroll it again with a new token if it returns to service"
        ).format(at=iso_time(r.at), details=r.details)
    return _(
        "revoked by the collector at {at} ({details}): re-enroll with a new token"
        " (canhgac-agent enroll --collector {collector} --token-file PATH, or leave it in"
        " {path}), then restart the service"
    ).format(at=iso_time(r.at), details=r.details, collector=r.collector, path=ENROLL_TOKEN_FILE)


def _recorder(
    cfg: AgentConfig, cred: Credential, *, say: bool = True
) -> Callable[[DeliveryError], None]:
    """What the runner calls when the collector refuses this agent for good: one error line
    with what to do (unless `say` is false: `once` prints it itself), and the refusal kept in
    the state dir (for `status`, and so that a restart does not deliver again)."""

    def record(e: DeliveryError) -> None:
        r = Refusal(
            agent_id=cred.agent_id,
            collector=cfg.collector.address or cred.collector,
            reason=e.refusal or refusals.REVOKED,
            details=e.details,
            at=time.time(),
        )
        try:
            save_refusal(cfg.state_dir, r)
        except OSError as error:
            log.warning("could not record the refusal in %s: %s", cfg.state_dir, error)
        if say:
            log.error(
                _(
                    "{refusal}; delivery stopped, reports are still collected into the spool"
                    " (bounded by spool.max_bytes and spool.max_age)"
                ).format(refusal=refused_sentence(r))
            )

    return record


def cmd_run(cfg: AgentConfig, args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return run_until(cfg, stop, args.interval, LocalFile.read(args.config))


def run_until(
    cfg: AgentConfig,
    stop: threading.Event,
    interval_override: float | None,
    local: LocalFile | None = None,
) -> int:
    """The service's body (systemd through `run`, Windows through agent.service.windows):
    collect and deliver until `stop` is set, then close the spool. `local`: the config file
    as read, which central settings are merged over (None: `cfg` stands alone)."""
    cred = enrolled_credential(cfg)
    interval = float(interval_override or cred.report_interval_seconds or 15)
    refused = load_refusal(cfg.state_dir, cred.agent_id)  # state_dir is never set remotely
    closed = threading.Event()  # refused for good: measurements stop calling too
    if refused is not None:
        closed.set()
    record = _recorder(cfg, cred)

    def on_refused(e: DeliveryError) -> None:
        closed.set()
        record(e)

    # Measurements get a connection of their own: a delivery waiting out its deadline on a
    # dead link must not hold a probe (and with it the collection schedule) behind it.
    with _client(cfg, cred) as client, _client(cfg, cred) as probes:
        central = None
        if local is not None:
            central = Central(cfg, local, client.get_settings)
            cfg = central.config
            logging.getLogger().setLevel(cfg.log_level.upper())
        link = CollectorLink(
            probes.address,
            _unless(closed, probes.throughput),
            client.clock_offset,
            _unless(closed, probes.upload),
        )
        schedule = _schedule(cfg, interval, link=link)
        spool = _spool(cfg)
        if refused is not None:
            # Said once per start, and nothing sent: the collector answered for good.
            log.error(
                _("{refusal}; not delivering, reports are collected into the spool only").format(
                    refusal=refused_sentence(refused)
                )
            )
        else:
            log.info(
                "agent %s reporting to %s every %gs (probes: %s; central settings: %s)",
                cred.agent_id,
                client.address,
                interval,
                ", ".join(schedule),
                central.state.hash if central is not None and central.state.hash else "none",
            )
        with _updater(cfg, cred) as updater:
            runner = Runner(
                schedule,
                spool,
                client.submit if refused is None else None,
                cfg.delivery,
                central=central,
                rebuild=lambda new: _schedule(new, interval, runner.schedule, link),
                on_refused=on_refused,
                updater=updater,
            )
            with contextlib.closing(spool):
                runner.run(stop)
    return 0


def _unless(
    closed: threading.Event, transfer: Callable[[int], tuple[int, float]]
) -> Callable[[int], tuple[int, float]]:
    """A measurement call that is not made once the collector refused this agent for good
    (the probe reports why, as for any failed measurement)."""

    def call(nbytes: int) -> tuple[int, float]:
        if closed.is_set():
            raise AgentError(
                "not measured: the collector refused this agent (canhgac-agent status)"
            )
        try:
            return transfer(nbytes)
        except DeliveryError as e:
            if e.final:
                closed.set()
            raise

    return call


@contextlib.contextmanager
def _updater(cfg: AgentConfig, cred: Credential) -> Iterator[Updater | None]:
    """Self-update on a thread and a connection of its own (a slow download holds neither
    collection nor delivery), when `update.enabled`; stopped and joined on the way out."""
    if not cfg.update.enabled:
        yield None
        return
    with _client(cfg, cred) as downloads:
        updater = Updater(cfg.update, cfg.state_dir, lambda: downloads)
        stop = threading.Event()
        worker = threading.Thread(target=updater.run, args=(stop,), name="update", daemon=True)
        worker.start()
        try:
            yield updater
        finally:
            stop.set()
            worker.join(timeout=cfg.collector.timeout + 5)


def cmd_once(cfg: AgentConfig, args: argparse.Namespace) -> int:
    probes = {n: s.probe for n, s in _schedule(cfg, 15.0).items()}
    if args.print:
        # CPU use has no reference point at a probe's first collect: give it one short window.
        # Only those probes: the others' first collect is the one to show (the software
        # probe sends its whole list only then).
        baseline = {n: p for n, p in probes.items() if p.needs_baseline}
        if baseline:
            collect(baseline, read_boot_id(), int(time.time() * 1000))
            time.sleep(0.5)
        report = collect(probes, read_boot_id(), int(time.time() * 1000))
        print(json.dumps(plain(report), ensure_ascii=False, indent=2))
        return 1 if report.errors else 0
    cred = load_credential(cfg.state_dir)
    refused = load_refusal(cfg.state_dir, cred.agent_id)
    spool = _spool(cfg)
    with contextlib.closing(spool), _client(cfg, cred) as client:
        for probe in probes.values():
            probe.connect(
                CollectorLink(client.address, client.throughput, client.clock_offset, client.upload)
            )
        runner = Runner(
            {n: Scheduled(p, 15.0) for n, p in probes.items()},
            spool,
            client.submit if refused is None else None,
            cfg.delivery,
            on_refused=_recorder(cfg, cred, say=False),
        )
        seq = runner.collect_due(list(probes))
        while (more := runner.deliver_batch()) is True:
            pass
    if refused is None and runner.refused is not None:
        refused = load_refusal(cfg.state_dir, cred.agent_id)
    if refused is not None:
        print(
            _("collected report {seq}; not delivered: {why}").format(
                seq=seq, why=refused_sentence(refused)
            ),
            file=sys.stderr,
        )
        return 1
    if more is None:
        print(
            _("collected report {seq}; delivery failed, it stays in the spool").format(seq=seq),
            file=sys.stderr,
        )
        return 1
    print(_("collected and delivered report {seq}").format(seq=seq))
    return 0


# Nagios plugin exit codes: `status` is usable as a check as it is.
OK, WARNING, CRITICAL = 0, 1, 2
_VERDICTS = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL"}


def status_verdict(
    not_enrolled: str | None,
    unreachable: str | None,
    spool: SpoolStatus | None,
    *,
    now: float,
    warn_backlog: float,
    refused: Refusal | None = None,
) -> tuple[int, str]:
    """(Nagios code, the reason in one line) from what `status` found: why the agent is not
    enrolled and why the collector cannot be reached (None: it is, it can), and the refusal
    for good the service recorded."""
    if not_enrolled is not None:
        return CRITICAL, _("not enrolled: {why}").format(why=not_enrolled)
    if refused is not None:
        return CRITICAL, refused_sentence(refused)
    if unreachable is not None:
        return CRITICAL, _("collector unreachable: {why}").format(why=unreachable)
    waiting = spool.depth if spool else 0
    age = now - spool.oldest_at if spool and spool.oldest_at is not None else 0.0
    if waiting and age >= warn_backlog:
        return WARNING, _(
            "{n} reports waiting, the oldest collected {age} ago: deliveries are failing or behind"
        ).format(n=waiting, age=format_duration(round(age)))
    return OK, _("collector reachable, {n} reports waiting").format(n=waiting)


def cmd_status(cfg: AgentConfig, args: argparse.Namespace) -> int:
    not_enrolled = unreachable = None
    try:
        cred: Credential | None = load_credential(cfg.state_dir)
    except AgentError as e:
        cred, not_enrolled = None, str(e)
    collector = None
    if cred is not None:
        with _client(cfg, cred) as client:
            unreachable = client.unreachable(timeout=args.timeout)
        collector = {"address": client.address, "reachable": unreachable is None}
    st = None
    if (cfg.state_dir / "spool.db").exists():
        with contextlib.closing(_spool(cfg)) as spool:
            st = spool.status()
    central = None
    with contextlib.suppress(FileNotFoundError, OSError, ValueError, KeyError, TypeError):
        kept = read_saved(cfg.state_dir / SETTINGS_FILE)
        central = {
            "hash": kept.hash or None,
            "refused_hash": kept.refused_hash or None,
            "refused_reason": kept.refused_reason or None,
        }
    interval = cred.report_interval_seconds if cred and cred.report_interval_seconds else 15
    warn_backlog = args.warn_backlog if args.warn_backlog is not None else 3 * interval
    refused = load_refusal(cfg.state_dir, cred.agent_id) if cred is not None else None
    code, reason = status_verdict(
        not_enrolled, unreachable, st, now=time.time(), warn_backlog=warn_backlog, refused=refused
    )
    document = {
        "status": _VERDICTS[code],
        "reason": reason,
        "refused": None
        if refused is None
        else {"reason": refused.reason, "details": refused.details, "at": iso_time(refused.at)},
        "agent_id": cred.agent_id if cred else None,
        "placement": {
            "district": cred.district or None,
            "commune": cred.commune or None,
            "unit": cred.unit or None,
            "role": cred.role or None,
        }
        if cred
        else None,
        "collector": collector,
        # The central settings it runs (null hash: its config file alone) and the last push
        # it refused, with why; null when it never got any (docs/fleet.md).
        "central_settings": central,
        "spool": None
        if st is None
        else {
            "spool_id": f"{st.spool_id:016x}",
            "reports_waiting": st.depth,
            "bytes": st.bytes,
            "oldest_waiting_at": iso_time(st.oldest_at),
            "last_seq": st.last_seq,
            "last_ack_at": iso_time(st.last_ack_at),
            "resets": st.resets_total,
            "dropped": st.dropped_total,
            "rejected": st.rejected_total,
            "lost_with_replaced_spools": st.reset_lost_total,
        },
    }
    if args.output == "json":
        print(json.dumps(document, ensure_ascii=False, indent=2))
        return code
    # The first line is the check's result (what Nagios shows); the rest is for a person.
    print(f"{_VERDICTS[code]}: {reason}")
    if cred is not None:
        place = " / ".join(p for p in (cred.district, cred.commune, cred.unit) if p)
        print(
            _("enrolled:   yes, agent {agent} ({place}, role {role})").format(
                agent=cred.agent_id, place=place, role=cred.role
            )
        )
        reachable = _("reachable") if unreachable is None else _("NOT reachable")
        print(
            _("collector:  {address} {reachable}").format(
                address=client.address, reachable=reachable
            )
        )
    else:
        print(_("enrolled:   no"))
    if st is not None:
        last = iso_time(st.last_ack_at) or _("never")
        print(
            _(
                "spool:      {n} reports waiting ({bytes} bytes), last seq {seq}"
                " (spool {spool}, {resets} resets)"
            ).format(
                n=st.depth,
                bytes=st.bytes,
                seq=st.last_seq,
                spool=f"{st.spool_id:016x}",
                resets=st.resets_total,
            )
        )
        print(_("last ack:   {when}").format(when=last))
        print(
            _(
                "lost:       {dropped} dropped (spool full/old), {rejected} rejected,"
                " {reset_lost} with replaced spools"
            ).format(
                dropped=st.dropped_total, rejected=st.rejected_total, reset_lost=st.reset_lost_total
            )
        )
    else:
        print(_("spool:      empty (agent has not run yet)"))
    if central is not None:
        running = central["hash"] or _("none, the config file alone")
        print(_("settings:   central {hash}").format(hash=running))
        if central["refused_hash"]:
            print(
                _("            refused {hash}: {why}").format(
                    hash=central["refused_hash"], why=central["refused_reason"]
                )
            )
    return code


def cmd_service(cfg: AgentConfig, args: argparse.Namespace) -> int:
    if sys.platform == "win32":
        raise AgentError("service: on Windows the MSI installs the service (docs/install.md)")
    from agent.service.systemd import UNIT_NAME, Systemd  # noqa: PLC0415 (this command only)

    systemd = Systemd()
    if args.action == "install":
        if args.config is None:
            raise ConfigError("service install: --config PATH is required (the unit runs with it)")
        exe = Path(sys.argv[0]).resolve()
        path = systemd.install(exe, args.config.resolve())
        print(f"{UNIT_NAME}: written to {path}, enabled and started ({exe})")
    elif args.action == "uninstall":
        path = systemd.uninstall()
        print(f"{UNIT_NAME}: stopped, disabled, {path} removed; {cfg.state_dir} kept")
    else:
        enabled, active = systemd.status()
        print(f"{UNIT_NAME}: {enabled}, {active}")
        return 0 if active == "active" else 3
    return 0


def cmd_update(cfg: AgentConfig, args: argparse.Namespace) -> int:
    """`apply`: the root helper's pass (Linux, canhgac-agent-update.service): install a verified
    request, confirm a version that reported, or roll back one that did not. `watch`: the
    Windows watcher the agent starts: install the request with msiexec and watch it to its
    end."""
    if args.action == "watch":
        from agent.update import load_public_key  # noqa: PLC0415 (this command only)
        from agent.update_windows import watch  # noqa: PLC0415

        key = load_public_key(args.public_key or cfg.update.public_key)
        if key is None:
            raise AgentError("update watch: no release public key (--public-key)")
        action = watch(cfg.state_dir / "update", key)
    else:
        from agent.update_apply import apply  # noqa: PLC0415 (this command only)

        keep, root = args.keep_dir, args.dpkg_root
        action = apply(cfg.update, cfg.state_dir, keep, time.time(), dpkg_root=root)
    print(f"{action.kind}: {action.why}" if action.why else action.kind)
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="canhgac-agent", description=_("{name} monitoring agent").format(name="Canh Gác")
    )
    p.add_argument("--config", type=Path, help=_("agent YAML config (default: built-in defaults)"))
    p.add_argument("--state-dir", type=Path, help=_("override state_dir from the config"))
    p.add_argument("--lang", choices=LANGUAGES, help=_("vi (default) or en; else the locale"))
    p.add_argument(
        "--version",
        action="version",
        version=f"canhgac-agent {__version__}",
        help=_("show the version and exit"),
    )
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("enroll", help=_("trade an enrollment token for this agent's credential"))
    e.add_argument("--collector", required=True, metavar="HOST:PORT")
    given = e.add_mutually_exclusive_group()
    given.add_argument(
        "--token-file",
        metavar="PATH",
        help=_("file holding the token, `-` for stdin (or {env})").format(env=TOKEN_ENV),
    )
    given.add_argument("--token", help=_("the token itself (visible to other users in ps)"))
    r = sub.add_parser("run", help=_("collect and deliver until stopped (the service)"))
    r.add_argument(
        "--interval",
        type=duration_option,
        help=_("between reports, e.g. 15s (default: collector's)"),
    )
    o = sub.add_parser("once", help=_("collect every probe once (and deliver, unless --print)"))
    o.add_argument("--print", action="store_true", help=_("print the report as JSON, send nothing"))
    s = sub.add_parser(
        "status",
        help=_(
            "enrollment, collector reachability, spool depth, last ack; exits 0 OK, "
            "1 WARNING (reports waiting too long), 2 CRITICAL (collector unreachable, not enrolled,"
            " revoked or retired by the collector)"
        ),
    )
    s.add_argument("--timeout", type=duration_option, default="5s", help=_("e.g. 5s"))
    s.add_argument(
        "--warn-backlog",
        type=duration_option,
        metavar="DURATION",
        help=_("WARNING when a report waits this long (default: 3 report intervals)"),
    )
    add_output_options(s)
    v = sub.add_parser(
        "service", help=_("install, uninstall or show the systemd unit (no package)")
    )
    v.add_argument("action", choices=["install", "uninstall", "status"])
    u = sub.add_parser(
        "update",
        help=_(
            "self-update steps run apart from the agent: apply (Linux, as root), watch "
            "(Windows, started by the agent)"
        ),
    )
    u.add_argument("action", choices=["apply", "watch"])
    u.add_argument(
        "--public-key",
        metavar="BASE64",
        help=_("watch: the release public key (default: update.public_key)"),
    )
    u.add_argument(
        "--keep-dir",
        type=Path,
        default=Path("/var/lib/canhgac-agent-update"),
        help=_("root-owned dir keeping the installed and previous packages"),
    )
    u.add_argument("--dpkg-root", type=Path, help=_("another dpkg root (tests), not the system"))
    return p


def main(argv: list[str] | None = None) -> int:
    return survive_closed_pipe(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    use_language(choose_language(sys.argv[1:] if argv is None else argv, os.environ))
    args = _parser().parse_args(argv)
    try:
        cfg = load_config(args.config)
        if args.state_dir is not None:
            cfg = dataclasses.replace(cfg, state_dir=args.state_dir)
        logging.basicConfig(
            level=cfg.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        handler = {
            "enroll": cmd_enroll,
            "run": cmd_run,
            "once": cmd_once,
            "status": cmd_status,
            "service": cmd_service,
            "update": cmd_update,
        }
        return handler[args.command](cfg, args)
    except ConfigError as e:
        print(_("canhgac-agent: config error:\n{error}").format(error=e), file=sys.stderr)
        return 2
    except AgentError as e:
        print(f"canhgac-agent: {e}", file=sys.stderr)
        return 1
