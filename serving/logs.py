"""Structured logs: one JSON object per line on stdout, carrying the request id of the request being served.

Code logs through ``logging.getLogger(LOGGER_NAME)`` and passes structured fields as
``extra={"fields": {...}}``; the request id comes from a context variable set by the request middleware.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import datetime, timezone

LOGGER_NAME = "lastmile.serving"
request_id: ContextVar[str | None] = ContextVar("lastmile_request_id", default=None)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "request_id", ...fields}``; ``static`` fields go on every line."""

    def __init__(self, static: dict | None = None):
        super().__init__()
        self.static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **self.static,
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            entry["request_id"] = rid
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time of the write (so test capture sees the lines)."""

    def __init__(self):
        super().__init__(sys.stdout)

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _value):
        pass


def configure(level: str, static: dict | None = None) -> logging.Logger:
    """Route the serving logger to stdout as JSON lines; calling it again replaces the handler, never adds one."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in [h for h in logger.handlers if isinstance(h, StdoutHandler)]:
        logger.removeHandler(handler)
    handler = StdoutHandler()
    handler.setFormatter(JsonFormatter(static))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


def uvicorn_log_config(level: str, static: dict | None = None) -> dict:
    """A ``logging.config.dictConfig`` for uvicorn's own loggers, in the same JSON format (access log off)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter, "static": dict(static or {})}},
        "handlers": {"stdout": {"()": StdoutHandler, "formatter": "json"}},
        "loggers": {name: {"handlers": ["stdout"], "level": level, "propagate": False}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }
