"""An export's integrity: a signed manifest of every file, chained to the export before it.

`manifest.json` lists each file's SHA-256 and size, the export's parameters, and the SHA-256 of
the previous export's manifest in the same folder (a chain: removing or editing an earlier
export breaks every later link). `manifest.sig` is the Ed25519 signature of `manifest.json`'s
bytes by the collector's export key. Whoever holds the public key (`export key`) can check an
export without the collector: `export verify DIR`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from canhgac_common.files import atomic_write

__all__ = [
    "MANIFEST",
    "SIGNATURE",
    "Verdict",
    "load_or_create_key",
    "load_public_key",
    "public_pem",
    "seal",
    "verify",
]

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
FORMAT = "canhgac-export/1"
_CHUNK = 1 << 20


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The collector's export signing key, made on first use (mode 0600: it is a secret)."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, pem, mode=0o600)
    return key


def public_pem(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def load_public_key(path: Path) -> Ed25519PublicKey:
    data = path.read_bytes()
    try:
        key: object = serialization.load_pem_public_key(data)
    except ValueError:
        key = serialization.load_pem_private_key(data, password=None).public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 key")
    return key


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _files(folder: Path) -> list[str]:
    """Every file under `folder` but the manifest and its signature, as sorted POSIX paths."""
    out = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and rel not in (MANIFEST, SIGNATURE):
            out.append(rel)
    return sorted(out)


def _latest(root: Path, exclude: Path) -> Path | None:
    """The newest sealed export in `root` (by the time its manifest says it was made)."""
    best: tuple[float, str] | None = None
    found = None
    for d in root.iterdir():
        m = d / MANIFEST
        if d == exclude or d.name.startswith(".") or not m.is_file():
            continue
        try:
            made = float(json.loads(m.read_bytes())["created_at_unix"])
        except (ValueError, KeyError, TypeError):
            continue  # not ours, or damaged: verify says so when asked about it
        if best is None or (made, d.name) > best:
            best, found = (made, d.name), d
    return found


def seal(
    root: Path,
    name: str,
    parameters: Mapping[str, Any],
    *,
    key: Ed25519PrivateKey,
    write: Callable[[Path], None],
    now: float | None = None,
) -> Path:
    """Make the export `root/name`: `write(folder)` fills a temporary folder, which is then
    sealed with its manifest and renamed into place, so a crash leaves no half export."""
    final = root / name
    if final.exists():
        raise FileExistsError(f"{final} exists already: an export is never overwritten")
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        write(tmp)
        previous = _latest(root, exclude=tmp)
        made = time.time() if now is None else now
        manifest = {
            "format": FORMAT,
            "name": name,
            "created_at_unix": made,
            "parameters": dict(parameters),
            "files": {
                rel: {"sha256": _sha256(tmp / rel), "bytes": (tmp / rel).stat().st_size}
                for rel in _files(tmp)
            },
            "previous": None
            if previous is None
            else {"name": previous.name, "sha256": _sha256(previous / MANIFEST)},
            "public_key": public_pem(key),
        }
        body = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode()
        (tmp / MANIFEST).write_bytes(body)
        (tmp / SIGNATURE).write_bytes(base64.b64encode(key.sign(body)) + b"\n")
        for p in tmp.rglob("*"):
            if p.is_file():
                with p.open("rb") as f:
                    os.fsync(f.fileno())
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


@dataclass(frozen=True, slots=True)
class Verdict:
    folder: Path
    problems: tuple[str, ...]
    links: int  # earlier exports whose manifests were checked through the chain

    @property
    def ok(self) -> bool:
        return not self.problems


def _manifest(folder: Path, key: Ed25519PublicKey) -> tuple[dict[str, Any] | None, list[str]]:
    try:
        body = (folder / MANIFEST).read_bytes()
    except OSError as e:
        return None, [f"{folder.name}: {MANIFEST} unreadable ({e.strerror or e})"]
    problems = []
    try:
        sig = base64.b64decode((folder / SIGNATURE).read_bytes().strip(), validate=True)
        key.verify(sig, body)
    except OSError:
        problems.append(f"{folder.name}: {SIGNATURE} missing")
    except (InvalidSignature, ValueError):
        problems.append(f"{folder.name}: signature does not match {MANIFEST} or this key")
    try:
        manifest = json.loads(body)
    except ValueError:
        return None, [*problems, f"{folder.name}: {MANIFEST} is not JSON"]
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return None, [*problems, f"{folder.name}: not a Canh Gác export manifest"]
    return manifest, problems


def verify(folder: Path, key: Ed25519PublicKey) -> Verdict:
    """Every file as the manifest says, nothing missing or extra, the signature, and each link
    of the chain back to the first export (the earlier exports' manifests and signatures)."""
    manifest, problems = _manifest(folder, key)
    if manifest is None:
        return Verdict(folder, tuple(problems), 0)
    listed: dict[str, dict[str, Any]] = manifest.get("files", {})
    present = set(_files(folder))
    for rel in sorted(listed):
        if rel not in present:
            problems.append(f"missing: {rel}")
        elif _sha256(folder / rel) != listed[rel].get("sha256"):
            problems.append(f"changed: {rel}")
    problems.extend(f"extra: {rel}" for rel in sorted(present - set(listed)))
    links = 0
    link = manifest.get("previous")
    seen = {folder.name}
    while link:
        prev = folder.parent / str(link.get("name", ""))
        if prev.name in seen or not (prev / MANIFEST).is_file():
            problems.append(f"chain broken: previous export {link.get('name')} is missing")
            break
        if _sha256(prev / MANIFEST) != link.get("sha256"):
            problems.append(f"chain broken: {prev.name}/{MANIFEST} changed since it was chained")
            break
        seen.add(prev.name)
        earlier, more = _manifest(prev, key)
        problems.extend(more)
        links += 1
        link = None if earlier is None else earlier.get("previous")
    return Verdict(folder, tuple(problems), links)
