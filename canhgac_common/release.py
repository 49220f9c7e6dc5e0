"""Release manifests: their one format, the Ed25519 check of their signature, package hashes.

Shared by the collector (`release add` writes and signs a manifest) and the agent (it trusts a
manifest only when the configured release public key verifies it). The check is pure Python
(RFC 8032, section 6) and hashes with the interpreter's built-in SHA-2 modules, so the agent
neither maps OpenSSL (tests/integration/test_wire.py) nor ships the `cryptography` wheel in its
.deb and MSI for one signature check per release; signing stays on the machine holding the key.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "MANIFEST_FORMAT",
    "PLATFORMS",
    "Manifest",
    "ManifestError",
    "Package",
    "compare_versions",
    "ed25519_verify",
    "manifest_bytes",
    "parse_manifest",
    "platform_of_file",
    "public_key_bytes",
    "sha256_file",
    "sha256_hasher",
    "verify_manifest",
]

MANIFEST_FORMAT = 1
# Platform key -> what the package is: the MSI for Windows x64, the .deb for Debian amd64.
PLATFORMS = {"windows-x64": ".msi", "debian-amd64": ".deb"}
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+~-]{0,49}$")
_CHANNEL = re.compile(r"^[a-z][a-z0-9-]{0,29}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): 12 bytes, then the 32-byte key.
_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


class ManifestError(ValueError):
    """A manifest, signature or key that is not what it must be; the message says which part."""


@dataclass(frozen=True)
class Package:
    platform: str
    file: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    version: str
    channel: str
    created_at: float
    packages: Mapping[str, Package]


def _order(c: str) -> int:
    """dpkg's weight of a non-digit: "~" before the end, the end before letters, letters
    before everything else."""
    if c == "~":
        return -1
    if not c or c.isdigit():
        return 0
    return ord(c) if c.isascii() and c.isalpha() else ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    """dpkg's verrevcmp (lib/dpkg/version.c): alternating non-digit and digit runs."""
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac, bc = _order(a[i : i + 1]), _order(b[j : j + 1])
            if ac != bc:
                return ac - bc
            i, j = i + 1, j + 1
        start_i, start_j = i, j
        while i < len(a) and a[i].isdigit():
            i += 1
        while j < len(b) and b[j].isdigit():
            j += 1
        x, y = int(a[start_i:i] or 0), int(b[start_j:j] or 0)
        if x != y:
            return 1 if x > y else -1
    return 0


def compare_versions(a: str, b: str) -> int:
    """< 0, 0, > 0 as version `a` is older than, the same as, newer than `b`, in dpkg's order
    (`dpkg --compare-versions`; tests/unit/test_releases.py checks it against dpkg itself): the
    Debian packages' own order, and for the MSI's numeric a.b.c the plain one."""
    (ua, _, ra), (ub, _, rb) = (v.rpartition("-") if "-" in v else (v, "", "") for v in (a, b))
    return _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


def platform_of_file(name: str) -> str:
    """The platform a package file is for, by its suffix (.msi, .deb)."""
    for platform, suffix in PLATFORMS.items():
        if name.lower().endswith(suffix):
            return platform
    raise ManifestError(f"{name}: not an agent package (.msi for Windows x64, .deb for Debian)")


def manifest_bytes(manifest: Manifest) -> bytes:
    """The manifest as it is signed: JSON, sorted keys, no spaces, UTF-8."""
    document = {
        "format": MANIFEST_FORMAT,
        "version": manifest.version,
        "channel": manifest.channel,
        "created_at": manifest.created_at,
        "packages": {
            p.platform: {"file": p.file, "size": p.size, "sha256": p.sha256}
            for p in manifest.packages.values()
        },
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def parse_manifest(data: bytes) -> Manifest:
    """The manifest from its signed bytes; ManifestError names the key that is wrong."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ManifestError(f"manifest: not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ManifestError("manifest: not a JSON object")
    if doc.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"manifest.format: {doc.get('format')!r}, not {MANIFEST_FORMAT}")
    version, channel = doc.get("version"), doc.get("channel")
    if not isinstance(version, str) or not _VERSION.match(version):
        raise ManifestError(f"manifest.version: {version!r} is not a version")
    if not isinstance(channel, str) or not _CHANNEL.match(channel):
        raise ManifestError(f"manifest.channel: {channel!r} is not a channel name")
    created = doc.get("created_at")
    if not isinstance(created, int | float) or isinstance(created, bool):
        raise ManifestError("manifest.created_at: not a number")
    return Manifest(version, channel, float(created), _packages(doc.get("packages")))


def _packages(raw: Any) -> dict[str, Package]:
    if not isinstance(raw, dict) or not raw:
        raise ManifestError("manifest.packages: no package")
    packages = {}
    for platform, p in raw.items():
        where = f"manifest.packages.{platform}"
        if platform not in PLATFORMS:
            raise ManifestError(f"{where}: unknown platform")
        if not isinstance(p, dict):
            raise ManifestError(f"{where}: not an object")
        file, size, digest = p.get("file"), p.get("size"), p.get("sha256")
        if not isinstance(file, str) or not file or "/" in file or "\\" in file:
            raise ManifestError(f"{where}.file: {file!r} is not a file name")
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise ManifestError(f"{where}.size: {size!r} is not a positive size")
        if not isinstance(digest, str) or not _HEX64.match(digest):
            raise ManifestError(f"{where}.sha256: not 64 lower-case hex digits")
        packages[platform] = Package(platform, file, size, digest)
    return packages


def public_key_bytes(text: str) -> bytes:
    """The 32 bytes of an Ed25519 public key given as PEM (SubjectPublicKeyInfo), as base64 of
    the raw 32 bytes, or as base64 of the DER."""
    body = text.strip()
    if body.startswith("-----BEGIN"):
        if "PRIVATE KEY" in body.split("\n", 1)[0]:
            raise ManifestError("a private key, not the public one: give the public key only")
        lines = [ln for ln in body.splitlines() if ln and not ln.startswith("-----")]
        body = "".join(lines)
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ManifestError("not a PEM or base64 Ed25519 public key") from None
    if len(raw) == 32:
        return raw
    if len(raw) == 44 and raw.startswith(_SPKI_PREFIX):
        return raw[12:]
    raise ManifestError(f"not an Ed25519 public key ({len(raw)} bytes)")


def verify_manifest(data: bytes, signature: bytes, public_key: bytes) -> Manifest:
    """The manifest if `signature` is the release key's over exactly `data`, else ManifestError."""
    if not ed25519_verify(public_key, data, signature):
        raise ManifestError("manifest signature does not verify with the release public key")
    return parse_manifest(data)


# ---- hashes without OpenSSL -------------------------------------------------------------


def _builtin_hash(name: str) -> Callable[..., Any]:
    """The interpreter's own SHA-2 (3.12+: `_sha2`; 3.11: `_sha256`, `_sha512`), so hashing
    maps no OpenSSL; hashlib only where neither is built (it prefers OpenSSL)."""
    for module, attr in (("_sha2", name), (f"_{name}", name)):
        try:
            return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
        except (ImportError, AttributeError):
            continue
    import hashlib  # noqa: PLC0415

    return getattr(hashlib, name)  # type: ignore[no-any-return]


def sha256_hasher() -> Any:
    return _builtin_hash("sha256")()


def sha256_file(path: Path, limit: int | None = None) -> str:
    """Hex SHA-256 of the file (of its first `limit` bytes when given)."""
    h = sha256_hasher()
    with path.open("rb") as f:
        _feed(h, f, limit)
    return str(h.hexdigest())


def _feed(h: Any, f: BinaryIO, limit: int | None) -> None:
    left = limit
    while left is None or left > 0:
        block = f.read(1 << 20 if left is None else min(1 << 20, left))
        if not block:
            return
        h.update(block)
        if left is not None:
            left -= len(block)


# ---- Ed25519 verification (RFC 8032, section 6: its reference code) ------------------------

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_Point = tuple[int, int, int, int]


def _add(p: _Point, q: _Point) -> _Point:
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(s: int, p: _Point) -> _Point:
    q: _Point = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = _add(q, p)
        p = _add(p, p)
        s >>= 1
    return q


def _equal(p: _Point, q: _Point) -> bool:
    return (p[0] * q[2] - q[0] * p[2]) % _P == 0 and (p[1] * q[2] - q[1] * p[2]) % _P == 0


def _recover_x(y: int, sign: int) -> int | None:
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return None
    if (x & 1) != sign:
        x = _P - x
    return x


def _decompress(s: bytes) -> _Point | None:
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % _P)


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _recover_x(_GY, 0)
assert _GX is not None
_G: _Point = (_GX, _GY, 1, _GX * _GY % _P)


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether `signature` is a valid Ed25519 signature of `message` by `public_key`."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a = _decompress(public_key)
    r = _decompress(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:  # non-canonical: refused, as RFC 8032 requires
        return False
    digest = _builtin_hash("sha512")(signature[:32] + public_key + message).digest()
    k = int.from_bytes(digest, "little") % _L
    return _equal(_mul(s, _G), _add(r, _mul(k, a)))
