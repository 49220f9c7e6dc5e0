"""Who this agent is: the stable machine id and the credential kept 0600 in the state dir."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from agent.errors import AgentError, NotEnrolledError

__all__ = [
    "Credential",
    "Refusal",
    "load_credential",
    "load_refusal",
    "machine_id",
    "save_credential",
    "save_refusal",
]

CREDENTIAL_FILE = "credential.json"
# Written when the collector refused the credential for good (revoked, retired): a restart
# then does not deliver again, and `status` says why. A new enrollment removes it.
REFUSAL_FILE = "refused.json"
_LINUX_MACHINE_ID = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))


@dataclass(frozen=True)
class Credential:
    collector: str
    agent_id: str
    secret: str
    report_interval_seconds: int
    district: str = ""
    commune: str = ""
    unit: str = ""
    role: str = ""


@dataclass(frozen=True)
class Refusal:
    """The collector refused this agent's credential for good."""

    agent_id: str
    collector: str
    reason: str  # canhgac_common.refusal.REVOKED or RETIRED
    details: str  # what the collector said
    at: float  # when it was refused, this machine's clock (Unix seconds)


def _windows_machine_guid() -> str | None:
    try:
        import winreg  # noqa: PLC0415  (Windows only)

        key = winreg.OpenKey(  # type: ignore[attr-defined,unused-ignore]
            winreg.HKEY_LOCAL_MACHINE,  # type: ignore[attr-defined,unused-ignore]
            r"SOFTWARE\Microsoft\Cryptography",
        )
        value, _ = winreg.QueryValueEx(key, "MachineGuid")  # type: ignore[attr-defined,unused-ignore]
        return str(value)
    except (ImportError, OSError):
        return None


def _os_machine_id() -> str | None:
    if sys.platform == "win32":
        return _windows_machine_guid()
    for p in _LINUX_MACHINE_ID:
        try:
            text = p.read_text().strip()
        except OSError:
            continue
        if text:
            return text
    return None


def machine_id(state_dir: Path, os_id: str | None = None) -> str:
    """Stable id of this machine, salted and hashed so the raw OS id never leaves it.

    Falls back to a random id kept in the state dir when the OS has none (containers).
    """
    import hashlib  # noqa: PLC0415 (enrollment only: the service need not map OpenSSL)

    raw = os_id if os_id is not None else _os_machine_id()
    if not raw:
        fallback = state_dir / "machine-id"
        try:
            raw = fallback.read_text().strip()
        except FileNotFoundError:
            raw = os.urandom(16).hex()
            _write_private(fallback, raw.encode())
    return hashlib.sha256(f"canhgac:{raw}".encode()).hexdigest()[:32]


def save_credential(state_dir: Path, cred: Credential) -> Path:
    path = state_dir / CREDENTIAL_FILE
    _write_private(path, json.dumps(asdict(cred), ensure_ascii=False, indent=2).encode())
    (state_dir / REFUSAL_FILE).unlink(missing_ok=True)  # a new enrollment: deliver again
    return path


def save_refusal(state_dir: Path, refusal: Refusal) -> Path:
    path = state_dir / REFUSAL_FILE
    _write_private(path, json.dumps(asdict(refusal), ensure_ascii=False, indent=2).encode())
    return path


def load_refusal(state_dir: Path, agent_id: str) -> Refusal | None:
    """The refusal recorded for `agent_id`, or None. A record for another agent id (the
    machine enrolled again since) or one that cannot be read counts as none: the worst that
    does is one more refused delivery, which records it again."""
    try:
        refusal = Refusal(**json.loads((state_dir / REFUSAL_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    return refusal if refusal.agent_id == agent_id else None


def _write_private(path: Path, data: bytes) -> None:
    # Imported here: only enrollment writes files, and atomic_write's tempfile pulls in shutil
    # with bz2 and lzma, ≈ 0.6 MB the running service would keep (docs/performance.md).
    from canhgac_common.files import atomic_write  # noqa: PLC0415

    atomic_write(path, data, mode=0o600)


def load_credential(state_dir: Path) -> Credential:
    path = state_dir / CREDENTIAL_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotEnrolledError(
            f"not enrolled: {path} does not exist; run `canhgac-agent enroll "
            "--collector HOST:PORT --token TOKEN` first"
        ) from None
    except (OSError, ValueError) as e:
        raise AgentError(f"{path}: unreadable credential: {e}") from None
    try:
        return Credential(**data)
    except TypeError as e:
        raise AgentError(f"{path}: unexpected credential content: {e}") from None
