"""The Windows service host: a pywin32 ServiceFramework around the same loop as `run`.

Imported only on Windows (the frozen `canhgac-agent.exe windows-service`, started by the
service manager). The MSI (packaging/windows/canhgac-agent.wxs) installs the service and writes
what `msiexec ... COLLECTOR= TOKEN= TOKEN_FILE= CA_FILE=` gave into the registry key below; at
start the host turns that into the agent's settings, moves the token into the state dir (the
first start enrolls with it and deletes it) and deletes the token's registry value. COLLECTOR
and CA_FILE are kept in the state dir too: an upgrade (by hand, or the agent's own self-update)
need not give them again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import logging.handlers
import os
import sys
import threading
from pathlib import Path

# Windows only: checkers on Linux treat the rest as unreachable (no pywin32 there).
assert sys.platform == "win32"

import winreg  # noqa: E402

import ntsecuritycon  # noqa: E402
import pywintypes  # noqa: E402
import servicemanager  # noqa: E402
import win32security  # noqa: E402
import win32service  # noqa: E402
import win32serviceutil  # noqa: E402

from agent.cli import ENROLL_TOKEN_FILE, run_until  # noqa: E402
from agent.config import AgentConfig, LocalFile, load_config  # noqa: E402
from canhgac_common.files import atomic_write  # noqa: E402

__all__ = ["SERVICE_NAME", "AgentService", "dispatch"]

SERVICE_NAME = "CanhGacAgent"
PROGRAM_DATA = Path(r"C:\ProgramData\CanhGac")
CONFIG_FILE = PROGRAM_DATA / "agent.yaml"
LOG_FILE = PROGRAM_DATA / "logs" / "agent.log"
# In the state dir: the last COLLECTOR and CA_FILE an install was given.
INSTALLER_FILE = "installer.json"
_REMEMBERED = ("Collector", "CaFile")
REGISTRY_KEY = r"SOFTWARE\CanhGac\Agent"
# Who may open anything under PROGRAM_DATA: LocalSystem (the service) and Administrators.
_OWNERS = ("S-1-5-18", "S-1-5-32-544")
_RESTART_AFTER_MS = 60_000  # failure actions: restart after 1 min, three times...
_RESET_AFTER_S = 86_400  # ...counted again after a day without failure

log = logging.getLogger("canhgac.agent.service")


def _installer_values() -> dict[str, str]:
    try:
        key = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, REGISTRY_KEY, 0, winreg.KEY_READ)
    except FileNotFoundError:
        return {}
    out: dict[str, str] = {}
    with key:
        for name in ("Collector", "Token", "TokenFile", "CaFile"):
            try:
                value, _ = winreg.QueryValueEx(key, name)
            except FileNotFoundError:
                continue
            if str(value).strip():
                out[name] = str(value).strip()
    return out


def _forget_token() -> None:
    access = winreg.KEY_SET_VALUE
    with (
        winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, REGISTRY_KEY, 0, access) as key,
        contextlib.suppress(FileNotFoundError),
    ):
        winreg.DeleteValue(key, "Token")


def _remembered(state_dir: Path, given: dict[str, str]) -> dict[str, str]:
    """`given` completed with the COLLECTOR and CA_FILE of an earlier install. A major upgrade
    removes the older product's registry values and writes the newer one's from its own
    command line, where an upgrade by hand or by the agent's self-update (a plain `msiexec /i`)
    gives none: without this the upgraded agent lost its collector. A value given again
    replaces the kept one."""
    path = state_dir / INSTALLER_FILE
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        kept = {}
    if not isinstance(kept, dict):
        kept = {}
    kept = {k: str(v) for k, v in kept.items() if k in _REMEMBERED and str(v).strip()}
    wanted = {**kept, **{k: v for k, v in given.items() if k in _REMEMBERED}}
    if wanted != kept:
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(path, json.dumps(wanted).encode(), 0o600)
        except OSError as e:
            log.warning("cannot keep the installer's values in %s: %s", path, e)
    return {**given, **wanted}


def settings() -> AgentConfig:
    """agent.yaml under ProgramData (if any), then what the installer was given (this time or,
    for COLLECTOR and CA_FILE, at an earlier install)."""
    cfg = load_config(CONFIG_FILE if CONFIG_FILE.exists() else None)
    given = _remembered(cfg.state_dir, _installer_values())
    collector = cfg.collector
    if "Collector" in given:
        collector = dataclasses.replace(collector, address=given["Collector"])
    if "CaFile" in given:
        tls = dataclasses.replace(collector.tls, enabled=True, ca_file=Path(given["CaFile"]))
        collector = dataclasses.replace(collector, tls=tls)
    cfg = dataclasses.replace(cfg, collector=collector)
    token = given.get("Token")
    if token is None and "TokenFile" in given:
        token = Path(given["TokenFile"]).read_text(encoding="utf-8").strip()
    if token and not (cfg.state_dir / "credential.json").exists():
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        (cfg.state_dir / ENROLL_TOKEN_FILE).write_text(token, encoding="utf-8")
    if "Token" in given:
        _forget_token()
    return cfg


def _restrict(path: Path) -> str | None:
    """Gives `path` a protected DACL (nothing inherited from above): full control for
    LocalSystem and Administrators, inherited by everything under it, existing files included.
    ProgramData's own ACL lets every local user read what is created under it and create files
    there: the agent's credential (whoever reads it can report as this machine), its spool and
    the self-update's files. An error to log, or None."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        dacl = win32security.ACL()
        inherit = ntsecuritycon.OBJECT_INHERIT_ACE | ntsecuritycon.CONTAINER_INHERIT_ACE
        for sid in _OWNERS:
            dacl.AddAccessAllowedAceEx(
                win32security.ACL_REVISION,
                inherit,
                ntsecuritycon.FILE_ALL_ACCESS,
                win32security.ConvertStringSidToSid(sid),
            )
        win32security.SetNamedSecurityInfo(
            str(path),
            win32security.SE_FILE_OBJECT,
            win32security.DACL_SECURITY_INFORMATION
            | win32security.PROTECTED_DACL_SECURITY_INFORMATION,
            None,
            None,
            dacl,
            None,
        )
    except (OSError, pywintypes.error) as e:
        return f"{path}: access not limited to SYSTEM and Administrators: {e}"
    return None


