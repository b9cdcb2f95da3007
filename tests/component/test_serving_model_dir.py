"""Serving a version the deployer already downloaded (``LASTMILE_SERVING_MODEL_DIR``): the same answers as the
registry gives for that version, without importing MLflow, and one clear error for each way the directory is wrong."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from serving import Settings, create_app
from serving.model import load_model
from serving.served import ModelLoadError
from tests.component.serving_fixtures import RegisteredModel

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


def pinned(model: RegisteredModel, **overrides) -> Settings:
    values = {"model_uri": f"models:/{model.name}/{model.champion_version}", "tracking_uri": model.tracking_uri,
              "replica": "replica-a", "load_retry_seconds": 0, **overrides}
    return Settings(**values)


@pytest.fixture
def model_dir(registered, tmp_path) -> Path:
    """A private copy of the downloaded version, free to break."""
    return Path(shutil.copytree(registered.model_dir, tmp_path / "model"))


def _answers(settings: Settings, model: RegisteredModel) -> dict:
    with TestClient(create_app(settings)) as client:
        return {"version": client.get("/version").json(), "ready": client.get("/ready").json(),
                "invocations": client.post("/invocations", json={"dataframe_records": model.records()}).json(),
                "predict": client.post("/predict", json={"rows": model.records()}).json()}


def test_a_model_dir_serves_what_the_registry_serves_for_that_version(registered):
    from_registry = _answers(pinned(registered), registered)
    from_dir = _answers(pinned(registered, model_dir=registered.model_dir), registered)
    assert from_dir == from_registry
    assert from_dir["invocations"] == {"predictions": registered.predictions}
    assert from_dir["version"]["run_id"] == registered.run_id
    assert from_dir["version"]["tags"] == {"validation_status": "approved"}
    assert (Path(registered.model_dir) / "MLmodel").is_file(), "the app must not delete the deployer's copy"


def test_loading_a_model_dir_never_imports_mlflow(registered):
    code = ("import json, sys; import serving.__main__; from serving import Settings; "
            "from serving.model import load_model; "
            f"model = load_model(Settings(model_uri='models:/{registered.name}/{registered.champion_version}', "
            f"model_dir={registered.model_dir!r}, replica='r')); "
            f"print(json.dumps([model.predict({registered.rows!r}), 'mlflow' in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [registered.predictions, False]


@pytest.mark.parametrize("uri", ["models:/iris/2", "models:/other/1"])
def test_a_version_json_naming_another_version_is_refused(registered, uri):
    with pytest.raises(ModelLoadError, match=r"version.json holds models:/iris/1, not " + uri):
        load_model(pinned(registered, model_uri=uri, model_dir=registered.model_dir))


@pytest.mark.parametrize("missing", ["version.json", "MLmodel", "model.skops"])
def test_a_missing_file_is_named(registered, model_dir, missing):
    (model_dir / missing).unlink()
    with pytest.raises(ModelLoadError, match=missing):
        load_model(pinned(registered, model_dir=model_dir))


def test_a_broken_model_dir_fails_the_start_after_one_json_line(registered, model_dir, capsys):
    (model_dir / "version.json").write_text("{not json")
    settings = pinned(registered, model_dir=model_dir, load_retry_seconds=5)
    with pytest.raises(ModelLoadError, match=r"version\.json is not readable JSON"), TestClient(create_app(settings)):
        pass
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["level"], line["message"]) for line in lines] == [("error", "model not loaded")]
    assert lines[0]["model_uri"] == settings.model_uri and "version.json" in lines[0]["error"]
    assert "exception" not in lines[0], "a load failure the user can fix is one line, not a traceback"


def _edit_flavor(model_dir: Path, **changes) -> None:
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    mlmodel["flavors"]["sklearn"].update(changes)
    (model_dir / "MLmodel").write_text(yaml.safe_dump(mlmodel))


def test_only_the_types_mlmodel_trusts_are_trusted(registered, model_dir):
    _edit_flavor(model_dir, skops_trusted_types=None)
    with pytest.raises(ModelLoadError, match=r"sklearn\.tree\._tree\.Tree.*skops_trusted_types"):
        load_model(pinned(registered, model_dir=model_dir))


def test_no_format_loads_when_mlflow_disallows_deserialization(registered, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    with pytest.raises(ModelLoadError, match="MLFLOW_ALLOW_PICKLE_DESERIALIZATION"):
        load_model(pinned(registered, model_dir=registered.model_dir))


def _as_pickle(registered: RegisteredModel, model_dir: Path) -> None:
    estimator = load_model(pinned(registered, model_dir=model_dir)).estimator
    (model_dir / "model.pkl").write_bytes(pickle.dumps(estimator))
    _edit_flavor(model_dir, serialization_format="pickle", pickled_model="model.pkl")


def test_a_pickled_model_loads_as_mlflow_would_load_it(registered, model_dir):
    _as_pickle(registered, model_dir)
    assert load_model(pinned(registered, model_dir=model_dir)).predict(registered.rows) == registered.predictions


def test_a_pickled_model_is_refused_when_mlflow_would_refuse_it(registered, model_dir, monkeypatch):
    _as_pickle(registered, model_dir)
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "0")
    with pytest.raises(ModelLoadError, match="disallowed"):
        load_model(pinned(registered, model_dir=model_dir))


@pytest.mark.parametrize("changes, named", [
    ({"serialization_format": "joblib"}, "unrecognized serialization format 'joblib'"),
    ({"code": "code"}, "code_paths"),
    ({"pickled_model": "../model.skops"}, "pickled_model"),
])
def test_a_flavor_mlflow_would_not_load_the_same_way_is_refused(registered, model_dir, changes, named):
    _edit_flavor(model_dir, **changes)
    with pytest.raises(ModelLoadError, match=named):
        load_model(pinned(registered, model_dir=model_dir))
