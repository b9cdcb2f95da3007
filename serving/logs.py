"""Structured logs: one JSON object per line on stdout, carrying the request id of the request being served.

Code logs through ``logging.getLogger(LOGGER_NAME)`` and passes structured fields as
``extra={"fields": {...}}``; the request id comes from a context variable set by the request middleware.
Lines are written by python-json-logger; :func:`json_formatter` is the one place that fixes their keys, in this
order: ``ts`` (ISO-8601 UTC, milliseconds), ``level`` (lower case), ``logger``, ``message``, the static fields,
``request_id`` when there is one, the record's ``fields``, and ``exception`` (the formatted traceback) when the
record carries one. Other ``extra`` attributes of a record are not written. ``harness/infra/logs.py`` writes the
same keys with the same library for lastmile's other processes (serving cannot import it).
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

LOGGER_NAME = "lastmile.serving"
LOG_KEYS = ("ts", "level", "logger", "message")
"""The keys every line starts with."""
request_id: ContextVar[str | None] = ContextVar("lastmile_request_id", default=None)


class _LastmileJsonFormatter(JsonFormatter):
    """python-json-logger's formatter, writing lastmile's keys instead of the record's attributes."""

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_data["ts"] = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        log_data["level"] = record.levelname.lower()
        log_data["logger"] = record.name
        log_data["message"] = record.getMessage()
        log_data.update(self.static_fields)
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            log_data["request_id"] = rid
        fields = getattr(record, "fields", None)
        if fields:
            log_data.update(fields)
        if "exc_info" in message_dict:  # formatted by python-json-logger from the record's exc_info or exc_text
            log_data["exception"] = message_dict["exc_info"]


def json_formatter(static: dict | None = None) -> logging.Formatter:
    """A formatter writing lastmile's JSON lines (keys above); ``static`` fields go on every line.

    Usable directly or as a ``logging.config.dictConfig`` factory: ``{"()": json_formatter, "static": {...}}``.
    """
    return _LastmileJsonFormatter(static_fields=dict(static or {}))


class StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time of the write (so test capture sees the lines)."""

    stream_name = "stdout"

    def __init__(self):
        super().__init__(getattr(sys, self.stream_name))

    @property
    def stream(self):
        return getattr(sys, self.stream_name)

    @stream.setter
    def stream(self, _value):
        pass


class StderrHandler(StdoutHandler):
    """The same on ``sys.stderr``, for a process whose stdout is a protocol (the standby says ``warm`` there)."""

    stream_name = "stderr"


def configure(level: str, static: dict | None = None, handler: type[StdoutHandler] = StdoutHandler) -> logging.Logger:
    """Route the serving logger to stdout (or ``handler``'s stream) as JSON lines; calling it again replaces the
    handler, never adds one."""
    logger = logging.getLogger(LOGGER_NAME)
    for previous in [h for h in logger.handlers if isinstance(h, StdoutHandler)]:
        logger.removeHandler(previous)
    chosen = handler()
    chosen.setFormatter(json_formatter(static))
    logger.addHandler(chosen)
    logger.setLevel(level)
    logger.propagate = False
    return logger


def uvicorn_log_config(level: str, static: dict | None = None) -> dict:
    """A ``logging.config.dictConfig`` for uvicorn's own loggers, in the same JSON format (access log off)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": json_formatter, "static": dict(static or {})}},
        "handlers": {"stdout": {"()": StdoutHandler, "formatter": "json"}},
        "loggers": {name: {"handlers": ["stdout"], "level": level, "propagate": False}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }
