"""`canhgac-collector report` and `export`: the indicators of a place and period, and sealed
audit exports (docs/reports.md). The export's libraries load only when these commands run."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from canhgac_common.i18n import current_language
from canhgac_common.i18n import gettext_ as _
from canhgac_common.output import add_output_options
from collector.config import CollectorConfig, export_key_path
from collector.errors import CollectorError
from collector.report import (
    Report,
    Scope,
    build_report,
    export_report,
    parse_period,
    rule_titles,
)
from collector.sites import load_sites
from collector.store import Store

__all__ = ["add_report_parsers"]


def _report(cfg: CollectorConfig, args: argparse.Namespace) -> tuple[Store, Report]:
    zone = ZoneInfo(cfg.timezone)
    try:
        period = parse_period(args.period, args.start, args.end, zone)
    except ValueError as e:
        raise CollectorError(str(e)) from None
    sites = load_sites(cfg.sites_file) if cfg.sites_file else None
    scope = Scope(args.district, args.commune, args.unit)
    if sites is not None and scope.district is not None:
        sites.check_place(scope.district, scope.commune, scope.unit)
    store = Store(cfg.store.url, cfg.store.sqlite_synchronous)
    stale = cfg.report_interval * cfg.stale_after_intervals
    try:
        report = build_report(
            store,
            sites,
            period,
            scope,
            now=time.time(),
            stale_after=stale,
            connected_share=cfg.reports.connected_share,
        )
        return store, report
    except ValueError as e:
        raise CollectorError(str(e)) from None


def cmd_report(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    _, report = _report(cfg, args)
    if args.output == "json":
        print(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        print("\n".join(report.lines(args.lang)))
    return 0


def cmd_export(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    from collector.export.manifest import load_or_create_key  # noqa: PLC0415

    if args.out is None:
        raise CollectorError("export: --out FOLDER is required (the exports and their chain)")
    store, report = _report(cfg, args)
    try:
        out = export_report(
            report,
            store,
            rule_titles(cfg.rules.path),
            args.lang,
            args.out,
            key=load_or_create_key(export_key_path(cfg)),
            formats=[f.strip() for f in args.format.split(",") if f.strip()],
            font=cfg.reports.font,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except (ValueError, OSError) as e:
        raise CollectorError(f"export: {e}") from None
    print(out)
    return 0


def cmd_export_verify(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    from collector.export.manifest import (  # noqa: PLC0415
        load_or_create_key,
        load_public_key,
        verify,
    )

    try:
        key = (
            load_public_key(args.public_key)
            if args.public_key
            else load_or_create_key(export_key_path(cfg)).public_key()
        )
    except (ValueError, OSError) as e:
        raise CollectorError(f"export key: {e}") from None
    verdict = verify(args.dir, key)
    for problem in verdict.problems:
        print(problem)
    if not verdict.ok:
        return 1
    print(f"OK: {args.dir} (files, signature, {verdict.links} earlier exports in the chain)")
    return 0


def cmd_export_key(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    from collector.export.manifest import load_or_create_key, public_pem  # noqa: PLC0415

    print(public_pem(load_or_create_key(export_key_path(cfg))), end="")
    return 0


def _period_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--period", help=_("a month 2026-11, a quarter 2026-Q4 or a year 2026"))
    p.add_argument("--from", dest="start", metavar="YYYY-MM-DD", help=_("first day (with --to)"))
    p.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help=_("last day, included"))
    p.add_argument("--district")
    p.add_argument("--commune")
    p.add_argument("--unit")
    p.add_argument("--lang", choices=("vi", "en"), default=current_language())


def add_report_parsers(sub: Any) -> None:
    rp = sub.add_parser(
        "report", help=_("the indicators of a place and period (docs/indicators.md)")
    )
    _period_args(rp)
    add_output_options(rp)
    rp.set_defaults(handler=cmd_report)
    ex = sub.add_parser("export", help=_("sealed audit exports (docs/reports.md)"))
    ex_sub = ex.add_subparsers(dest="sub")
    ex.set_defaults(handler=cmd_export)
    _period_args(ex)
    ex.add_argument("--format", default="xlsx,csv,pdf,json", help=_("any of xlsx,csv,pdf,json"))
    ex.add_argument("--out", type=Path, help=_("folder that keeps the exports (and their chain)"))
    ev = ex_sub.add_parser("verify", help=_("check an export's files, signature and chain"))
    ev.add_argument("dir", type=Path)
    ev.add_argument("--public-key", type=Path, help=_("PEM public key (default: the collector's)"))
    ev.set_defaults(handler=cmd_export_verify)
    ex_sub.add_parser("key", help=_("print the public key auditors verify with")).set_defaults(
        handler=cmd_export_key
    )
