"""Resolve the configured model URI to one immutable registry version, load it, and run it on rows.

An alias (``models:/name@champion``) is resolved once, at load time, to ``models:/name/<version>``: the server
then serves that version until it restarts, whatever happens to the alias. The sklearn flavor is loaded directly
(``mlflow.sklearn.load_model``) so that ``predict_proba`` is at hand and no pandas frame is needed per request;
the MLflow signature gives the column order and types. MLflow is imported here lazily, only when loading, and
not at all when ``settings.model_dir`` names a model the deployer already downloaded (see :mod:`serving.model_dir`).
Either way the files are first checked against the digests training recorded (see :mod:`serving.digests`), and
the loaded version is then checked against ``settings.reference`` (see :mod:`serving.reference`). What
both loaders build, :class:`ServedModel`, lives in :mod:`serving.served`; it is re-exported here.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from serving.digests import check_model_files
from serving.reference import check_reference
from serving.schema import Schema
from serving.served import (
    ModelError,
    ModelLoadError,
    ModelRejected,
    ServedModel,
    choose_input_form,
    input_schema,
    probe_rows,
)
from serving.settings import Settings

__all__ = ["ModelError", "ModelLoadError", "ModelRejected", "ServedModel", "load_failure_fields", "load_model",
           "load_registered_model"]


def load_model(settings: Settings) -> ServedModel:
    """The configured model, checked against ``settings.reference`` when there is one.

    From ``settings.model_dir`` when it is set (MLflow is not imported), else from the registry. Every failure,
    a reference mismatch included, is a :class:`ModelLoadError`.
    """
    if settings.model_dir is not None:
        from serving.model_dir import load_model_dir

        model = load_model_dir(settings)
    else:
        model = load_registered_model(settings)
    if settings.reference is not None:
        try:
            check_reference(model, settings.reference, settings.reject_unknown_columns)
        except BaseException:
            model.close()
            raise
    return model


def load_failure_fields(settings: Settings, exc: BaseException) -> dict[str, str | None]:
    """The structured fields of the one log line that reports a failed load: which model, from where, and why."""
    return {"model_uri": settings.model_uri, "model_dir": str(settings.model_dir) if settings.model_dir else None,
            "error": f"{type(exc).__name__}: {exc}"}


def load_registered_model(settings: Settings) -> ServedModel:
    """Resolve ``settings.model_uri`` to one version and load it; raise :class:`ModelLoadError` with the reason."""
    import mlflow.sklearn
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    client = MlflowClient(tracking_uri=settings.tracking_uri)
    name, alias = settings.model_name, settings.model_alias
    try:
        if alias:
            version = client.get_model_version_by_alias(name, alias)
        else:
            version = client.get_model_version(name, str(settings.model_version))
    except MlflowException as exc:
        raise ModelLoadError(f"cannot resolve {settings.model_uri}: {exc.message}") from exc
    pinned = f"models:/{name}/{version.version}"
    local_dir = tempfile.mkdtemp(prefix="lastmile-serving-")
    try:
        # Through the version's artifact location, not models:/ (which MLflow resolves against its global registry).
        location = client.get_model_version_download_uri(name, version.version)
        path = download_artifacts(artifact_uri=location, dst_path=local_dir, tracking_uri=settings.tracking_uri)
        check_model_files(Path(path), dict(version.tags or {}), pinned)
        info = Model.load(path)
        if "sklearn" not in info.flavors:
            raise ModelRejected(f"{pinned} has no sklearn flavor (flavors: {', '.join(info.flavors)})")
        estimator = mlflow.sklearn.load_model(path)
        schema = input_schema(_signature(info, pinned), estimator, pinned)
        model = ServedModel(name=name, version=str(version.version), run_id=version.run_id, source=version.source,
                            estimator=estimator, schema=schema, example_rows=probe_rows(_example(info, path), schema),
                            tags=dict(version.tags or {}), local_dir=local_dir)
        choose_input_form(model)
    except ModelLoadError:
        shutil.rmtree(local_dir, ignore_errors=True)
        raise
    except Exception as exc:
        shutil.rmtree(local_dir, ignore_errors=True)
        raise ModelLoadError(f"cannot load {pinned}: {type(exc).__name__}: {exc}") from exc
    return model


def _signature(info, uri: str) -> Schema | None:
    inputs = info.get_input_schema()
    if inputs is None:
        return None
    try:
        return Schema.from_mlflow(inputs)
    except ValueError as exc:
        raise ModelRejected(f"{uri}: {exc}") from exc


def _example(info, path: str) -> list | None:
    """The logged input example as records, when it is a DataFrame."""
    try:
        example = info.load_input_example(path)
    except Exception:
        return None
    return example.to_dict(orient="records") if hasattr(example, "to_dict") else None
