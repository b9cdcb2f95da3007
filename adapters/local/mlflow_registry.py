"""ModelRegistry over an MLflow tracking server (the stand-in locally, MLflow on OKE or a VM on OCI)."""

from __future__ import annotations

import os
import time
from typing import Any, Mapping, Sequence

import httpx
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from harness.errors import AuthError, NotFound, UnreachableError
from harness.records import ModelVersion, Secret, TrackedRun


def use_credentials(username: str, password: Secret | None) -> None:
    """Make MLflow's client in this process send basic-auth credentials.

    MLflow's REST client reads them only from ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``,
    per request, so they go there; a process talks to one tracking server. ``None`` (a server without
    auth) leaves the environment as it is.
    """
    if password is not None:
        os.environ["MLFLOW_TRACKING_USERNAME"] = username
        os.environ["MLFLOW_TRACKING_PASSWORD"] = password.reveal()


class MlflowModelRegistry:
    def __init__(self, tracking_uri: str, username: str = "lastmile", password: Secret | None = None):
        self.tracking_uri = tracking_uri.rstrip("/")
        self.username = username
        use_credentials(username, password)
        self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        self._checked = False

    def start_run(self, experiment: str, tags: Mapping[str, str] | None = None) -> TrackedRun:
        self._ping()
        found = self._client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self._client.create_experiment(experiment)
        run = self._client.create_run(experiment_id, tags=dict(tags or {}))
        return _tracked(run)

    def log_metrics(self, run_id: str, metrics: Mapping[str, float]) -> None:
        self._ping()
        self._client.log_batch(run_id, metrics=[Metric(k, float(v), _now(), 0) for k, v in metrics.items()])

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        self._ping()
        self._client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self._ping()
        self._client.set_terminated(run_id, status)

    def get_run(self, run_id: str) -> TrackedRun:
        self._ping()
        with _missing(f"MLflow run {run_id}"):
            return _tracked(self._client.get_run(run_id))

    def register(self, name: str, source: str, run_id: str | None = None) -> ModelVersion:
        self._ping()
        try:
            self._client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        return _version(self._client.create_model_version(name, source, run_id=run_id))

    def get_version(self, name: str, version: str) -> ModelVersion:
        self._ping()
        with _missing(f"model {name} version {version}"):
            return _version(self._client.get_model_version(name, version))

    def by_alias(self, name: str, alias: str) -> ModelVersion | None:
        self._ping()
        try:
            return _version(self._client.get_model_version_by_alias(name, alias))
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                return None
            raise

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._ping()
        with _missing(f"model {name} version {version}"):
            self._client.set_registered_model_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        self._ping()
        with _missing(f"alias {name}@{alias}"):
            self._client.delete_registered_model_alias(name, alias)

    def tag_version(self, name: str, version: str, key: str, value: str) -> None:
        self._ping()
        with _missing(f"model {name} version {version}"):
            self._client.set_model_version_tag(name, version, key, value)

    def predict(self, name: str, version: str, rows: Sequence[Mapping[str, Any]]) -> list:
        """Load the version through MLflow's pyfunc flavor, as any MLflow client would, and predict."""
        import mlflow.pyfunc
        import pandas as pd

        self._ping()
        with _missing(f"model {name} version {version}"):
            self._client.get_model_version(name, version)
        mlflow.set_tracking_uri(self.tracking_uri)
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        predictions = model.predict(pd.DataFrame(list(rows)))
        return [p.item() if hasattr(p, "item") else p for p in predictions]

    def _ping(self) -> None:
        """Fail in seconds, naming the endpoint; MLflow's own client retries a dead server for minutes."""
        if self._checked:
            return
        try:
            httpx.get(f"{self.tracking_uri}/health", timeout=5).raise_for_status()
            auth = None
            if os.environ.get("MLFLOW_TRACKING_PASSWORD"):
                auth = (os.environ.get("MLFLOW_TRACKING_USERNAME", ""), os.environ["MLFLOW_TRACKING_PASSWORD"])
            answer = httpx.get(f"{self.tracking_uri}/api/2.0/mlflow/experiments/search", auth=auth,
                               params={"max_results": 1}, timeout=10)
        except httpx.HTTPError as exc:
            raise UnreachableError(f"MLflow at {self.tracking_uri} did not answer ({type(exc).__name__})") from None
        if answer.status_code in (401, 403):
            raise AuthError(f"MLflow at {self.tracking_uri} refused the credentials of user {self.username!r} "
                            f"({answer.status_code}); check ports.model_registry.username and password")
        self._checked = True


class _missing:
    def __init__(self, what: str):
        self.what = what

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, MlflowException) and exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            raise NotFound(f"{self.what}: not found") from None
        return False


def _tracked(run) -> TrackedRun:
    return TrackedRun(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        status=run.info.status,
        params=dict(run.data.params),
        metrics=dict(run.data.metrics),
        tags={k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
    )


def _version(mv) -> ModelVersion:
    return ModelVersion(
        name=mv.name, version=str(mv.version), run_id=mv.run_id, source=mv.source,
        tags=dict(mv.tags or {}), aliases=tuple(getattr(mv, "aliases", ()) or ()),
    )


def _now() -> int:
    return int(time.time() * 1000)
