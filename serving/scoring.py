"""The scoring routes, ``/invocations`` and ``/predict``, as functions of a body: ``(status, JSON bytes)``.

Answers are written by orjson (a NaN prediction is written ``null``, which is JSON, where json wrote ``NaN``).

:class:`~serving.middleware.RequestMiddleware` calls them directly for a POST, with the body it has already read:
no Starlette request object, no routing, no exception layer on the hot path (they cost about as much as the
parsing and the model call together). The FastAPI routes of the same paths call them too; they exist for the
OpenAPI document (see :mod:`serving.openapi`) and answer other methods with 405.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from serving import logs
from serving.coalesce import Coalescer
from serving.metrics import ServingMetrics
from serving.model import ServedModel
from serving.prediction_log import PredictionSampler
from serving.protocol import parse_invocations, parse_predict
from serving.schema import InputError
from serving.settings import Settings

Answer = tuple[int, bytes]
"""An HTTP status and its JSON body."""
logger = logging.getLogger(logs.LOGGER_NAME)


async def _not_loaded(_rows: list[list]) -> list:
    raise RuntimeError("no model is loaded")


@dataclass
class ServingState:
    """What the lifespan loaded: the model, how to call it, and why it is missing when it is."""

    model: ServedModel | None = None
    load_error: str = "the model is not loaded yet"
    failed_for_good: bool = False
    predict: Callable[[list[list]], Awaitable[list]] = _not_loaded
    predict_with_proba: Callable[[list[list]], Awaitable[list]] = _not_loaded
    sampler: PredictionSampler | None = None

    def install(self, model: ServedModel, settings: Settings, sampler: PredictionSampler | None) -> None:
        """Serve ``model``: its prediction calls (merged or direct) and the sampler of its predictions."""
        if settings.coalesce:
            self.predict, self.predict_with_proba = Coalescer(model.predict), Coalescer(model.predict_with_proba)
        else:
            self.predict, self.predict_with_proba = _direct(model.predict), _direct(model.predict_with_proba)
        self.sampler = sampler
        self.model = model

    def close(self) -> None:
        """Close the prediction sinks (bounded) and the model."""
        if self.sampler is not None:
            self.sampler.close()
        if self.model is not None:
            self.model.close()


class Scoring:
    """Answers the scoring routes for the model ``state`` serves (503 while there is none)."""

    def __init__(self, settings: Settings, state: ServingState, metrics: ServingMetrics):
        self.settings, self.state, self.metrics = settings, state, metrics

    async def invocations(self, body: bytes, content_type: str | None) -> Answer:
        """MLflow's scoring protocol: ``{"predictions": [...]}``, or MLflow's error body."""
        state = self.state
        model = state.model
        if model is None:
            return error(503, "NOT_READY", state.load_error)
        try:
            rows = parse_invocations(body, content_type, model.schema, self.settings.reject_unknown_columns)
            predictions = await state.predict(rows)
        except InputError as exc:
            return error(exc.status, exc.error_code, exc.message)
        self.metrics.count_predictions("/invocations", predictions, bool(model.class_keys))
        if state.sampler is not None:
            state.sampler.record(logs.request_id.get(), "/invocations", rows, predictions)
        return 200, orjson.dumps({"predictions": predictions})

    async def predict(self, body: bytes, content_type: str | None) -> Answer:
        """Typed rows: ``{"predictions", "probabilities", "model_version"}``, or MLflow's error body."""
        state = self.state
        model = state.model
        if model is None:
            return error(503, "NOT_READY", state.load_error)
        try:
            rows = parse_predict(body, content_type, model.schema)
            outputs = await state.predict_with_proba(rows)
        except InputError as exc:
            return error(exc.status, exc.error_code, exc.message)
        predictions = [prediction for prediction, _ in outputs]
        probabilities = [proba for _, proba in outputs] if model.has_proba else None
        self.metrics.count_predictions("/predict", predictions, bool(model.class_keys))
        if state.sampler is not None:
            state.sampler.record(logs.request_id.get(), "/predict", rows, predictions, probabilities)
        return 200, orjson.dumps({"predictions": predictions, "probabilities": probabilities,
                                  "model_version": model.version})

    def routes(self) -> dict[str, Callable[[bytes, str | None], Awaitable[Answer]]]:
        """The POST routes the request middleware answers itself, by path."""
        return {"/invocations": self.invocations, "/predict": self.predict}


def error(status: int, error_code: str, message: str) -> Answer:
    """MLflow's error body, ``{"error_code", "message"}``, for every refusal (logged as one line)."""
    logger.info("request refused", extra={"fields": {"status": status, "error_code": error_code,
                                                     "error": message[:500]}})
    return status, json.dumps({"error_code": error_code, "message": message}).encode()


def _direct(call: Callable[[list[list]], list]) -> Callable[[list[list]], Awaitable[list]]:
    async def run(rows: list[list]) -> list:
        return call(rows)
    return run
