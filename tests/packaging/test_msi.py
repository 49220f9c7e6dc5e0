"""The MSI's tables, read back with `msiinfo export` from what packaging/windows/msi.sh builds.

The payload here is a directory shaped like PyInstaller's --onedir output (its files are not a
working program): these tests are about the installer's tables. The frozen agent itself is
built by `make msi` (PyInstaller under wine)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRET_PROPERTIES = {"TOKEN", "TOKEN_FILE"}
COMMAND_LINE_PROPERTIES = {"COLLECTOR", "TOKEN", "TOKEN_FILE", "CA_FILE"}

pytestmark = pytest.mark.skipif(
    shutil.which("wixl") is None or shutil.which("msiinfo") is None,
    reason="wixl and msiinfo (Debian: wixl, msitools)",
)


def build(tmp_path: Path, version: str) -> Path:
    payload = tmp_path / f"payload-{version}"
    (payload / "_internal").mkdir(parents=True)
    (payload / "canhgac-agent.exe").write_bytes(b"MZ placeholder")
    (payload / "_internal" / "python312.dll").write_bytes(b"placeholder")
    (payload / "_internal" / "base_library.zip").write_bytes(b"placeholder")
    out = tmp_path / f"out-{version}"
    subprocess.run(
        [str(ROOT / "packaging/windows/msi.sh"), str(payload)],
        env={**os.environ, "OUT": str(out), "VERSION": version},
        check=True,
        capture_output=True,
    )
    return out / f"canhgac-agent-{version}.msi"


def table(msi: Path, name: str) -> list[dict[str, str]]:
    text = subprocess.run(
        ["msiinfo", "export", str(msi), name], check=True, capture_output=True, text=True
    ).stdout
    header, _types, _keys, *rows = text.splitlines()
    columns = header.split("\t")
    return [dict(zip(columns, row.split("\t"), strict=False)) for row in rows]


def properties(msi: Path) -> dict[str, str]:
    return {r["Property"]: r["Value"] for r in table(msi, "Property")}


@pytest.fixture(scope="module")
def msis(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("msi")
    return build(tmp, "0.1.0"), build(tmp, "0.2.0")


def test_service_installed_automatic_as_local_system_running_the_dispatcher(
    msis: tuple[Path, Path],
) -> None:
    [service] = table(msis[0], "ServiceInstall")
    assert service["Name"] == "CanhGacAgent"
    assert service["ServiceType"] == "16"  # SERVICE_WIN32_OWN_PROCESS
    assert service["StartType"] == "2"  # SERVICE_AUTO_START (delayed: set by the host itself)
    assert service["StartName"] == "LocalSystem"
    assert service["Arguments"] == "windows-service"
    files = {r["File"]: r for r in table(msis[0], "File")}
    assert files[service["Component_"]]["FileName"].endswith("canhgac-agent.exe")


def test_service_started_on_install_stopped_and_removed_on_uninstall(
    msis: tuple[Path, Path],
) -> None:
    [control] = table(msis[0], "ServiceControl")
    assert control["Name"] == "CanhGacAgent"
    # msidbServiceControlEvent: Start on install 1, Stop on install 2 (an upgrade replaces
    # the exe), Stop on uninstall 32, Delete on uninstall 128.
    assert int(control["Event"]) == 1 | 2 | 32 | 128
    assert control["Wait"] == "1"


def test_command_line_properties_are_secure_and_the_token_hidden(msis: tuple[Path, Path]) -> None:
    props = properties(msis[0])
    assert set(props["SecureCustomProperties"].split(";")) >= COMMAND_LINE_PROPERTIES
    assert "WIX_UPGRADE_DETECTED" in props["SecureCustomProperties"].split(";")
    assert set(props["MsiHiddenProperties"].split(";")) == SECRET_PROPERTIES
    # None of them has a value inside the MSI: they come from the msiexec command line.
    assert not COMMAND_LINE_PROPERTIES & set(props)
    values = {r["Name"]: r["Value"] for r in table(msis[0], "Registry")}
    assert values == {
        "Collector": "[COLLECTOR]",
        "Token": "[TOKEN]",
        "TokenFile": "[TOKEN_FILE]",
        "CaFile": "[CA_FILE]",
    }


def test_upgrade_code_stable_product_code_new_and_older_versions_replaced(
    msis: tuple[Path, Path],
) -> None:
    old, new = properties(msis[0]), properties(msis[1])
    assert old["UpgradeCode"] == new["UpgradeCode"]
    assert old["ProductCode"] != new["ProductCode"]
    assert (old["ProductVersion"], new["ProductVersion"]) == ("0.1.0", "0.2.0")
    upgrade = table(msis[1], "Upgrade")
    replaces = [r for r in upgrade if r["ActionProperty"] == "WIX_UPGRADE_DETECTED"]
    assert [(r["UpgradeCode"], r["VersionMax"]) for r in replaces] == [
        (new["UpgradeCode"], "0.2.0")
    ]
    actions = {r["Action"] for r in table(msis[1], "InstallExecuteSequence")}
    assert {"RemoveExistingProducts", "InstallServices", "StartServices"} <= actions


def test_every_payload_file_is_installed(msis: tuple[Path, Path]) -> None:
    names = sorted(r["FileName"].split("|")[-1] for r in table(msis[0], "File"))
    assert names == ["base_library.zip", "canhgac-agent.exe", "python312.dll"]
