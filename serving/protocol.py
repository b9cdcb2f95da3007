"""Request bodies to rows of model inputs, in signature column order.

``/invocations`` speaks MLflow's scoring protocol (``mlflow/pyfunc/scoring_server``): ``application/json`` with
exactly one of ``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs`` (other top-level keys, such
as ``params``, are ignored as MLflow ignores them for models without parameters), or ``text/csv`` with a header
row; values are read leniently, as MLflow casts them. ``/predict`` takes ``{"rows": [{...}, ...]}`` or
``{"row": {...}}`` and reads values strictly. Every failure is an :class:`InputError`.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import orjson

from serving.schema import InputError, Schema, numbers_only

JSON = "application/json"
CSV = "text/csv"
INVOCATION_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_SUPPORTED_TYPES = f"{JSON!r} or {CSV!r}"


def media_type(content_type: str | None, allowed: tuple[str, ...]) -> str:
    """The bare media type of a Content-Type header, checked as MLflow checks it (UTF-8 only, no other parameter)."""
    if content_type in allowed:
        return content_type
    if not content_type:
        raise InputError(f"missing Content-Type header; send {_SUPPORTED_TYPES if len(allowed) > 1 else allowed[0]!r}",
                         415, "UNSUPPORTED_MEDIA_TYPE")
    mime, *parameters = (part.strip() for part in content_type.split(";"))
    mime = mime.lower()
    if mime not in allowed:
        raise InputError(f"unsupported Content-Type {content_type!r}; send {' or '.join(map(repr, allowed))}",
                         415, "UNSUPPORTED_MEDIA_TYPE")
    for parameter in parameters:
        key, _, value = parameter.partition("=")
        key, value = key.strip().lower(), value.strip().strip('"').lower()
        if key != "charset":
            raise InputError(f"unrecognized Content-Type parameter {key!r}", 415, "UNSUPPORTED_MEDIA_TYPE")
        if value not in ("utf-8", "utf8"):
            raise InputError(f"only UTF-8 bodies are supported, got charset {value!r}", 415, "UNSUPPORTED_MEDIA_TYPE")
    return mime


def parse_invocations(body: bytes, content_type: str | None, schema: Schema, reject_unknown: bool = False) -> list[list]:
    """Rows from an MLflow scoring request; raises :class:`InputError` (400, or 415 for the media type)."""
    if media_type(content_type, (JSON, CSV)) == CSV:
        return _csv_rows(body, schema, reject_unknown)
    document = _json(body)
    if type(document) is not dict:
        raise InputError(f"the body must be a JSON object with exactly one of {', '.join(INVOCATION_FORMATS)}; "
                         f"got {_kind(document)}")
    present = [key for key in INVOCATION_FORMATS if key in document]
    if len(present) != 1:
        raise InputError(f"the body must have exactly one of the fields {', '.join(INVOCATION_FORMATS)}; "
                         f"got {sorted(map(str, document))}")
    key = present[0]
    payload = document[key]
    if key == "dataframe_split":
        rows = _split_rows(payload, schema, reject_unknown)
    elif key == "dataframe_records":
        if type(payload) is not list:
            raise InputError(f"'dataframe_records' must be a list of records, got {_kind(payload)}")
        rows = _record_rows(payload, schema, reject_unknown, key)
    else:
        rows = _tensor_style_rows(payload, schema, reject_unknown, key)
    if not rows:
        raise InputError(f"'{key}' holds no rows")
    return rows


def parse_predict(body: bytes, content_type: str | None, schema: Schema) -> list[list]:
    """Rows from a ``/predict`` request: 400 for a malformed envelope, 422 for values that break the signature."""
    media_type(content_type, (JSON,))
    document = _json(body)
    if type(document) is not dict:
        raise InputError(f'the body must be a JSON object {{"rows": [...]}} or {{"row": {{...}}}}, got {_kind(document)}')
    unknown = sorted(set(document) - {"rows", "row"})
    if unknown or len(document) != 1:
        detail = f"unknown field(s) {', '.join(map(repr, unknown))}" if unknown else f"got {sorted(document)}"
        raise InputError(f'the body must have exactly one of the fields "rows" or "row"; {detail}')
    try:
        if "row" in document:
            return [schema.row(document["row"], schema.strict, True, "'row'")]
        records = document["rows"]
        if type(records) is not list:
            raise InputError(f"'rows' must be a list of objects, got {_kind(records)}")
        if not records:
            raise InputError("'rows' is empty; send at least one row")
        return _record_rows(records, schema, True, "rows", strict=True)
    except InputError as exc:
        raise InputError(exc.message, 422, "INVALID_PARAMETER_VALUE") from None


def _json(body: bytes) -> Any:
    """The body's JSON document, read by orjson (a 100-row body in a fifth of json's time); what it refuses and
    Python's json accepts, as MLflow's server does (NaN, Infinity, 1e400, lone surrogates), is read by json."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        detail = str(exc) if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
        raise InputError(f"the body is not valid JSON: {detail}") from None


