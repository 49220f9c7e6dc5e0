"""The agent's install carries only the agent's dependencies: `.[agent]` in a fresh venv."""

from __future__ import annotations

import json
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What the collector needs and an agent on an old office PC must not carry (issue 17).
COLLECTOR_ONLY = {
    "grpcio",
    "sqlalchemy",
    "psycopg",
    "psycopg-binary",
    "pydantic",
    "pydantic-core",
    "common-expression-language",
    "jinja2",
}

pytestmark = pytest.mark.slow


def test_agent_extra_alone_installs_and_runs(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--quiet", f"{ROOT}[agent]"], check=True, timeout=600)

    listed = subprocess.run(
        [*pip, "list", "--format=json"], check=True, capture_output=True, text=True
    )
    installed = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert "canhgac" in installed
    assert {"h2", "psutil", "protobuf", "pyyaml"} <= installed
    assert installed & COLLECTOR_ONLY == set()

    # From a directory outside the checkout, so the installed package is what runs.
    run = subprocess.run(
        [str(env_dir / "bin" / "canhgac-agent"), "once", "--print"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode in (0, 1), run.stderr  # 1: a probe reported an error entry
    report = json.loads(run.stdout)
    assert report["hardware"]["host"]["os_name"]
    assert report["hardware"]["cpu"]["logical_cores"] >= 1
    # The collector's CLI is not usable from this install: its dependencies are absent.
    probe = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", "import collector.cli"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode != 0
    assert "ModuleNotFoundError" in probe.stderr
