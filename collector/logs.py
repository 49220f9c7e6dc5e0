"""The collector's log lines: text or JSON (one object a line), each time ISO 8601 with its
offset, to stderr or to a file rotated by size."""

from __future__ import annotations

import datetime
import json
import logging
import logging.handlers
from pathlib import Path
from typing import Literal

__all__ = ["JsonFormatter", "TextFormatter", "configure_logging"]

LogFormat = Literal["text", "json"]


def _iso(ts: float) -> str:
    """2026-12-03T20:05:01.123+07:00: the machine's zone, always with its offset."""
    return datetime.datetime.fromtimestamp(ts).astimezone().isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _iso(record.created)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message (and exception), for journald,
    Loki or any log shipper that reads JSON lines."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure_logging(
    level: str,
    fmt: LogFormat = "text",
    file: Path | None = None,
    max_bytes: int = 10 * 1024 * 1024,
    backups: int = 5,
) -> logging.Handler:
    """The root logger's one handler: stderr, or `file` rotated at `max_bytes` keeping
    `backups` old files (file.1 ... file.N)."""
    handler: logging.Handler
    if file is None:
        handler = logging.StreamHandler()
    else:
        handler = logging.handlers.RotatingFileHandler(
            file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
