"""`canhgac-collector settings`: central agent settings, layer by layer (docs/fleet.md)."""

from __future__ import annotations

import argparse
import getpass
import os
import time
from pathlib import Path
from typing import Any

import yaml

from canhgac_common.i18n import N_
from canhgac_common.i18n import gettext_ as _
from canhgac_common.output import Column, emit_document, emit_records, iso_time, output_parent
from canhgac_common.yamlfile import read_yaml
from collector.agent_settings import (
    Layer,
    SettingsError,
    changes,
    check_layer,
    effective,
    services_for,
    settings_hash,
    with_value,
    without_key,
)
from collector.config import CollectorConfig
from collector.model import SETTINGS_KEY
from collector.store import Store

__all__ = ["add_settings_parsers"]


def _store(cfg: CollectorConfig) -> Store:
    return Store(cfg.store.url, cfg.store.sqlite_synchronous)


def _author(given: str | None) -> str:
    """--author, else who ran the command (through sudo: the person, not root)."""
    return given or os.environ.get("SUDO_USER") or getpass.getuser()


def _layers(store: Store) -> dict[Layer, dict[str, Any]]:
    return {Layer.parse(k): v for k, v in store.settings.in_force()[1].items()}


LAYER_COLUMNS: list[Column] = [
    (N_("LAYER"), "layer"),
    (N_("VERSION"), "version"),
    (N_("CHANGED"), "changed_at"),
    (N_("AUTHOR"), "author"),
    (N_("AGENTS"), "agents"),
    (N_("REASON"), "reason"),
]


