"""`canhgac-collector`: serve, token and agent administration; errors become one line."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from canhgac_common.units import parse_duration
from collector import __version__
from collector.app import CollectorApp
from collector.config import CollectorConfig, load_config
from collector.errors import CollectorError, ConfigError
from collector.model import Placement
from collector.sites import ROLES, load_sites
from collector.store import Store

__all__ = ["main"]

log = logging.getLogger("canhgac.collector")


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def _table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    for r in [headers, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _store(cfg: CollectorConfig) -> Store:
    return Store(cfg.store.url, cfg.store.sqlite_synchronous)


def cmd_serve(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    app = CollectorApp(cfg)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    app.start()
    print(
        f"canhgac-collector {__version__}: gRPC on {cfg.grpc_listen}, "
        f"metrics on http://{cfg.http_listen}/metrics, store {cfg.store.url}",
        flush=True,
    )
    stop.wait()
    app.stop()
    return 0


def cmd_token_create(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    if cfg.sites_file is not None:
        load_sites(cfg.sites_file).check_place(args.district, args.commune, args.unit)
    try:
        ttl = parse_duration(args.expires)
    except ValueError as e:
        raise ConfigError(f"--expires: {e}") from None
    placement = Placement(
        province=args.province or cfg.province,
        district=args.district,
        commune=args.commune or "",
        unit=args.unit or "",
        role=args.role,
    )
    store = _store(cfg)
    record, token = store.create_token(placement, ttl, time.time(), args.uses, args.note or "")
    store.close()
    where = " / ".join(x for x in (placement.district, placement.commune, placement.unit) if x)
    print(token)
    print(
        f"token {record.token_id}: {where}, role {placement.role}, "
        f"expires {_when(record.expires_at)}" + (f", {args.uses} uses" if args.uses else ""),
        file=sys.stderr,
    )
    print(
        "enroll a machine with: canhgac-agent enroll --collector HOST:PORT --token <token above>",
        file=sys.stderr,
    )
    return 0


def cmd_token_list(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    now = time.time()
    rows = []
    for t in _store(cfg).list_tokens():
        state = "revoked" if t.revoked_at else ("expired" if t.expires_at <= now else "active")
        p = t.placement
        uses = f"{t.uses}/{t.max_uses}" if t.max_uses else str(t.uses)
        rows.append(
            [t.token_id, state, p.district, p.commune, p.unit, p.role, uses, _when(t.expires_at)]
        )
    _table(["ID", "STATE", "DISTRICT", "COMMUNE", "UNIT", "ROLE", "USES", "EXPIRES"], rows)
    return 0


def cmd_token_revoke(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    _store(cfg).revoke_token(args.token_id, time.time())
    print(f"token {args.token_id} revoked")
    return 0


def cmd_agent_list(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    stale = cfg.report_interval * cfg.stale_after_intervals
    now = time.time()
    rows = []
    for a in _store(cfg).list_agents():
        if a.revoked_at:
            state = "revoked"
        elif a.last_seen_at and now - a.last_seen_at <= stale:
            state = "up"
        else:
            state = "silent"
        p = a.placement
        rows.append(
            [
                a.agent_id,
                state,
                a.hostname,
                p.district,
                p.commune,
                p.unit,
                p.role,
                _when(a.last_seen_at),
            ]
        )
    _table(["AGENT", "STATE", "HOST", "DISTRICT", "COMMUNE", "UNIT", "ROLE", "LAST SEEN"], rows)
    return 0


def cmd_agent_show(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    store = _store(cfg)
    a = store.get_agent(args.agent_id)
    out = {
        "agent_id": a.agent_id,
        "hostname": a.hostname,
        "placement": a.placement.__dict__,
        "enrolled_at": _when(a.enrolled_at),
        "revoked_at": _when(a.revoked_at) if a.revoked_at else None,
        "last_seen_at": _when(a.last_seen_at),
        "last_seq": a.last_seq,
        "snapshot": store.snapshot(a.agent_id),
    }
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0


def cmd_agent_revoke(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    _store(cfg).revoke_agent(args.agent_id, time.time())
    print(f"agent {args.agent_id} revoked: its credential is refused from now on")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="canhgac-collector", description="Canh Gác collector")
    p.add_argument("--config", type=Path, help="collector YAML config (default: built-in defaults)")
    p.add_argument("--version", action="version", version=f"canhgac-collector {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the gRPC and HTTP servers until stopped").set_defaults(
        handler=cmd_serve
    )
    tok = sub.add_parser("token", help="enrollment tokens").add_subparsers(
        dest="sub", required=True
    )
    tc = tok.add_parser("create", help="create a token that places agents in the org tree")
    tc.add_argument("--province", help="default: the config's province")
    tc.add_argument("--district", required=True)
    tc.add_argument("--commune")
    tc.add_argument("--unit")
    tc.add_argument("--role", required=True, choices=ROLES)
    tc.add_argument("--expires", default="7d", help="lifetime, e.g. 12h, 7d (default 7d)")
    tc.add_argument("--uses", type=int, help="how many machines may enroll with it (default: any)")
    tc.add_argument("--note")
    tc.set_defaults(handler=cmd_token_create)
    tok.add_parser("list", help="all tokens and their state").set_defaults(handler=cmd_token_list)
    tr = tok.add_parser("revoke", help="stop a token from enrolling more machines")
    tr.add_argument("token_id")
    tr.set_defaults(handler=cmd_token_revoke)
    ag = sub.add_parser("agent", help="enrolled agents").add_subparsers(dest="sub", required=True)
    ag.add_parser("list", help="every agent, its place and state").set_defaults(
        handler=cmd_agent_list
    )
    ash = ag.add_parser("show", help="one agent with its latest snapshot (JSON)")
    ash.add_argument("agent_id")
    ash.set_defaults(handler=cmd_agent_show)
    ar = ag.add_parser("revoke", help="refuse this agent's credential from now on")
    ar.add_argument("agent_id")
    ar.set_defaults(handler=cmd_agent_revoke)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = load_config(args.config)
        logging.basicConfig(
            level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        code: int = args.handler(cfg, args)
        return code
    except ConfigError as e:
        print(f"canhgac-collector: config error:\n{e}", file=sys.stderr)
        return 2
    except CollectorError as e:
        print(f"canhgac-collector: {e}", file=sys.stderr)
        return 1
