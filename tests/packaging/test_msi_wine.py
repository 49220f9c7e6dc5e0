"""The MSI round trip under wine: `make msi`'s build installed silently by wine's msiexec with
COLLECTOR/TOKEN against a real collector on loopback, the service started and its reports
stored, an upgrade to a second build, an uninstall that leaves no service and keeps the state.

Wine proves the installer and the service's lifecycle, not the probes (no WMI there): the
Windows probes fail under wine and say so in their reports' errors. docs/windows.md lists what
this does not prove."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.harness import (
    Running,
    collector_config,
    start_collector,
    stored_seqs,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "CanhGacAgent"
KEY = r"HKLM\SOFTWARE\CanhGac\Agent"
UPGRADE = ("0.1.0", "0.1.1")

pytestmark = [
    pytest.mark.slow,
    # A PyInstaller build under wine, a fresh wine prefix, three msiexec runs: minutes.
    pytest.mark.timeout(1800),
    pytest.mark.skipif(
        not all(shutil.which(t) for t in ("wine", "wineserver", "wixl", "msiinfo")),
        reason="wine, wixl, msiinfo (Debian: wine wine64 wixl msitools)",
    ),
]


def winpath(path: Path) -> str:
    return "Z:" + str(path).replace("/", "\\")


@dataclass
class Machine:
    """A fresh wine prefix: the Windows machine the MSI is installed on."""

    prefix: Path
    logs: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "WINEPREFIX": str(self.prefix),
            "WINEARCH": "win64",
            "WINEDEBUG": "-all",
        }

    def wine(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        # stdin from /dev/null, output to a file: no terminal and no pipe a test may close.
        # wine prints in the console code page (cp437 here: "á" is 0xa0), not UTF-8.
        with (self.logs / "wine.out").open("a+", encoding="utf-8", errors="replace") as out:
            start = out.tell()
            done = subprocess.run(
                ["wine", *argv],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
            out.seek(start)
            return subprocess.CompletedProcess(done.args, done.returncode, out.read(), "")

    def msiexec(self, *argv: str, log: str) -> subprocess.CompletedProcess[str]:
        return self.wine("msiexec", *argv, "/qn", "/l*v", winpath(self.logs / log))

    def reg(self, name: str) -> str | None:
        done = self.wine("reg", "query", KEY, "/v", name)
        for line in done.stdout.splitlines():
            parts = line.split(None, 2)
            if parts[:1] == [name] and len(parts) >= 2:
                return parts[2] if len(parts) == 3 else ""
        return None

    def products(self) -> dict[str, str]:
        """The agent's entries under Uninstall (what Apps & features lists): code -> version."""
        uninstall = r"HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall"
        out: dict[str, dict[str, str]] = {}
        key = ""
        for line in self.wine("reg", "query", uninstall, "/s").stdout.splitlines():
            if line.startswith("HKEY_"):
                key = line.rsplit("\\", 1)[-1]
            elif len(parts := line.split(None, 2)) == 3:
                out.setdefault(key, {})[parts[0]] = parts[2]
        return {
            k: v.get("DisplayVersion", "")
            for k, v in out.items()
            if v.get("DisplayName", "").startswith("Canh G")
        }

    def service_state(self) -> str:
        """RUNNING, STOPPED, ... or MISSING (sc query's STATE line)."""
        out = self.wine("sc", "query", SERVICE).stdout
        for line in out.splitlines():
            if line.strip().startswith("STATE"):
                return line.split()[-1]
        return "MISSING"

    def log(self, name: str) -> str:
        """An msiexec /l*v log (wine writes it in UTF-8, not Windows' UTF-16) or the agent's."""
        return (self.logs / name).read_bytes().decode("utf-8", errors="replace")

    def log_text(self) -> str:
        """The agent's own log under ProgramData."""
        path = self.prefix / "drive_c/ProgramData/CanhGac/logs/agent.log"
        return path.read_text(encoding="utf-8")

    @property
    def state_dir(self) -> Path:
        return self.prefix / "drive_c/ProgramData/CanhGac/agent"

    @property
    def program_dir(self) -> Path:
        return self.prefix / "drive_c/Program Files/CanhGac"


@pytest.fixture(scope="module")
def signing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed code-signing certificate and its key (PEM), made by openssl."""
    tmp = tmp_path_factory.mktemp("signing")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=Canh Gac test code signing", "-keyout", str(key), "-out", str(cert),
         "-addext", "extendedKeyUsage=codeSigning", "-addext", "keyUsage=digitalSignature"],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    return cert, key


def signature(path: Path, cert: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["osslsigncode", "verify", "-CAfile", str(cert), "-in", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def msis(tmp_path_factory: pytest.TempPathFactory, signing: tuple[Path, Path]) -> dict[str, Path]:
    """Two builds of `make msi` (packaging/windows/build.sh), the second a version later; the
    first signed (SIGN_CERT/SIGN_KEY, as `make msi` is given them), the second not."""
    out = tmp_path_factory.mktemp("dist")
    built = {}
    for version in UPGRADE:
        sign = {"SIGN_CERT": str(signing[0]), "SIGN_KEY": str(signing[1])}
        done = subprocess.run(
            [str(ROOT / "packaging/windows/build.sh")],
            env={
                **os.environ,
                "OUT": str(out),
                # The suite's own pip (a fresh Debian has none on PATH), as `make msi` passes it.
                "PIP": str(Path(sys.executable).parent / "pip"),
                "MSI_VERSION": version,
                **(sign if version == UPGRADE[0] else {}),
            },
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        built[version] = out / f"canhgac-agent-{version}.msi"
    return built


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[Machine]:
    m = Machine(tmp_path / "wineprefix", tmp_path / "logs")
    m.logs.mkdir()
    wine_env = {**m.env, "WINEDLLOVERRIDES": "mscoree,mshtml="}  # no Mono/Gecko prompt
    boot = subprocess.run(
        ["wineboot", "--init"],
        env=wine_env, stdin=subprocess.DEVNULL, capture_output=True, timeout=300, check=False,
    )  # fmt: skip
    assert boot.returncode == 0, boot.stderr
    subprocess.run(["wineserver", "--wait"], env=m.env, check=True, timeout=300)
    # A wineserver ends a few seconds after its last ordinary process, taking services.exe and
    # every service with it: kept alive for the test (a Windows machine's SCM just runs). Started
    # after wineboot's first run: a persistent server during it got a second services.exe and a
    # wineboot that never returned.
    subprocess.run(["wineserver", "--persistent"], env=m.env, check=True, timeout=60)
    try:
        yield m
    finally:
        subprocess.run(["wineserver", "--kill"], env=m.env, check=False, timeout=60)


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Running]:
    running = start_collector(collector_config(tmp_path / "collector.db", report_interval=1))
    running.app.releases.book.refresh = 0.0  # a release the CLI adds is offered at once
    yield running
    running.app.stop(grace=0)


def running_version(collector: Running, agent_id: str) -> str:
    """The version the agent's latest report says it runs."""
    return str(collector.app.store.snapshot(agent_id).get("update", {}).get("agent_version"))


def collector_cli(collector: Running, *args: str) -> str:
    """The real `canhgac-collector` on the test collector's database."""
    config = Path(collector.app.cfg.store.url.removeprefix("sqlite:///")).with_suffix(".yaml")
    config.write_text(f'{{"store": {{"url": "{collector.app.cfg.store.url}"}}}}\n')
    done = subprocess.run(
        [str(Path(sys.executable).parent / "canhgac-collector"), "--lang", "en",
         "--config", str(config), *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def write_agent_settings(machine: Machine, **sections: object) -> None:
    """The agent's own settings under ProgramData (optional on a real machine): no link probe,
    which would ping this host's real gateway."""
    settings = machine.prefix / "drive_c/ProgramData/CanhGac/agent.yaml"
    settings.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"probes": {"link": {"enabled": False}}, **sections})
    settings.write_text(text + "\n", encoding="utf-8")


