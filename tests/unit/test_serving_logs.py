"""The JSON log lines: python-json-logger writing exactly lastmile's keys, in order."""

from __future__ import annotations

import json
import logging
import logging.config
import re
import sys

from pythonjsonlogger.json import JsonFormatter

from serving import logs


def _record(message: str = "model %s", *args, exc_info=None, **extra) -> logging.LogRecord:
    record = logging.LogRecord("lastmile.serving", logging.WARNING, __file__, 1, message, args or ("loaded",),
                               exc_info)
    for name, value in extra.items():
        setattr(record, name, value)
    return record


def test_a_line_has_exactly_the_keys_in_order():
    line = json.loads(logs.json_formatter({"replica": "r-1"}).format(
        _record(request_id="req-1", fields={"model_uri": "models:/m/1", "rows": 3}, color_message="ignored")))
    assert list(line) == ["ts", "level", "logger", "message", "replica", "request_id", "model_uri", "rows"]
    assert (line["level"], line["logger"], line["message"]) == ("warning", "lastmile.serving", "model loaded")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["ts"])


def test_the_request_id_comes_from_the_context_when_the_record_has_none():
    token = logs.request_id.set("from-context")
    try:
        line = json.loads(logs.json_formatter().format(_record()))
    finally:
        logs.request_id.reset(token)
    assert line["request_id"] == "from-context"
    assert "request_id" not in json.loads(logs.json_formatter().format(_record()))


def test_an_exception_is_the_last_key_and_stays_on_one_line():
    try:
        raise ValueError("broken")
    except ValueError:
        text = logs.json_formatter().format(_record(exc_info=sys.exc_info(), fields={"a": 1}))
    line = json.loads(text)
    assert "\n" not in text
    assert list(line)[-1] == "exception" and "ValueError: broken" in line["exception"]


def test_the_formatter_is_python_json_loggers():
    assert isinstance(logs.json_formatter(), JsonFormatter)


def test_uvicorn_logs_in_the_same_style(capsys):
    logging.config.dictConfig(logs.uvicorn_log_config("INFO", {"replica": "r-2"}))
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 7)
    line = json.loads(capsys.readouterr().out)
    assert list(line) == ["ts", "level", "logger", "message", "replica"]
    assert (line["logger"], line["message"]) == ("uvicorn.error", "Started server process [7]")


def test_configure_replaces_its_handler_and_can_write_to_stderr(capsys):
    logs.configure("INFO", {"replica": "a"})
    logger = logs.configure("INFO", {"replica": "b"}, handler=logs.StderrHandler)
    logger.info("once", extra={"fields": {"k": "v"}})
    captured = capsys.readouterr()
    assert captured.out == ""
    assert [json.loads(line)["replica"] for line in captured.err.splitlines()] == ["b"]
    logs.configure("INFO", {"replica": "a"})
