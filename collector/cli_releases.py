"""`canhgac-collector release`: the release key, signing, adding, rolling out and withdrawing
agent packages (docs/fleet.md, Releases). `cryptography` loads only to make keys and sign."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from canhgac_common.i18n import N_
from canhgac_common.i18n import gettext_ as _
from canhgac_common.output import Column, emit_document, emit_records, iso_time, output_parent
from canhgac_common.release import (
    Manifest,
    ManifestError,
    Package,
    manifest_bytes,
    platform_of_file,
    public_key_bytes,
    sha256_file,
    verify_manifest,
)
from canhgac_common.units import duration_option
from collector.config import CollectorConfig, releases_dir
from collector.errors import CollectorError
from collector.model import Release, ReleasePlace
from collector.releases import agent_state, package_path, targets
from collector.store import Store

__all__ = ["add_release_parsers", "sign_packages"]

MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"


def _store(cfg: CollectorConfig) -> Store:
    return Store(cfg.store.url, cfg.store.sqlite_synchronous)


def _private_key(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PrivateKey,
    )

    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as e:
        raise CollectorError(f"--sign {path}: cannot read: {e.strerror}") from None
    except ValueError as e:
        raise CollectorError(f"--sign {path}: not a PEM private key: {e}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CollectorError(f"--sign {path}: not an Ed25519 private key")
    return key


def _public_pem(key: Any) -> str:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    pem: bytes = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


def cmd_release_key(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    """A new release keypair: the private key (0600) for the offline machine, the public key
    beside it (`.pub`) for the agents' config."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PrivateKey,
    )

    path: Path = args.out
    if path.exists():
        raise CollectorError(
            _("{path}: exists already; a release key is never overwritten").format(path=path)
        )
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        public = path.with_name(path.name + ".pub")
        public.write_text(_public_pem(key), encoding="ascii")
    except OSError as e:
        raise CollectorError(f"{e.filename}: cannot write: {e.strerror}") from None
    print(
        _(
            "release key written to {path} (keep it off the collector); public key {public}:"
            " give it to the agents (update.public_key)"
        ).format(path=path, public=public)
    )
    print(_public_pem(key), end="")
    return 0


def _packages(paths: Sequence[Path]) -> dict[str, Package]:
    packages: dict[str, Package] = {}
    for path in paths:
        try:
            platform = platform_of_file(path.name)
            size = path.stat().st_size
        except ManifestError as e:
            raise CollectorError(str(e)) from None
        except OSError as e:
            raise CollectorError(f"{path}: cannot read: {e.strerror}") from None
        if platform in packages:
            raise CollectorError(
                _("{path}: a second package for {platform}").format(path=path, platform=platform)
            )
        if size == 0:
            raise CollectorError(_("{path}: empty file").format(path=path))
        packages[platform] = Package(platform, path.name, size, sha256_file(path))
    return packages


def sign_packages(
    paths: Sequence[Path], key_path: Path, version: str, channel: str, now: float
) -> tuple[bytes, bytes]:
    """The manifest of these packages and its signature by the key at `key_path`."""
    manifest = Manifest(version, channel, now, _packages(paths))
    data = manifest_bytes(manifest)
    try:
        from canhgac_common.release import parse_manifest  # noqa: PLC0415

        parse_manifest(data)  # the version and channel are what agents accept
    except ManifestError as e:
        raise CollectorError(str(e)) from None
    return data, _private_key(key_path).sign(data)


def cmd_release_sign(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    data, signature = sign_packages(
        args.packages, args.key, args.version, args.channel, time.time()
    )
    out: Path = args.out
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / MANIFEST_FILE).write_bytes(data)
        (out / SIGNATURE_FILE).write_bytes(signature)
    except OSError as e:
        raise CollectorError(f"{e.filename}: cannot write: {e.strerror}") from None
    print(
        _("signed {version}: {manifest} and {signature}").format(
            version=args.version, manifest=out / MANIFEST_FILE, signature=out / SIGNATURE_FILE
        )
    )
    return 0