def _configure_self() -> None:
    """Delayed automatic start and failure actions (wixl's MSI tables cannot say them).

    Each setting on its own: one the service manager refuses (wine knows none but the failure
    actions) is a warning, not a reason for the agent not to run.
    """
    restart = (win32service.SC_ACTION_RESTART, _RESTART_AFTER_MS)
    settings: list[tuple[str, int, object]] = [
        ("delayed automatic start", win32service.SERVICE_CONFIG_DELAYED_AUTO_START_INFO, True),
        (
            "failure actions",
            win32service.SERVICE_CONFIG_FAILURE_ACTIONS,
            {
                "ResetPeriod": _RESET_AFTER_S,
                "RebootMsg": "",
                "Command": "",
                "Actions": [restart, restart, restart],
            },
        ),
        # A stop with an error exit code counts as a failure too, not only a crash.
        ("failure on error exit", win32service.SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, True),
    ]
    scm = win32service.OpenSCManager(None, None, win32service.SC_MANAGER_CONNECT)
    try:
        svc = win32service.OpenService(scm, SERVICE_NAME, win32service.SERVICE_CHANGE_CONFIG)
        try:
            for what, level, value in settings:
                try:
                    win32service.ChangeServiceConfig2(svc, level, value)
                except pywintypes.error as e:
                    log.warning("service %s not set: %s", what, e)
        finally:
            win32service.CloseServiceHandle(svc)
    finally:
        win32service.CloseServiceHandle(scm)


def _logging(level: str) -> None:
    LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.handlers.RotatingFileHandler(
        LOG_FILE, maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8"
    )
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    to_events = logging.handlers.NTEventLogHandler("Canh Gac agent")
    to_events.setLevel(logging.WARNING)
    root = logging.getLogger()
    root.handlers[:] = [to_file, to_events]
    root.setLevel(level.upper())


class AgentService(win32serviceutil.ServiceFramework):  # type: ignore[misc]
    _svc_name_ = SERVICE_NAME
    _svc_display_name_ = "Canh Gác agent"
    _svc_description_ = (
        "Giám sát máy tính cho Canh Gác / Canh Gác monitoring agent: collects and reports "
        "this machine's state to the district collector."
    )

    def __init__(self, args: list[str]) -> None:
        super().__init__(args)
        self._stop = threading.Event()

    def SvcStop(self) -> None:
        # The loop ends its cycle, flushes and closes the spool; allow it the delivery deadline.
        self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING, waitHint=30_000)
        self._stop.set()

    def SvcDoRun(self) -> None:
        refused = _restrict(PROGRAM_DATA)  # before the logs and the state dir are written
        _logging("info")
        if refused:
            log.warning("%s", refused)
        try:
            cfg = settings()
            _logging(cfg.log_level)
            _configure_self()
            local = LocalFile.read(CONFIG_FILE if CONFIG_FILE.exists() else None)
            run_until(cfg, self._stop, None, local)
        except Exception:
            log.exception("the agent service stopped on an error")
            raise  # reported to the service manager as a failure: its failure actions apply
        log.info("stopped")


def dispatch(argv: list[str]) -> int:
    """`canhgac-agent.exe windows-service`: hand this process to the service manager (the
    dispatcher pattern a frozen build needs; pythonservice.exe does not exist there)."""
    if argv:
        win32serviceutil.HandleCommandLine(AgentService, argv=[sys.argv[0], *argv])
        return 0
    servicemanager.Initialize()
    servicemanager.PrepareToHostSingle(AgentService)
    servicemanager.StartServiceCtrlDispatcher()
    # The service has reported STOPPED: msiexec's StopServices returns and RemoveFiles (an
    # uninstall, or the old product's removal in an upgrade) comes next, while this process
    # still maps canhgac-agent.exe and its DLLs, which cannot be deleted until it ends. Under
    # wine those files stayed behind; end now instead of through the interpreter's teardown
    # (the spool is closed and the loop's threads are done: run_until returned).
    logging.shutdown()
    os._exit(0)