@pytest.mark.skipif(shutil.which("osslsigncode") is None, reason="osslsigncode")
def test_signed_when_a_key_is_configured(msis: dict[str, Path], signing: tuple[Path, Path]) -> None:
    signed = signature(msis[UPGRADE[0]], signing[0])
    assert signed.returncode == 0, signed.stdout + signed.stderr
    assert "Signature verification: ok" in signed.stdout
    unsigned = signature(msis[UPGRADE[1]], signing[0])
    assert unsigned.returncode != 0 and "MSI file has no signature" in unsigned.stderr


def test_install_report_upgrade_uninstall(
    msis: dict[str, Path], machine: Machine, collector: Running, signing: tuple[Path, Path]
) -> None:
    db = Path(collector.app.cfg.store.url.removeprefix("sqlite:///"))
    token = collector.token()
    write_agent_settings(machine)

    done = machine.msiexec(
        "/i", winpath(msis[UPGRADE[0]]), f"COLLECTOR={collector.address}", f"TOKEN={token}",
        log="install.log",
    )  # fmt: skip
    assert machine.service_state() == "RUNNING", (done.returncode, machine.log("install.log"))
    assert done.returncode == 0, done.stdout
    wait_until(lambda: sum(map(len, stored_seqs(db).values())) >= 2, 180, "two reports")
    [agent_id] = stored_seqs(db)
    wait_until(lambda: not (machine.state_dir / "enroll.token").exists(), 60, "token used")
    assert (machine.state_dir / "credential.json").exists()
    assert machine.reg("Token") is None
    assert machine.reg("Collector") == collector.address
    # The token is nowhere the agent keeps things: not in its files, not in the registry.
    kept = machine.prefix / "drive_c/ProgramData/CanhGac"
    assert not [p for p in kept.rglob("*") if p.is_file() and token.encode() in p.read_bytes()]
    [product] = machine.products().values()
    assert product == UPGRADE[0]
    # In Vietnamese, the field's default (no LANGUAGE on a Windows PC): the frozen agent
    # carries its message catalogs (a build without them failed every command there).
    exe = machine.program_dir / "canhgac-agent.exe"
    # Through a pipe: wine gives a console program no valid standard handles otherwise.
    vi = subprocess.run(
        ["wine", str(exe), "--help"],
        env={**machine.env, "LANGUAGE": "vi", "LANG": "vi_VN.UTF-8"},
        stdin=subprocess.DEVNULL, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    text = vi.stdout.decode("utf-8", "replace") + vi.stderr.decode("utf-8", "replace")
    assert vi.returncode == 0 and "Traceback" not in text, text[-2000:]
    assert "đ" in text or "ư" in text, text[-2000:]  # Vietnamese, in UTF-8 through the pipe
    if shutil.which("osslsigncode"):  # the exe inside the signed MSI was signed too
        signed = signature(exe, signing[0])
        assert signed.returncode == 0, signed.stdout + signed.stderr

    # Upgrade: the newer build over it, without TOKEN. Same identity, credential, spool.
    credential = (machine.state_dir / "credential.json").read_bytes()
    spool_id = (machine.state_dir / "spool.id").read_bytes()
    before = len(stored_seqs(db)[agent_id])
    # Without COLLECTOR (install.md: only the first install needs it): the agent kept it.
    done = machine.msiexec("/i", winpath(msis[UPGRADE[1]]), log="upgrade.log")
    assert machine.service_state() == "RUNNING", (done.returncode, machine.log("upgrade.log"))
    assert done.returncode == 0, done.stdout
    wait_until(lambda: len(stored_seqs(db).get(agent_id, [])) >= before + 2, 180, "reports")
    assert running_version(collector, agent_id) == UPGRADE[1]
    assert list(stored_seqs(db)) == [agent_id]
    assert (machine.state_dir / "credential.json").read_bytes() == credential
    assert (machine.state_dir / "spool.id").read_bytes() == spool_id
    # The old product removed, the new one registered; the service restarted from it.
    assert list(machine.products().values()) == [UPGRADE[1]]
    assert machine.log_text().count(" reporting to ") == 2
    # The service limits C:\ProgramData\CanhGac to SYSTEM and Administrators at each start;
    # wine takes the call (what it then lets a user read is not something wine shows).
    assert "access not limited" not in machine.log_text()
    seqs = stored_seqs(db)[agent_id]
    assert seqs == sorted(set(seqs))  # one sequence across the upgrade, nothing sent twice

    # Uninstall: no service, no program files; the state dir stays.
    done = machine.msiexec("/x", winpath(msis[UPGRADE[1]]), log="uninstall.log")
    assert machine.service_state() == "MISSING", (done.returncode, machine.log("uninstall.log"))
    assert done.returncode == 0, done.stdout
    assert machine.products() == {}
    left = [p for p in machine.program_dir.rglob("*") if p.is_file()]
    assert not left, f"left in Program Files: {left}"
    assert (machine.state_dir / "credential.json").read_bytes() == credential


def test_self_update_installs_the_offered_msi(
    msis: dict[str, Path], machine: Machine, collector: Running, tmp_path: Path
) -> None:
    """The Windows self-update path: the running service is offered a signed release, downloads
    the MSI over its collector connection, verifies it and starts msiexec detached; msiexec
    stops that very service, upgrades it, starts the new one, which reports the new version."""
    db = Path(collector.app.cfg.store.url.removeprefix("sqlite:///"))
    key = tmp_path / "release.key"
    collector_cli(collector, "release", "key", "--out", str(key))
    public_key = (tmp_path / "release.key.pub").read_text(encoding="ascii")
    update = {"public_key": public_key, "rate": "50MiB", "chunk": "1MiB", "link_retry": "1s"}
    write_agent_settings(machine, update=update)
    done = machine.msiexec(
        "/i", winpath(msis[UPGRADE[0]]), f"COLLECTOR={collector.address}",
        f"TOKEN={collector.token()}", log="install.log",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout
    wait_until(lambda: sum(map(len, stored_seqs(db).values())) >= 2, 180, "two reports")
    [agent_id] = stored_seqs(db)
    assert running_version(collector, agent_id) == UPGRADE[0]
    credential = (machine.state_dir / "credential.json").read_bytes()

    package = msis[UPGRADE[1]]
    collector_cli(collector, "release", "add", str(package), "--sign", str(key),
                  "--version", UPGRADE[1])  # fmt: skip
    collector_cli(collector, "release", "rollout", UPGRADE[1], "--share", "100")

    def state() -> dict[str, object]:
        shown: dict[str, object] = json.loads(
            collector_cli(collector, "release", "show", UPGRADE[1], "--json")
        )
        return shown

    wait_until(lambda: running_version(collector, agent_id) == UPGRADE[1], 600, "the new version")
    shown = state()
    assert shown["agents_by_state"] == {"done": 1}, shown
    assert machine.service_state() == "RUNNING"
    assert list(machine.products().values()) == [UPGRADE[1]]
    # The MSI it installed is the one released, kept beside msiexec's log in the state dir.
    update_dir = machine.state_dir / "update"
    assert (update_dir / package.name).read_bytes() == package.read_bytes()
    install_log = update_dir / f"install-{UPGRADE[1]}.log"
    assert install_log.stat().st_size > 0
    # The same machine, identity and collector: nothing sent twice across the self-update.
    assert list(stored_seqs(db)) == [agent_id]
    assert (machine.state_dir / "credential.json").read_bytes() == credential
    assert machine.log_text().count(" reporting to ") == 2
    seqs = stored_seqs(db)[agent_id]
    assert seqs == sorted(set(seqs))


def test_self_update_rolls_back_a_version_that_does_not_report(
    msis: dict[str, Path], machine: Machine, tmp_path: Path
) -> None:
    """The Windows roll back: the 0.1.0 service is offered 0.1.1 with 0.1.0 kept at the
    collector (`--share 0`), fetches both MSIs and starts the watcher from a copy of its program;
    the collector then stops, so 0.1.1 cannot report. Past report_within (20 s) the watcher
    removes 0.1.1 and installs the 0.1.0 MSI the agent kept; with the collector back, 0.1.0
    reports under the same identity and the collector shows 0.1.1 rolled back."""
    cfg = collector_config(tmp_path / "collector.db", report_interval=1)
    collector = start_collector(cfg)
    collector.app.releases.book.refresh = 0.0
    db = Path(cfg.store.url.removeprefix("sqlite:///"))
    try:
        key = tmp_path / "release.key"
        collector_cli(collector, "release", "key", "--out", str(key))
        public_key = (tmp_path / "release.key.pub").read_text(encoding="ascii")
        update = {"public_key": public_key, "rate": "50MiB", "chunk": "1MiB",
                  "link_retry": "1s", "report_within": "20s"}  # fmt: skip
        write_agent_settings(machine, update=update)
        done = machine.msiexec(
            "/i", winpath(msis[UPGRADE[0]]), f"COLLECTOR={collector.address}",
            f"TOKEN={collector.token()}", log="install.log",
        )  # fmt: skip
        assert done.returncode == 0, done.stdout
        wait_until(lambda: sum(map(len, stored_seqs(db).values())) >= 2, 180, "two reports")
        [agent_id] = stored_seqs(db)
        credential = (machine.state_dir / "credential.json").read_bytes()
        for version in UPGRADE:
            collector_cli(collector, "release", "add", str(msis[version]), "--sign", str(key),
                          "--version", version)  # fmt: skip
        collector_cli(collector, "release", "rollout", UPGRADE[0], "--share", "0")
        collector_cli(collector, "release", "rollout", UPGRADE[1], "--share", "100")

        update_dir = machine.state_dir / "update"
        wait_until((update_dir / "watch.log").exists, 600, "the watcher started")
        port = int(collector.address.rsplit(":", 1)[1])
        collector.app.stop(grace=0)
        wait_until(lambda: list(machine.products().values()) == [UPGRADE[1]], 300, "0.1.1 in")
        wait_until(lambda: list(machine.products().values()) == [UPGRADE[0]], 300, "0.1.0 back")
        # What the watcher did, from the record it keeps and msiexec's logs beside it.
        result = json.loads((update_dir / "result.json").read_text(encoding="utf-8"))
        assert (result["version"], result["state"]) == (UPGRADE[1], "rolled-back"), result
        assert (update_dir / f"remove-{UPGRADE[1]}.log").stat().st_size > 0
        assert (update_dir / f"install-{UPGRADE[0]}.log").stat().st_size > 0
        assert not (update_dir / f"reported-{UPGRADE[1]}").exists()
        # The 0.1.0 the agent kept to roll back to is the one released.
        kept = update_dir / "previous" / msis[UPGRADE[0]].name
        assert kept.read_bytes() == msis[UPGRADE[0]].read_bytes()
        wait_until(lambda: machine.service_state() == "RUNNING", 120, "the service back")

        before = len(stored_seqs(db)[agent_id])
        collector = start_collector(cfg, port=port)
        collector.app.releases.book.refresh = 0.0
        wait_until(lambda: len(stored_seqs(db)[agent_id]) >= before + 2, 180, "reports again")
        # The spool sends what 0.1.0 and 0.1.1 collected during the outage first, in order.
        wait_until(lambda: running_version(collector, agent_id) == UPGRADE[0], 180, "0.1.0 says")

        def shown() -> dict[str, int]:
            out = collector_cli(collector, "release", "show", UPGRADE[1], "--json")
            return dict(json.loads(out)["agents_by_state"])

        wait_until(lambda: shown() == {"rolled-back": 1}, 120, "the roll back shown")
        assert list(stored_seqs(db)) == [agent_id]
        assert (machine.state_dir / "credential.json").read_bytes() == credential
        seqs = stored_seqs(db)[agent_id]
        assert seqs == sorted(set(seqs))  # one sequence across install, roll back, outage
        assert list(machine.products().values()) == [UPGRADE[0]]
    finally:
        collector.app.stop(grace=0)