def _check_public_key(args: argparse.Namespace, data: bytes, signature: bytes) -> Manifest:
    if args.public_key is None:
        raise CollectorError(
            _("--manifest needs --public-key: the key the agents trust checks the signature")
        )
    try:
        key = public_key_bytes(args.public_key.read_text(encoding="ascii"))
        return verify_manifest(data, signature, key)
    except OSError as e:
        raise CollectorError(f"--public-key {args.public_key}: cannot read: {e.strerror}") from None
    except (ManifestError, UnicodeDecodeError) as e:
        raise CollectorError(f"--public-key {args.public_key}: {e}") from None


def cmd_release_add(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    if (args.sign is None) == (args.manifest is None):
        raise CollectorError(_("release add: give --sign KEY or --manifest FILE (one of them)"))
    if args.sign is not None:
        if not args.version:
            raise CollectorError(_("release add --sign: --version is required"))
        data, signature = sign_packages(
            args.packages, args.sign, args.version, args.channel, time.time()
        )
        manifest = verify_manifest(
            data, signature, public_key_bytes(_public_pem(_private_key(args.sign)))
        )
    else:
        try:
            data = args.manifest.read_bytes()
            signature = args.manifest.with_name(SIGNATURE_FILE).read_bytes()
        except OSError as e:
            raise CollectorError(f"{e.filename}: cannot read: {e.strerror}") from None
        manifest = _check_public_key(args, data, signature)
    given = {p.name: p for p in args.packages}
    for package in manifest.packages.values():
        path = given.get(package.file)
        if path is None:
            raise CollectorError(
                _("{file}: listed in the manifest but not given").format(file=package.file)
            )
        if path.stat().st_size != package.size or sha256_file(path) != package.sha256:
            raise CollectorError(
                _("{path}: not the package the manifest signed (size or sha256)").format(path=path)
            )
    directory = releases_dir(cfg)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for package in manifest.packages.values():
            _copy(given[package.file], package_path(directory, package.sha256, package.file))
    except OSError as e:
        raise CollectorError(f"releases.dir {directory}: cannot write: {e.strerror}") from None
    store = _store(cfg)
    try:
        store.releases.add(
            manifest.version,
            channel=manifest.channel,
            manifest=data,
            signature=signature,
            now=time.time(),
            report_within=cfg.releases.report_within,
        )
    finally:
        store.close()
    print(
        _(
            "release {version} ({channel}) added: {n} package(s) in {dir}; offered to no agent"
            " until `release rollout {version}`"
        ).format(
            version=manifest.version,
            channel=manifest.channel,
            n=len(manifest.packages),
            dir=directory,
        )
    )
    return 0


def _copy(source: Path, target: Path) -> None:
    """Copied beside and renamed: a Download never reads a half-copied package."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as f:
            shutil.copyfileobj(f, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _record(r: Release) -> dict[str, Any]:
    from canhgac_common.release import parse_manifest  # noqa: PLC0415

    m = parse_manifest(r.manifest)
    state = "withdrawn" if r.withdrawn_at else "rolled-out" if r.rolled_out_at else "added"
    return {
        "version": r.version,
        "channel": r.channel,
        "state": state,
        "share": r.share,
        "places": [p.as_dict() for p in r.places],
        "report_within_seconds": r.report_within,
        "added_at": iso_time(r.added_at),
        "rolled_out_at": iso_time(r.rolled_out_at),
        "withdrawn_at": iso_time(r.withdrawn_at),
        "packages": {
            p.platform: {"file": p.file, "size": p.size, "sha256": p.sha256}
            for p in m.packages.values()
        },
    }


RELEASE_COLUMNS: list[Column] = [
    (N_("VERSION"), "version"),
    (N_("CHANNEL"), "channel"),
    (N_("STATE"), "state"),
    (N_("SHARE"), lambda r: f"{r['share']}%"),
    (N_("PLACES"), lambda r: _places_text(r["places"])),
    (N_("PACKAGES"), lambda r: ",".join(r["packages"])),
]


def _places_text(places: Sequence[Mapping[str, str]]) -> str:
    return "; ".join("/".join(v for v in p.values() if v) for p in places) or "-"


def cmd_release_list(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    store = _store(cfg)
    try:
        records = [_record(r) for r in store.releases.all()]
    finally:
        store.close()
    emit_records(args, records, RELEASE_COLUMNS)
    return 0


def cmd_release_show(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    store = _store(cfg)
    try:
        release = store.releases.get(args.version)
        if release is None:
            raise CollectorError(_("no release {version}").format(version=args.version))
        fleet = store.fleet()
    finally:
        store.close()
    now = time.time()
    agents = []
    counts: dict[str, int] = {}
    for agent, snapshot in fleet:
        if not targets(release, agent.agent_id, agent.placement):
            continue
        u = agent_state(release, agent, snapshot, now)
        counts[u.state] = counts.get(u.state, 0) + 1
        agents.append(
            {
                "agent_id": u.agent_id,
                "hostname": u.hostname,
                "commune": u.placement.commune,
                "running": u.running,
                "state": u.state,
                "detail": u.detail,
                "downloaded_bytes": u.downloaded_bytes,
            }
        )
    emit_document(args, {**_record(release), "agents_by_state": counts, "agents": agents})
    return 0


def cmd_release_rollout(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    places = []
    if args.district or args.commune or args.unit:
        places.append(ReleasePlace(args.district or "", args.commune or "", args.unit or ""))
    if not 0 <= args.share <= 100:
        raise CollectorError(_("--share: {share} is not 0..100").format(share=args.share))
    store = _store(cfg)
    try:
        store.releases.rollout(args.version, args.share, places, time.time(), args.report_within)
    finally:
        store.close()
    where = _places_text([p.as_dict() for p in places]) if places else _("every place")
    print(
        _("release {version} offered to {share} of its channel's agents in {where}").format(
            version=args.version, share=f"{args.share}%", where=where
        )
    )
    return 0


def cmd_release_withdraw(cfg: CollectorConfig, args: argparse.Namespace) -> int:
    store = _store(cfg)
    try:
        store.releases.withdraw(args.version, time.time())
    finally:
        store.close()
    print(
        _(
            "release {version} withdrawn: its agents are offered the channel's release before"
            " it again"
        ).format(version=args.version)
    )
    return 0


def add_release_parsers(sub: Any) -> None:
    re_ = sub.add_parser("release", help=_("signed agent packages for self-update")).add_subparsers(
        dest="sub", required=True
    )
    k = re_.add_parser("key", help=_("make the release keypair (on the offline machine)"))
    k.add_argument("--out", type=Path, required=True, metavar="KEYFILE")
    k.set_defaults(handler=cmd_release_key)

    def packaged(p: argparse.ArgumentParser) -> None:
        p.add_argument("packages", type=Path, nargs="+", metavar="PACKAGE", help=_(".msi, .deb"))
        p.add_argument("--version", dest="version", help=_("the agent version they install"))
        p.add_argument("--channel", default="stable", help=_("stable (default), pilot, ..."))

    s = re_.add_parser("sign", help=_("sign packages into manifest.json + manifest.sig"))
    packaged(s)
    s.add_argument("--key", type=Path, required=True, metavar="KEYFILE")
    s.add_argument("--out", type=Path, required=True, metavar="DIR")
    s.set_defaults(handler=cmd_release_sign)
    a = re_.add_parser("add", help=_("keep packages and their signed manifest at the collector"))
    packaged(a)
    a.add_argument("--sign", type=Path, metavar="KEYFILE", help=_("sign here with this key"))
    a.add_argument(
        "--manifest", type=Path, metavar="FILE", help=_("signed by `release sign` elsewhere")
    )
    a.add_argument(
        "--public-key", type=Path, metavar="FILE", help=_("checks --manifest's signature")
    )
    a.set_defaults(handler=cmd_release_add)
    re_.add_parser("list", help=_("every release"), parents=[output_parent()]).set_defaults(
        handler=cmd_release_list
    )
    sh = re_.add_parser(
        "show", help=_("one release and its agents' states"), parents=[output_parent()]
    )
    sh.add_argument("version")
    sh.set_defaults(handler=cmd_release_show)
    ro = re_.add_parser("rollout", help=_("offer a release to a share and/or a place"))
    ro.add_argument("version")
    ro.add_argument("--share", type=int, default=100, help=_("percent of agents (default 100)"))
    ro.add_argument("--district")
    ro.add_argument("--commune")
    ro.add_argument("--unit")
    ro.add_argument(
        "--report-within",
        type=duration_option,
        help=_("failed if not reported this long after (default: releases.report_within)"),
    )
    ro.set_defaults(handler=cmd_release_rollout)
    w = re_.add_parser("withdraw", help=_("stop offering a release"))
    w.add_argument("version")
    w.set_defaults(handler=cmd_release_withdraw)
