"""Load a model version the deployer already downloaded, without importing MLflow (which costs seconds at start).

``LASTMILE_SERVING_MODEL_DIR`` is the directory MLflow's download gives: ``MLmodel``, the serialized estimator
(``model.skops``...), ``input_example.json``. Next to them the deployer writes ``version.json``, the registry's
record of the version: ``{"name", "version", "run_id", "source", "tags"}``. Its name and version must be the ones
``LASTMILE_SERVING_MODEL_URI`` pins.

The estimator is deserialized as ``mlflow.sklearn.load_model`` deserializes it: the same formats, refused
altogether when ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` is false (skops included), and for skops the same trusted
types: skops' defaults plus the ``skops_trusted_types`` recorded in ``MLmodel``, nothing more. MLflow's Databricks
exemptions from that switch are not reproduced, and a model logged with ``code_paths`` is refused. Before any of
it, every file is checked against the digests in the ``lastmile.files`` tag (see :mod:`serving.digests`).
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import yaml

from serving.digests import check_model_files
from serving.schema import Schema
from serving.served import ModelLoadError, ServedModel, choose_input_form, input_schema, probe_rows
from serving.settings import Settings

VERSION_FILE = "version.json"
MLMODEL_FILE = "MLmodel"
ALLOW_DESERIALIZATION = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
SERIALIZATION_FORMATS = ("skops", "pickle", "cloudpickle")


def load_model_dir(settings: Settings) -> ServedModel:
    """The version in ``settings.model_dir``; raise :class:`ModelLoadError` saying what is missing or wrong."""
    if settings.model_dir is None:
        raise ModelLoadError("LASTMILE_SERVING_MODEL_DIR is not set")
    directory = Path(settings.model_dir)
    uri = settings.model_uri
    record = read_version_record(directory, settings)
    check_model_files(directory, record["tags"], uri)
    mlmodel = _read_mlmodel(directory)
    flavors = mlmodel.get("flavors") or {}
    if "sklearn" not in flavors:
        raise ModelLoadError(f"{uri} has no sklearn flavor (flavors: {', '.join(flavors) or 'none'})")
    try:
        estimator = load_estimator(directory, flavors["sklearn"], uri)
        schema = input_schema(_signature(mlmodel, uri), estimator, uri)
        model = ServedModel(name=record["name"], version=record["version"], run_id=record["run_id"],
                            source=record["source"], estimator=estimator, schema=schema,
                            example_rows=probe_rows(_example_records(directory, mlmodel), schema),
                            tags=record["tags"])
        choose_input_form(model)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"cannot load {uri} from {directory}: {type(exc).__name__}: {exc}") from exc
    return model


def read_version_record(directory: Path, settings: Settings) -> dict[str, Any]:
    """``version.json``, checked against the pinned URI, with ``version`` as a string and string tags."""
    path = directory / VERSION_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelLoadError(f"{path} is missing: the deployer writes it next to MLmodel") from None
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path} is not readable JSON: {exc}") from None
    if type(record) is not dict or type(record.get("name")) is not str or type(record.get("version")) not in (str, int):
        raise ModelLoadError(f'{path} must be an object with "name" and "version" (and "run_id", "source", "tags")')
    name, version = record["name"], str(record["version"])
    if (name, version) != (settings.model_name, settings.model_version):
        raise ModelLoadError(f"{path} holds models:/{name}/{version}, not {settings.model_uri} "
                             "(LASTMILE_SERVING_MODEL_URI)")
    tags = record.get("tags") or {}
    if type(tags) is not dict:
        raise ModelLoadError(f'{path}: "tags" must be an object of name: value')
    return {"name": name, "version": version, "run_id": _optional_text(record, "run_id", path),
            "source": _optional_text(record, "source", path), "tags": {str(k): str(v) for k, v in tags.items()}}


def load_estimator(directory: Path, flavor: dict, uri: str) -> Any:
    """Deserialize the sklearn flavor's estimator under the rules ``mlflow.sklearn.load_model`` applies."""
    if flavor.get("code"):
        raise ModelLoadError(f"{uri} was logged with code_paths, which LASTMILE_SERVING_MODEL_DIR does not put on "
                             "sys.path; serve it from the registry (unset LASTMILE_SERVING_MODEL_DIR)")
    serialization = flavor.get("serialization_format", "pickle")
    if serialization not in SERIALIZATION_FORMATS:
        raise ModelLoadError(f"{uri}: unrecognized serialization format {serialization!r} "
                             f"(MLflow reads {', '.join(SERIALIZATION_FORMATS)})")
    _check_deserialization_allowed(uri)
    path = directory / str(flavor.get("pickled_model", ""))
    if not path.is_file() or not path.resolve().is_relative_to(directory.resolve()):
        raise ModelLoadError(f"{uri}: the estimator file {path} is missing or outside {directory} "
                             "(MLmodel flavors.sklearn.pickled_model)")
    if serialization == "skops":
        return _load_skops(path, flavor.get("skops_trusted_types"), uri)
    with path.open("rb") as file:
        if serialization == "pickle":
            return pickle.load(file)
        import cloudpickle

        return cloudpickle.load(file)


