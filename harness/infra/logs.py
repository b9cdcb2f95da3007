"""The one structured log style of lastmile's own processes (the deployer, the fault proxy): JSON lines with
``ts`` (ISO-8601 UTC, milliseconds), ``level``, ``logger``, ``message``, static fields, then the record's
``extra={"fields": {...}}`` flattened in, and ``exception`` when there is one. The serving app writes the same
keys with the same library (``serving/logs.py``; it cannot import the harness).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter


class LineFormatter(JsonFormatter):
    """python-json-logger's formatter with lastmile's keys; a quote or a traceback cannot break a line."""

    def __init__(self, static: dict[str, Any] | None = None):
        super().__init__(static_fields=dict(static or {}), reserved_attrs=[], timestamp=False)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_data["ts"] = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        log_data["level"] = record.levelname.lower()
        log_data["logger"] = record.name
        log_data["message"] = record.getMessage()
        log_data.update(self.static_fields)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            log_data.update(fields)
        if record.exc_info:
            log_data["exception"] = self.formatException(record.exc_info)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return log_data


def configure(level: str = "INFO", static: dict[str, Any] | None = None, quiet: tuple[str, ...] = ()) -> None:
    """Send the root logger to stderr as JSON lines; ``quiet`` loggers only warn (httpx logs every request)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LineFormatter(static))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
