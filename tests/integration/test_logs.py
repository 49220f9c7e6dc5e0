"""The collector's log lines as a real `canhgac-collector serve` process writes them: JSON, one
object a line, times with their offset, into a file rotated by size."""

from __future__ import annotations

import datetime
import json
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from collector.logs import configure_logging
from tests.integration.harness import wait_until


def test_serve_writes_json_lines_with_zone_aware_times(tmp_path: Path) -> None:
    log_file = tmp_path / "collector.log"
    cfg = {
        "grpc_listen": "127.0.0.1:0",
        "http_listen": "127.0.0.1:0",
        "store": {"url": f"sqlite:///{tmp_path / 'c.db'}"},
        "log_format": "json",
        "log_file": str(log_file),
    }
    path = tmp_path / "collector.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "collector", "--config", str(path), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: log_file.exists() and "metrics on" in log_file.read_text(encoding="utf-8"),
            30,
            "the collector's start in its log file",
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert err == ""  # everything went to the file
    lines = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()]
    assert any(r["message"].startswith("metrics on http://") for r in lines)
    assert any("stopping" in r["message"] for r in lines)
    for r in lines:
        assert set(r) >= {"time", "level", "logger", "message"}
        stamp = datetime.datetime.fromisoformat(r["time"])
        assert stamp.utcoffset() is not None
        assert abs(stamp.timestamp() - time.time()) < 120


def test_log_file_rotates_by_size_and_keeps_the_backups(tmp_path: Path) -> None:
    log_file = tmp_path / "collector.log"
    root = logging.getLogger()
    kept, level = root.handlers[:], root.level  # pytest's own, put back after
    handler = configure_logging("info", "text", log_file, max_bytes=4096, backups=2)
    try:
        log = logging.getLogger("canhgac.test")
        for i in range(400):
            log.info("dòng %03d của nhật ký", i)
        handler.flush()
    finally:
        root.removeHandler(handler)
        handler.close()
        for h in kept:
            root.addHandler(h)
        root.setLevel(level)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["collector.log", "collector.log.1", "collector.log.2"]
    assert all((tmp_path / f).stat().st_size <= 4096 for f in files)
    last = (tmp_path / "collector.log").read_text(encoding="utf-8").splitlines()[-1]
    assert last.endswith("INFO canhgac.test: dòng 399 của nhật ký")
    stamp = datetime.datetime.fromisoformat(last.split(" ")[0])
    assert stamp.utcoffset() is not None
