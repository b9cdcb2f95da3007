"""A model file replaced in object storage behind MLflow's back is refused before it is deserialized: from the
deployer's directory (the replica exits 3, which the rollout turns into a rollback) and from the registry."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from harness.infra.processes import free_port
from serving import Settings
from serving.__main__ import EXIT_LOAD_FAILED
from serving.model import load_model
from serving.served import ModelLoadError
from tests.component.serving_fixtures import RegisteredModel
from tests.component.serving_support import run_to_exit, serving_env

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")

TAMPERED = b"not the model training stored"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recorded_files(directory: Path) -> dict[str, str]:
    """What training records in ``lastmile.files`` for these files (computed here, independently of serving)."""
    return {path.relative_to(directory).as_posix(): sha256(path) for path in sorted(directory.rglob("*"))
            if path.is_file() and path.name != "version.json"}


@pytest.fixture
def model_dir(registered, tmp_path) -> Path:
    """A private copy of the deployer's directory whose ``version.json`` carries the ``lastmile.files`` tag."""
    directory = Path(shutil.copytree(registered.model_dir, tmp_path / "model"))
    record = json.loads((directory / "version.json").read_text())
    record["tags"]["lastmile.files"] = json.dumps(recorded_files(directory), sort_keys=True)
    (directory / "version.json").write_text(json.dumps(record))
    return directory


def from_dir(model: RegisteredModel, directory: Path) -> Settings:
    return Settings(model_uri=f"models:/{model.name}/{model.champion_version}", model_dir=directory,
                    replica="replica-d", load_retry_seconds=0)


def test_an_intact_model_dir_with_recorded_digests_loads(registered, model_dir):
    assert load_model(from_dir(registered, model_dir)).predict(registered.rows) == registered.predictions


def test_a_replaced_model_file_is_refused_naming_it_and_both_digests(registered, model_dir):
    expected = sha256(model_dir / "model.skops")
    (model_dir / "model.skops").write_bytes(TAMPERED)
    with pytest.raises(ModelLoadError) as refused:
        load_model(from_dir(registered, model_dir))
    message = str(refused.value)
    assert "models:/iris/1" in message and "model.skops" in message
    assert expected in message and hashlib.sha256(TAMPERED).hexdigest() in message


def test_a_missing_model_file_is_refused_naming_it(registered, model_dir):
    (model_dir / "conda.yaml").unlink()
    with pytest.raises(ModelLoadError, match=r"conda\.yaml is missing \(recorded sha256 [0-9a-f]{64}\)"):
        load_model(from_dir(registered, model_dir))


def test_an_unrecorded_file_in_the_model_is_refused_naming_it(registered, model_dir):
    (model_dir / "code").mkdir()
    (model_dir / "code" / "sitecustomize.py").write_text("import os\n")
    with pytest.raises(ModelLoadError, match=r"code/sitecustomize\.py is not among the recorded files"):
        load_model(from_dir(registered, model_dir))


def test_a_malformed_digests_tag_is_refused(registered, model_dir):
    record = json.loads((model_dir / "version.json").read_text())
    record["tags"]["lastmile.files"] = "[1, 2]"
    (model_dir / "version.json").write_text(json.dumps(record))
    with pytest.raises(ModelLoadError, match=r"lastmile\.files must be a JSON object of path: sha256 hex"):
        load_model(from_dir(registered, model_dir))


def test_a_version_without_recorded_digests_loads_with_one_warning(registered, caplog):
    with caplog.at_level("WARNING", logger="lastmile.serving"):
        model = load_model(from_dir(registered, Path(registered.model_dir)))
    assert model.predict(registered.rows) == registered.predictions
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert warning.getMessage() == "model files not verified"
    assert "no lastmile.files tag" in warning.fields["reason"]


def test_a_replica_given_a_replaced_file_exits_3_with_one_line_naming_it(registered, model_dir):
    (model_dir / "model.skops").write_bytes(TAMPERED)
    done = run_to_exit(serving_env(registered, LASTMILE_SERVING_MODEL_DIR=str(model_dir)), "--port", str(free_port()))
    assert done.returncode == EXIT_LOAD_FAILED, done.stderr
    [failure] = [line for line in done.json_lines()
                 if line["logger"] == "lastmile.serving" and line["level"] == "error"]
    assert failure["message"] == "model not loaded" and "model.skops has sha256" in failure["error"]
    assert "Traceback" not in done.stdout + done.stderr


def test_a_standby_warns_of_unverified_files_on_stderr_and_says_only_warm_on_stdout(registered):
    done = run_to_exit(serving_env(registered, LASTMILE_SERVING_MODEL_DIR=registered.model_dir), "--standby")
    assert (done.returncode, done.stdout) == (0, "warm\n"), done.stderr
    [warning] = [line for line in done.json_lines("stderr") if line["level"] == "warning"]
    assert (warning["message"], warning["model_uri"]) == ("model files not verified", "models:/iris/1")


@pytest.fixture
def registry_copy(registered, tmp_path) -> tuple[str, Path, str]:
    """A private copy of the test registry with one more version of ``iris`` whose files live in ``store`` and
    whose ``lastmile.files`` tag records them: the tracking URI and that directory."""
    from mlflow import MlflowClient

    database = Path(registered.tracking_uri.removeprefix("sqlite:///"))
    shutil.copy(database, tmp_path / "mlflow.db")
    store = Path(shutil.copytree(registered.model_dir, tmp_path / "store",
                                 ignore=shutil.ignore_patterns("version.json")))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tags = {"lastmile.files": json.dumps(recorded_files(store), sort_keys=True)}
    created = MlflowClient(uri, uri).create_model_version(registered.name, str(store), tags=tags)
    return uri, store, str(created.version)


def from_registry(model: RegisteredModel, copy) -> Settings:
    uri, _store, version = copy
    return Settings(model_uri=f"models:/{model.name}/{version}", tracking_uri=uri, replica="replica-d",
                    load_retry_seconds=0)


def test_an_intact_version_with_recorded_digests_loads_from_the_registry(registered, registry_copy):
    model = load_model(from_registry(registered, registry_copy))
    try:
        assert model.predict(registered.rows) == registered.predictions
    finally:
        model.close()


def test_a_file_replaced_in_the_registrys_storage_is_refused_naming_it(registered, registry_copy):
    _uri, store, version = registry_copy
    (store / "model.skops").write_bytes(TAMPERED)
    with pytest.raises(ModelLoadError) as refused:
        load_model(from_registry(registered, registry_copy))
    message = str(refused.value)
    assert f"models:/iris/{version}" in message and "model.skops" in message
    assert hashlib.sha256(TAMPERED).hexdigest() in message
