"""Who this agent is: the stable machine id and the credential kept 0600 in the state dir."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from agent.errors import AgentError, NotEnrolledError

__all__ = ["Credential", "load_credential", "machine_id", "save_credential"]

CREDENTIAL_FILE = "credential.json"
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
    return path


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
