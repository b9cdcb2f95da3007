"""A tiny registered model for the serving tests, built in a child process so this one keeps no MLflow state.

``python -m tests.component.serving_fixtures ROOT`` trains iris (StandardScaler + DecisionTreeClassifier, depth 3),
logs it to ``sqlite:///ROOT/mlflow.db`` as version 1 of ``iris``, registers the same artifacts again as version 2,
points the ``champion`` alias at version 1, downloads version 1 to ``ROOT/downloaded`` with the ``version.json`` a
deployer writes next to it, and writes ``ROOT/model.json``: the versions, the run id, that directory, the feature
names, some rows, and the model's own offline predictions and probabilities for them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

MODEL_NAME = "iris"
ALIAS = "champion"


@dataclass(frozen=True)
class RegisteredModel:
    tracking_uri: str
    name: str
    champion_version: str
    latest_version: str
    run_id: str
    model_dir: str
    columns: list[str]
    rows: list[list[float]]
    predictions: list[int]
    probabilities: list[list[float]]

    def records(self) -> list[dict]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


_REGISTERED: list[RegisteredModel] = []


def registered_once(tmp_path_factory) -> RegisteredModel:
    """The model registered once per test session, whichever tier (unit, component) asks first."""
    if not _REGISTERED:
        _REGISTERED.append(register(tmp_path_factory.mktemp("mlflow")))
    return _REGISTERED[0]


def register(root: Path) -> RegisteredModel:
    """Run this module in a child process and read back what it registered."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db", "MLFLOW_DISABLE_TELEMETRY": "true",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                       os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "tests.component.serving_fixtures", str(root)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=240)
    if done.returncode != 0:
        raise RuntimeError(f"registering the test model failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return RegisteredModel(**json.loads((root / "model.json").read_text()))


def _build(root: Path) -> dict:
    import mlflow
    import sklearn
    import skops
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    features, target = load_iris(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), DecisionTreeClassifier(max_depth=3, random_state=0)).fit(features, target)
    mlflow.set_experiment("serving-tests")
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            model, name="model", signature=infer_signature(features, model.predict(features)),
            input_example=features.head(3), registered_model_name=MODEL_NAME,
            skops_trusted_types=["sklearn.tree._tree.Tree"],
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"skops=={skops.__version__}"])
    client = MlflowClient()
    first = str(info.registered_model_version)
    second = client.create_model_version(MODEL_NAME, info.model_uri, run_id=run.info.run_id).version
    client.set_registered_model_alias(MODEL_NAME, ALIAS, first)
    client.set_model_version_tag(MODEL_NAME, first, "validation_status", "approved")
    model_dir = _download(client, first, root / "downloaded")
    sample = features.iloc[::15]
    return {"tracking_uri": mlflow.get_tracking_uri(), "name": MODEL_NAME, "champion_version": first,
            "latest_version": str(second), "run_id": run.info.run_id, "model_dir": str(model_dir),
            "columns": list(features.columns),
            "rows": sample.to_numpy().tolist(), "predictions": model.predict(sample).tolist(),
            "probabilities": model.predict_proba(sample).tolist()}


def _download(client, version: str, destination: Path) -> Path:
    """What the deployer does for ``LASTMILE_SERVING_MODEL_DIR``: the version's files and its ``version.json``."""
    import mlflow

    from adapters.local.deployer.client import download_model_version
    from harness.domain.records import ModelVersion

    record = client.get_model_version(MODEL_NAME, version)
    model = ModelVersion(record.name, str(record.version), record.run_id, record.source, dict(record.tags or {}))
    destination.mkdir(parents=True, exist_ok=True)
    return download_model_version(mlflow.get_tracking_uri(), model, destination)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    (out / "model.json").write_text(json.dumps(_build(out)))