def _load_skops(path: Path, trusted: list[str] | None, uri: str) -> Any:
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    if trusted is not None and (type(trusted) is not list or not all(type(t) is str for t in trusted)):
        raise ModelLoadError(f"{uri}: MLmodel flavors.sklearn.skops_trusted_types must be a list of type names")
    try:
        return skops.io.load(path, trusted=trusted)
    except UntrustedTypesFoundException as exc:
        found = str(exc).strip().splitlines()[0]
        raise ModelLoadError(f"{uri}: {found} MLmodel does not trust them and neither would MLflow; log the model "
                             "with skops_trusted_types naming the types you have reviewed") from None


def _check_deserialization_allowed(uri: str) -> None:
    """``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` as MLflow reads it: true by default, true/false/1/0 otherwise."""
    raw = os.environ.get(ALLOW_DESERIALIZATION)
    if raw is None or raw.lower() in ("true", "1"):
        return
    if raw.lower() in ("false", "0"):
        raise ModelLoadError(f"{uri}: deserializing the model is disallowed because {ALLOW_DESERIALIZATION} is "
                             f"{raw!r}; as in MLflow, this covers skops models too")
    raise ModelLoadError(f"{ALLOW_DESERIALIZATION} must be one of true, false, 1, 0, got {raw!r}")


def _read_mlmodel(directory: Path) -> dict:
    path = directory / MLMODEL_FILE
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ModelLoadError(f"{path} is missing: LASTMILE_SERVING_MODEL_DIR must be the directory holding "
                             "the model's MLmodel file") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ModelLoadError(f"{path} is not readable YAML: {exc}") from None
    if type(document) is not dict:
        raise ModelLoadError(f"{path} is not an MLmodel file (expected a mapping)")
    return document


def _signature(mlmodel: dict, uri: str) -> Schema | None:
    inputs = (mlmodel.get("signature") or {}).get("inputs")
    if not inputs:
        return None
    try:
        return Schema.from_mlflow_json(inputs)
    except ValueError as exc:
        raise ModelLoadError(f"{uri}: {exc}") from exc


def _example_records(directory: Path, mlmodel: dict) -> list | None:
    """The logged DataFrame input example as records (``split`` orient, or ``records``); None when unusable."""
    info = mlmodel.get("saved_input_example_info") or {}
    if info.get("type") != "dataframe" or not info.get("artifact_path"):
        return None
    try:
        example = json.loads((directory / info["artifact_path"]).read_text())
    except (OSError, ValueError):
        return None
    if info.get("params") and type(example) is dict:
        example = example.get("inputs")
    if type(example) is list:
        return example
    if type(example) is dict and type(example.get("columns")) is list and type(example.get("data")) is list:
        columns = example["columns"]
        return [dict(zip(columns, row, strict=True)) for row in example["data"]
                if type(row) is list and len(row) == len(columns)]
    return None


def _optional_text(record: dict, key: str, path: Path) -> str | None:
    value = record.get(key)
    if value is not None and type(value) is not str:
        raise ModelLoadError(f'{path}: "{key}" must be a string or null')
    return value