def _record_rows(records: list, schema: Schema, reject_unknown: bool, key: str, strict: bool = False) -> list[list]:
    converters = schema.strict if strict else schema.lenient
    if len(records) == 1:
        return [schema.row(records[0], converters, reject_unknown, f"'{key}'[0]")]
    return [schema.row(record, converters, reject_unknown, f"'{key}'[{i}]") for i, record in enumerate(records)]


def _split_rows(payload: Any, schema: Schema, reject_unknown: bool) -> list[list]:
    if type(payload) is not dict:
        raise InputError(f"'dataframe_split' must be an object with 'columns' and 'data', got {_kind(payload)}")
    extra = set(payload) - {"columns", "data", "index"}
    if "data" not in payload or extra:
        raise InputError("'dataframe_split' must have 'data' and optionally 'columns' and 'index'; "
                         f"got {sorted(map(str, payload))}")
    columns, data = payload.get("columns"), payload["data"]
    if type(columns) is not list or not all(type(c) is str for c in columns):
        raise InputError("'dataframe_split' needs 'columns', a list of column names "
                         f"(the model takes {', '.join(map(repr, schema.names))})")
    if type(data) is not list:
        raise InputError(f"'dataframe_split'.'data' must be a list of rows, got {_kind(data)}")
    positions = schema.positions_of(columns, reject_unknown, "'dataframe_split'")
    if schema.floats_only and None not in positions and numbers_only(data, len(columns)):
        if positions == list(range(len(columns))):
            return data
        return [[values[position] for position in positions] for values in data]
    rows = []
    for i, values in enumerate(data):
        where = f"'dataframe_split'.'data'[{i}]"
        if type(values) is not list or len(values) != len(columns):
            raise InputError(f"{where} must be a list of {len(columns)} values, one per column")
        rows.append(schema.row_from_values(values, positions, schema.lenient, where))
    return rows


def _tensor_style_rows(payload: Any, schema: Schema, reject_unknown: bool, key: str) -> list[list]:
    """``instances`` and ``inputs``: a list of records, or one object of columns (lists, or scalars for one row)."""
    if type(payload) is list:
        if payload and type(payload[0]) is not dict:
            raise InputError(f"'{key}' must hold named columns: a list of {{column: value}} objects or "
                             f"an object of column lists (the model takes {', '.join(map(repr, schema.names))})")
        return _record_rows(payload, schema, reject_unknown, key)
    if type(payload) is not dict:
        raise InputError(f"'{key}' must be a list of records or an object of columns, got {_kind(payload)}")
    lists = [type(value) is list for value in payload.values()]
    if not any(lists):
        return [schema.row(payload, schema.lenient, reject_unknown, f"'{key}'")]
    lengths = {len(value) for value in payload.values() if type(value) is list}
    if not all(lists) or len(lengths) != 1:
        raise InputError(f"'{key}' columns must all be lists of the same length")
    names = list(payload)
    positions = schema.positions_of(names, reject_unknown, f"'{key}'")
    columns = list(payload.values())
    return [schema.row_from_values([column[i] for column in columns], positions, schema.lenient, f"'{key}' row {i}")
            for i in range(lengths.pop())]


def _csv_rows(body: bytes, schema: Schema, reject_unknown: bool) -> list[list]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"the CSV body is not valid UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        lines = [line for line in csv.reader(io.StringIO(text)) if line]
    except csv.Error as exc:
        raise InputError(f"the body is not valid CSV: {exc}") from None
    if not lines:
        raise InputError("the CSV body is empty; send a header row and at least one data row")
    header, data = lines[0], lines[1:]
    positions = schema.positions_of([name.strip() for name in header], reject_unknown, "CSV header")
    if not data:
        raise InputError("the CSV body has a header but no data rows")
    rows = []
    for i, values in enumerate(data, start=1):
        where = f"CSV row {i}"
        if len(values) != len(header):
            raise InputError(f"{where} has {len(values)} values, the header has {len(header)}")
        rows.append(schema.row_from_values([v if v != "" else None for v in values], positions, schema.lenient, where))
    return rows


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)
