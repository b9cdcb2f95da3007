"""The prediction service: ``create_app(settings)`` builds it; nothing is loaded or started at import.

Endpoints: ``/health`` (alive), ``/ready`` (model loaded and answering), ``/invocations`` (MLflow's scoring
protocol, so clients of ``mlflow models serve`` work unchanged), ``/predict`` (typed rows, predictions and
class probabilities), ``/version``, ``/metrics`` (Prometheus) and ``/openapi.json`` (with the scoring routes'
request bodies and error answers, see :mod:`serving.openapi`).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import Callable
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.telemetry import TelemetryConfig

from serving import logs, openapi
from serving.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from serving.metrics import ServingMetrics
from serving.middleware import INTERNAL_ERROR, QuietStartupFailure, RequestMiddleware
from serving.model import ModelLoadError, ModelRejected, ServedModel, load_failure_fields, load_model
from serving.prediction_log import open_sampler
from serving.schema import InputError
from serving.scoring import Scoring, ServingState, error
from serving.settings import Settings

JSON = "application/json"
ROUTES = frozenset({"/health", "/ping", "/ready", "/version", "/metrics", "/openapi.json", "/invocations", "/predict"})
Loader = Callable[[Settings], ServedModel]
logger = logging.getLogger(logs.LOGGER_NAME)
_NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
"""FastAPI's native OpenTelemetry is off: metrics are Prometheus, logs are JSON lines, and its per-request check costs."""


def create_app(settings: Settings, loader: Loader = load_model) -> FastAPI:
    """The FastAPI app for ``settings``; its lifespan loads the model (``loader`` is replaceable in tests).

    From the registry, a load that may heal (the registry unreachable, the alias not set yet) is retried every
    ``load_retry_seconds`` while the app answers 503. A load that cannot heal is logged as one JSON line and the
    lifespan's startup raises it, which makes uvicorn exit with code 3: any failure from ``settings.model_dir``,
    and from the registry a version it fetched and rejected (:class:`~serving.served.ModelRejected`: its files
    differ from their digests, it does not reproduce its reference), which the same version will do again. An
    orchestrator then sees a crash loop, which a rollout policy can act on in seconds, not a replica that stays
    unready until a deadline.
    """
    state = ServingState()
    metrics = ServingMetrics(settings.replica)

    async def load_once() -> Exception | None:
        try:
            model = await asyncio.to_thread(loader, settings)
        except Exception as exc:
            state.load_error = f"{type(exc).__name__}: {exc}"
            logger.error("model not loaded", exc_info=None if isinstance(exc, ModelLoadError) else exc,
                         extra={"fields": load_failure_fields(settings, exc)})
            return exc
        sampler = await asyncio.to_thread(open_sampler, settings, model.schema.names, model.name, model.version,
                                          metrics)
        state.install(model, settings, sampler)
        # MLflow, sklearn and pandas leave ~350k long-lived objects; a full collection over them stalls the loop
        # for hundreds of milliseconds (the p99 under load). Freezing keeps them out of every later collection.
        gc.collect()
        gc.freeze()
        metrics.set_model(model.name, model.version, model.run_id, settings.build_digest)
        metrics.ready.set(1)
        logger.info("model loaded", extra={"fields": {
            "model_uri": settings.model_uri, "pinned_uri": model.uri, "run_id": model.run_id,
            "model_dir": settings.model_dir and str(settings.model_dir), "frame_input": model.frame_input,
            "build_digest": settings.build_digest}})
        return None

    async def keep_loading() -> None:
        """After a failed start (registry down, alias not set yet), try again until the model loads."""
        while True:
            await asyncio.sleep(settings.load_retry_seconds)
            if await load_once() is None:
                return

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        logs.configure(settings.log_level, {"replica": settings.replica})
        retry = None
        failure = await load_once()
        if failure is not None and (settings.model_dir is not None or isinstance(failure, ModelRejected)):
            state.failed_for_good = True
            raise failure
        if failure is not None and settings.load_retry_seconds > 0:
            retry = asyncio.create_task(keep_loading())
        try:
            yield
        finally:
            if retry is not None:
                retry.cancel()
                with suppress(asyncio.CancelledError):
                    await retry
            await asyncio.to_thread(state.close)

    app = FastAPI(title="lastmile serving", lifespan=lifespan, docs_url=None, redoc_url=None, telemetry=_NO_TELEMETRY)
    app.state.serving = state
    app.state.metrics = metrics
    app.state.settings = settings
    scoring = Scoring(settings, state, metrics)
    _add_routes(app, settings, state, metrics, scoring)
    openapi.install(app, lambda: state.model.schema if state.model is not None else None)
    app.add_middleware(RequestMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes, routes=ROUTES,
                       answers=scoring.routes())
    app.add_middleware(QuietStartupFailure, logged=lambda: state.failed_for_good)
    app.add_exception_handler(Exception, _internal_error)
    return app


def app_from_env() -> FastAPI:
    """``create_app(Settings.from_env())``: what each worker process of ``python -m serving --workers N`` serves."""
    return create_app(Settings.from_env())


def _add_routes(app: FastAPI, settings: Settings, state: ServingState, metrics: ServingMetrics,
                scoring: Scoring) -> None:
    """The scoring routes come first: the router tries routes in order. The request middleware answers their POSTs
    itself (see :mod:`serving.scoring`); these declarations document them and answer other methods."""
    alive = json.dumps({"status": "alive"}).encode()

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        status, payload = await scoring.invocations(await request.body(), request.headers.get("content-type"))
        return Response(payload, status, media_type=JSON)

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        status, payload = await scoring.predict(await request.body(), request.headers.get("content-type"))
        return Response(payload, status, media_type=JSON)

    @app.get("/health")
    @app.get("/ping")
    async def health() -> Response:
        return Response(alive, media_type=JSON)

    @app.get("/ready")
    async def ready() -> Response:
        model = state.model
        if model is None:
            return _error(503, "NOT_READY", state.load_error)
        try:
            model.predict(model.example_rows)
        except InputError as exc:
            metrics.ready.set(0)
            return _error(503, "NOT_READY", f"the probe prediction failed: {exc.message}")
        metrics.ready.set(1)
        return _json({"status": "ready", "model_name": model.name, "model_version": model.version})

    @app.get("/version")
    async def version() -> Response:
        model = state.model
        return _json({
            "model_name": settings.model_name, "model_version": model and model.version,
            "model_uri": model and model.uri, "requested_uri": settings.model_uri, "alias": settings.model_alias,
            "run_id": model and model.run_id, "source": model and model.source,
            "tags": model.tags if model else {}, "build_digest": settings.build_digest,
            "replica": settings.replica, "ready": model is not None})

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)


def _json(payload: dict, status: int = 200) -> Response:
    return Response(json.dumps(payload), status_code=status, media_type=JSON)


def _error(status: int, error_code: str, message: str) -> Response:
    """MLflow's error body, ``{"error_code", "message"}``, for every refusal."""
    status, body = error(status, error_code, message)
    return Response(body, status_code=status, media_type=JSON)


async def _internal_error(_request: Request, exc: Exception) -> Response:
    logger.error("unhandled error", exc_info=exc)
    return Response(INTERNAL_ERROR, status_code=500, media_type=JSON)
