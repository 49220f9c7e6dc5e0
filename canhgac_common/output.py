"""What the two CLIs print: tables or YAML for people, JSON for scripts (`--json`, `-o json`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

import yaml

from canhgac_common.i18n import gettext_ as _

__all__ = [
    "Column",
    "add_output_options",
    "emit_document",
    "emit_records",
    "iso_time",
    "output_parent",
    "survive_closed_pipe",
]

# (header, key in each record or a function of the record): what a table column shows.
Column = tuple[str, str | Callable[[Mapping[str, Any]], object]]


def iso_time(ts: float | None, zone: tzinfo | None = None) -> str | None:
    """Unix seconds as ISO 8601 with its offset ("2026-12-03T20:07:41+07:00") in `zone`
    (default: this machine's); None stays None: unknown is null, never "-" or 0."""
    if ts is None:
        return None
    when = datetime.fromtimestamp(ts, zone) if zone is not None else datetime.fromtimestamp(ts)
    return (when if zone is not None else when.astimezone()).isoformat(timespec="seconds")


def add_output_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-o",
        "--output",
        choices=("text", "json"),
        default="text",
        help=_("text (default) or json"),
    )
    group.add_argument(
        "--json", dest="output", action="store_const", const="json", help=_("same as -o json")
    )


def output_parent() -> argparse.ArgumentParser:
    """A parent parser for every list and show command: the same two options everywhere
    (built when the parser is, after the language is chosen)."""
    parent = argparse.ArgumentParser(add_help=False)
    add_output_options(parent)
    return parent


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _print_json(data: object) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def emit_records(
    args: argparse.Namespace, records: Sequence[Mapping[str, Any]], columns: Sequence[Column]
) -> None:
    """A list command's result: a JSON array of the records, or a table of `columns`."""
    if args.output == "json":
        _print_json(list(records))
        return
    headers = [_(h) for h, _c in columns]
    rows = [[_cell(r[c] if isinstance(c, str) else c(r)) for _h, c in columns] for r in records]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    for row in [headers, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def emit_document(args: argparse.Namespace, document: Mapping[str, Any]) -> None:
    """A show command's result: JSON, or the same keys and values as YAML for reading."""
    if args.output == "json":
        _print_json(document)
        return
    print(yaml.safe_dump(dict(document), allow_unicode=True, sort_keys=False).rstrip())


def survive_closed_pipe(main: Callable[[], int]) -> int:
    """`main()`, except that a reader that stopped reading (`agent list | head`) ends the
    command quietly, as `ls | head` does: no traceback, exit status 141 (SIGPIPE) like a shell."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would try to flush stdout again at exit and print an error: point it at
        # /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    return code