def cmd_settings_show(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    store = _store(cfg)
    if args.layer is not None:
        layer = Layer.parse(args.layer)
        found = store.settings.layer(str(layer))
        if found is None or not found.document:
            raise SettingsError(_("{layer}: no such layer").format(layer=layer))
        emit_document(
            args,
            {
                "layer": str(layer),
                "version": found.version,
                "changed_at": iso_time(found.created_at),
                "author": found.author,
                "reason": found.reason,
                "settings": found.document,
            },
        )
        return 0
    fleet = [a for a in store.list_agents() if a.revoked_at is None]
    records = [
        {
            "layer": v.layer,
            "version": v.version,
            "changed_at": iso_time(v.created_at),
            "author": v.author,
            "agents": sum(1 for a in fleet if Layer.parse(v.layer).applies_to(a)),
            "reason": v.reason,
            "settings": v.document,
        }
        for v in sorted(store.settings.current(), key=lambda v: Layer.parse(v.layer).order())
    ]
    emit_records(args, records, LAYER_COLUMNS)
    return 0


def _parse_assignment(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise SettingsError(_("{arg}: write KEY=VALUE, e.g. probes.link.count=5").format(arg=text))
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise SettingsError(
            _("{key}: the value is not YAML: {why}").format(key=key, why=e)
        ) from None


def _store_change(
    cfg: CollectorConfig,
    args: argparse.Namespace,
    layer: Layer,
    build: Any,
) -> int:
    store = _store(cfg)
    before = store.settings.layer(str(layer))
    old = before.document if before is not None else {}
    new = build(old)
    if new == old:
        print(_("{layer}: nothing changes").format(layer=layer))
        return 0
    if new:
        check_layer(layer, new)
    version = store.settings.change(
        str(layer),
        new,
        author=_author(args.author),
        reason=args.reason,
        now=time.time(),
        after=before.version if before is not None else 0,
    )
    fleet = [a for a in store.list_agents() if a.revoked_at is None]
    count = sum(1 for a in fleet if layer.applies_to(a))
    print(
        _(
            "{layer} version {v} stored ({n} changes); it applies to {agents} agents, "
            "which take it on their next report"
        ).format(layer=layer, v=version, n=len(changes(old, new)), agents=count)
    )
    return 0


def cmd_settings_set(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    layer = Layer.parse(args.layer)
    if args.file is not None:
        if args.assignments:
            raise SettingsError(_("give KEY=VALUE pairs or --file, not both"))
        data = read_yaml(args.file)
        whole = {} if data is None else data
        check_layer(layer, whole)
        return _store_change(cfg, args, layer, lambda _old: whole)
    if not args.assignments:
        raise SettingsError(_("nothing to set: give KEY=VALUE pairs or --file"))
    pairs = [_parse_assignment(a) for a in args.assignments]

    def build(old: dict[str, Any]) -> dict[str, Any]:
        doc = old
        for key, value in pairs:
            doc = with_value(doc, key, value)
        return doc

    return _store_change(cfg, args, layer, build)


def cmd_settings_unset(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    layer = Layer.parse(args.layer)

    def build(old: dict[str, Any]) -> dict[str, Any]:
        if args.all:
            return {}
        doc = old
        for key in args.keys:
            doc = without_key(doc, key)
        return doc

    if not args.all and not args.keys:
        raise SettingsError(_("nothing to unset: give keys, or --all to remove the layer"))
    return _store_change(cfg, args, layer, build)


HISTORY_COLUMNS: list[Column] = [
    (N_("CHANGE"), "change"),
    (N_("LAYER"), "layer"),
    (N_("VERSION"), "version"),
    (N_("CHANGED"), "changed_at"),
    (N_("AUTHOR"), "author"),
    (N_("KEYS"), lambda r: ",".join(c["key"] for c in r["changes"]) or "-"),
    (N_("REASON"), "reason"),
]


def _change(key: str, old: Any, new: Any) -> dict[str, Any]:
    return {"key": key, "old": old, "new": new}


def cmd_settings_history(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    store = _store(cfg)
    layer = str(Layer.parse(args.layer)) if args.layer is not None else None
    previous: dict[str, dict[str, Any]] = {}
    records = []
    for v in store.settings.history(layer):
        records.append(
            {
                "change": v.change_id,
                "layer": v.layer,
                "version": v.version,
                "changed_at": iso_time(v.created_at),
                "author": v.author,
                "reason": v.reason,
                "changes": [_change(*c) for c in changes(previous.get(v.layer, {}), v.document)],
            }
        )
        previous[v.layer] = v.document
    emit_records(args, records, HISTORY_COLUMNS)
    return 0


def cmd_settings_diff(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    layer = Layer.parse(args.layer)
    versions = {v.version: v.document for v in _store(cfg).settings.history(str(layer))}
    if not versions:
        raise SettingsError(_("{layer}: no such layer").format(layer=layer))
    newest = max(versions)
    to = args.to if args.to is not None else newest
    start = args.start if args.start is not None else to - 1
    for v in (start, to):
        if v != 0 and v not in versions:
            raise SettingsError(
                _("{layer}: no version {v} (versions 1 to {n}; 0 is before the first)").format(
                    layer=layer, v=v, n=newest
                )
            )
    found = [_change(*c) for c in changes(versions.get(start, {}), versions[to])]
    if args.output == "json":
        emit_document(args, {"layer": str(layer), "from": start, "to": to, "changes": found})
        return 0
    print(_("{layer}: version {a} -> {b}").format(layer=layer, a=start, b=to))
    for c in found:
        if c["old"] is None:
            print(f"+ {c['key']}: {_inline(c['new'])}")
        elif c["new"] is None:
            print(f"- {c['key']}: {_inline(c['old'])}")
        else:
            print(f"~ {c['key']}: {_inline(c['old'])} → {_inline(c['new'])}")
    return 0


def _inline(value: Any) -> str:
    text = yaml.safe_dump(value, allow_unicode=True, default_flow_style=True)
    return text.strip().removesuffix("...").strip()


def cmd_settings_effective(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    store = _store(cfg)
    agent = store.get_agent(args.agent_id)
    doc, origin = effective(_layers(store), agent, services_for(cfg.services)(agent))
    wanted = settings_hash(doc)
    running = store.snapshot(agent.agent_id).get(SETTINGS_KEY)
    emit_document(
        args,
        {
            "agent_id": agent.agent_id,
            "hash": wanted or None,
            # What the agent said in its latest report: the hash it runs, and the last push it
            # refused with why (null: an agent older than central settings, or none yet).
            "running": None
            if running is None
            else {
                "hash": running.get("hash") or None,
                "refused_hash": running.get("refused_hash") or None,
                "refused_reason": running.get("refused_reason") or None,
            },
            "in_sync": running is not None and running.get("hash", "") == wanted,
            "from_layers": {".".join(p): str(layer) for p, layer in sorted(origin.items())},
            "settings": doc,
        },
    )
    return 0


def add_settings_parsers(sub: Any) -> None:
    st = sub.add_parser(
        "settings", help=_("central agent settings, by layer (docs/fleet.md)")
    ).add_subparsers(dest="sub", required=True)
    layer_help = _(
        "defaults, role:ROLE, district:NAME, commune:[DISTRICT/]NAME, "
        "unit:[DISTRICT/COMMUNE/]NAME or agent:ID"
    )
    show = st.add_parser(
        "show", help=_("the layers in force, or one layer's settings"), parents=[output_parent()]
    )
    show.add_argument("layer", nargs="?", help=layer_help)
    show.set_defaults(handler=cmd_settings_show)

    def change_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("layer", help=layer_help)
        p.add_argument("--reason", required=True, help=_("why (kept in the history)"))
        p.add_argument("--author", help=_("who (default: the user running the command)"))

    sset = st.add_parser(
        "set", help=_("set keys of a layer (a new version), checked before it is stored")
    )
    change_args(sset)
    sset.add_argument(
        "assignments", nargs="*", metavar="KEY=VALUE", help=_("e.g. probes.link.count=5")
    )
    sset.add_argument("--file", type=Path, help=_("the whole layer from a YAML file"))
    sset.set_defaults(handler=cmd_settings_set)
    unset = st.add_parser("unset", help=_("remove keys from a layer (a new version)"))
    change_args(unset)
    unset.add_argument("keys", nargs="*", metavar="KEY")
    unset.add_argument("--all", action="store_true", help=_("remove the whole layer"))
    unset.set_defaults(handler=cmd_settings_unset)
    hist = st.add_parser(
        "history", help=_("every change: who, when, why, which keys"), parents=[output_parent()]
    )
    hist.add_argument("layer", nargs="?", help=layer_help)
    hist.set_defaults(handler=cmd_settings_history)
    diff = st.add_parser(
        "diff", help=_("what changed between two versions of a layer"), parents=[output_parent()]
    )
    diff.add_argument("layer", help=layer_help)
    diff.add_argument("start", nargs="?", type=int, metavar="FROM", help=_("default: TO - 1"))
    diff.add_argument("to", nargs="?", type=int, metavar="TO", help=_("default: the newest"))
    diff.set_defaults(handler=cmd_settings_diff)
    eff = st.add_parser(
        "effective",
        help=_("an agent's merged settings, where each key comes from, what it runs"),
        parents=[output_parent()],
    )
    eff.add_argument("agent_id")
    eff.set_defaults(handler=cmd_settings_effective)
