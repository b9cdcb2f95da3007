"""The OpenAPI document of the app, with what FastAPI cannot infer from routes that read raw bodies.

``/invocations`` and ``/predict`` parse their bodies themselves (see :mod:`serving.protocol`), so FastAPI
documents them without a request body. :func:`install` completes the document: the request bodies (MLflow's
four JSON formats as ``oneOf``, and ``text/csv``; ``/predict``'s ``row`` or ``rows``), their answers, and the error
body ``{"error_code", "message"}`` of every refusal. Once a model is loaded the rows name its signature's columns
with their JSON types, so a fuzzer (schemathesis) generates rows the model can score as well as rows it refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from serving.schema import FLOAT_KINDS, INT_KINDS, Schema

JSON = "application/json"
ERROR = {"type": "object", "required": ["error_code", "message"], "additionalProperties": False,
         "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}}}
_REFUSALS = {
    "400": "The body cannot be read as rows of the signature, or the model cannot evaluate them",
    "413": "The body is larger than LASTMILE_SERVING_MAX_BODY_BYTES",
    "415": "Content-Type is not one the route reads (UTF-8 only)",
    "500": "A fault of the server (logged with its traceback)",
    "503": "No model is loaded (yet)",
}


def install(app: FastAPI, current_schema: Callable[[], Schema | None]) -> None:
    """Make ``app.openapi()`` the completed document for the model ``current_schema()`` returns (None: not loaded)."""
    cache: dict[int, dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        schema = current_schema()
        key = id(schema)
        if key not in cache:
            cache.clear()
            document = get_openapi(title=app.title, version=app.version, routes=app.routes)
            complete(document, schema)
            cache[key] = document
        return cache[key]

    app.openapi = openapi  # type: ignore[method-assign]


def complete(document: dict[str, Any], schema: Schema | None) -> None:
    """Add the scoring routes' bodies and answers, and the other routes' real answers, to ``document``."""
    paths = document["paths"]
    row, value = _row(schema), _value(schema)
    records = {"type": "array", "minItems": 1, "items": row}
    columns = {"type": "object", "minProperties": 1, "additionalProperties": {"type": "array", "items": value}}
    invocation_formats = {
        "dataframe_split": {"type": "object", "required": ["columns", "data"], "additionalProperties": False,
                            "properties": {"columns": {"type": "array", "items": {"type": "string"}},
                                           "data": {"type": "array", "minItems": 1,
                                                    "items": {"type": "array", "items": value}},
                                           "index": {"type": "array"}}},
        "dataframe_records": records,
        "instances": {"oneOf": [records, columns]},
        "inputs": {"oneOf": [records, columns]},
    }
    json_body = {"oneOf": [{"type": "object", "required": [key], "properties": {key: shape, "params": {"type": "object"}},
                            "title": key} for key, shape in invocation_formats.items()]}
    paths["/invocations"]["post"].update(
        summary="Score rows in MLflow's scoring protocol (mlflow models serve)",
        requestBody={"required": True, "content": {JSON: {"schema": json_body},
                                                   "text/csv": {"schema": {"type": "string"}}}},
        responses=_answers({"type": "object", "required": ["predictions"], "additionalProperties": False,
                            "properties": {"predictions": {"type": "array"}}}, _REFUSALS))
    predict_body = {"oneOf": [
        {"type": "object", "required": ["row"], "additionalProperties": False, "properties": {"row": row}},
        {"type": "object", "required": ["rows"], "additionalProperties": False, "properties": {"rows": records}}]}
    probabilities = {"type": ["array", "null"], "items": {"type": "object", "additionalProperties": {"type": "number"}}}
    paths["/predict"]["post"].update(
        summary="Score typed rows: predictions, class probabilities and the model version",
        requestBody={"required": True, "content": {JSON: {"schema": predict_body}}},
        responses=_answers({"type": "object", "required": ["predictions", "probabilities", "model_version"],
                            "additionalProperties": False,
                            "properties": {"predictions": {"type": "array"}, "probabilities": probabilities,
                                           "model_version": {"type": "string"}}},
                           {**_REFUSALS, "400": "The body is not a JSON object with only 'row' or 'rows'",
                            "422": "The rows do not fit the signature (types, required or unknown columns)"}))
    paths["/ready"]["get"]["responses"] = _answers({"type": "object"}, {"503": _REFUSALS["503"]})
    paths["/metrics"]["get"]["responses"] = {"200": {"description": "Prometheus text exposition",
                                                     "content": {"text/plain": {"schema": {"type": "string"}}}}}


def _answers(success: dict[str, Any], refusals: dict[str, str]) -> dict[str, Any]:
    answers = {"200": {"description": "Answered", "content": {JSON: {"schema": success}}}}
    answers.update({status: {"description": why, "content": {JSON: {"schema": ERROR}}}
                    for status, why in refusals.items()})
    return answers


def _row(schema: Schema | None) -> dict[str, Any]:
    """One ``{column: value}`` record: the signature's columns when a model is loaded (others are allowed)."""
    if schema is None:
        return {"type": "object"}
    return {"type": "object", "properties": {c.name: _json_type(c.kind) for c in schema.columns},
            "required": [c.name for c in schema.columns if c.required]}


def _value(schema: Schema | None) -> dict[str, Any]:
    if schema is None:
        return {}
    kinds = {c.kind for c in schema.columns}
    return _json_type(kinds.pop()) if len(kinds) == 1 else {}


def _json_type(kind: str) -> dict[str, Any]:
    if kind in FLOAT_KINDS:
        return {"type": "number"}
    if kind in INT_KINDS:
        return {"type": "integer"}
    if kind in ("boolean", "string"):
        return {"type": kind}
    return {}
