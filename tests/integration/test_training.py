"""Stages 2-5 against the real stand-ins: build the training bundle, run it as a job, find the model in MLflow."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.local.bundle_builder import BundleImageBuilder
from adapters.local.flavors import job_environment
from adapters.local.jobs import SubprocessJobRunner
from harness.domain.errors import NotFound
from harness.domain.records import BuildRef, JobSpec, JobState, ObjectRef, sha256_hex
from harness.pipeline.datasets import iris_csv

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def training_build(stack) -> BuildRef:
    builder = BundleImageBuilder(stack.artifact_registry, stack.settings.ports.artifact_registry.repository_prefix)
    return builder.build("training", ROOT / "training")


@pytest.fixture(scope="module")
def dataset(stack) -> ObjectRef:
    data = iris_csv()
    return stack.object_store.put(stack.settings.buckets.data, f"datasets/iris/{sha256_hex(data)}.csv", data)


@pytest.fixture(scope="module")
def runner(stack) -> SubprocessJobRunner:
    env = job_environment(stack)  # what the pipeline's runner gets: endpoints and credentials
    return SubprocessJobRunner(stack.artifact_registry, stack.settings.state_dir, env=env)


def training_spec(build: BuildRef, data: ObjectRef, model_name: str, *extra: str, sha256: str | None = None) -> JobSpec:
    args = ("--data-uri", data.uri, "--data-sha256", sha256 or data.sha256, "--model-name", model_name,
            "--experiment", "lastmile-it", "--git-commit", "0" * 40, "--build-digest", build.artifact.digest,
            "--champion-alias", "champion", *extra)
    return JobSpec(name="training", artifact=build.artifact, args=args, timeout_s=240)


def test_training_bundle_is_pushed_once(stack, training_build):
    again = BundleImageBuilder(stack.artifact_registry, "lastmile").build("training", ROOT / "training")
    assert again.artifact == training_build.artifact
    assert again.pushed is False
    manifest = stack.artifact_registry.fetch_manifest("lastmile/training", training_build.artifact.digest)
    assert manifest["annotations"]["dev.lastmile.source-digest"] == training_build.source_digest


@pytest.fixture(scope="module")
def trained(training_build, dataset, runner) -> dict:
    """One training job for the tests below; its wall time is recorded on the first of them."""
    model_name = f"lastmile-it-{uuid.uuid4().hex[:8]}"
    result_uri = f"s3://{dataset.bucket}/results/{model_name}/training.json"
    started = time.monotonic()
    run_id = runner.submit(training_spec(training_build, dataset, model_name, "--result-uri", result_uri)).run_id
    done = runner.wait(run_id)
    wall_s = time.monotonic() - started
    print(f"\ntraining job wall time: {wall_s:.2f} s")
    return {"run": done, "wall_s": wall_s, "result": runner.result(run_id), "log": runner.log_tail(run_id, 40),
            "result_key": result_uri.split("/", 3)[3]}


def test_training_job_succeeds(trained, record_property):
    record_property("training_job_wall_s", round(trained["wall_s"], 2))
    assert trained["run"].state is JobState.SUCCEEDED, trained["log"]
    assert trained["result"]["model_version"]


def test_result_is_written_to_object_storage(stack, trained):
    stored = json.loads(stack.object_store.get(stack.settings.buckets.data, trained["result_key"]))
    assert stored == trained["result"]
    assert stored["champion"] is None  # a new model name has no champion yet


def test_model_version_is_tagged_with_its_inputs(stack, trained, training_build, dataset):
    result = trained["result"]
    version = stack.model_registry.get_version(result["model_name"], result["model_version"])
    assert version.run_id == result["run_id"]
    assert version.tags["lastmile.build_digest"] == training_build.artifact.digest
    assert version.tags["lastmile.dataset_sha256"] == dataset.sha256
    assert version.tags["lastmile.dataset_uri"] == dataset.uri


def test_the_version_records_the_digests_of_its_files_as_stored(stack, trained, tmp_path, budget):
    from mlflow.artifacts import download_artifacts
    from mlflow.tracking import MlflowClient

    result = trained["result"]
    recorded = json.loads(stack.model_registry.get_version(result["model_name"], result["model_version"])
                          .tags["lastmile.files"])
    url = stack.endpoints()["mlflow"]
    location = MlflowClient(url, url).get_model_version_download_uri(result["model_name"], result["model_version"])
    stored = Path(download_artifacts(artifact_uri=location, dst_path=str(tmp_path), tracking_uri=url))
    assert recorded == {path.relative_to(stored).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
                        for path in stored.rglob("*") if path.is_file()}
    assert {"MLmodel", "model.skops"} <= recorded.keys()
    assert stack.model_registry.verify(result["model_name"], result["model_version"]) == []
    cost = re.search(r"recorded the sha256 of \d+ stored model files \(lastmile.files\) in ([\d.]+) s", trained["log"])
    assert cost, trained["log"]
    budget("training: downloading the logged model back and recording its digests", float(cost[1]), 3)


@pytest.fixture
def health_only() -> Iterator[str]:
    """An HTTP server that answers ``/health`` and hangs up on every other request: MLflow going away mid-job."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/health":
                self.close_connection = True
                return
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        do_POST = do_GET

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_mlflow_going_away_mid_job_fails_it_with_one_line_and_exit_4(stack, training_build, dataset, health_only):
    """MLflow's retries are off here (another setting's business): this is about what the job says, not how fast."""
    env = {**job_environment(stack), "MLFLOW_TRACKING_URI": health_only, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    runner = SubprocessJobRunner(stack.artifact_registry, stack.settings.state_dir, env=env)
    run_id = runner.submit(training_spec(training_build, dataset, f"lastmile-it-{uuid.uuid4().hex[:8]}")).run_id
    done = runner.wait(run_id)
    log = runner.log_tail(run_id, 40)
    assert (done.state, done.exit_code) == (JobState.FAILED, 4), log
    assert "trained on" in log and "Traceback" not in log
    assert re.fullmatch(rf"training: MLflow at {re.escape(health_only)} did not answer \(\w+\); is it up\? "
                        r"run `lastmile up`", log.strip().splitlines()[-1]), log


def test_run_holds_metrics_and_the_split_rule(stack, trained):
    from mlflow.tracking import MlflowClient

    stack.model_registry.get_version(trained["result"]["model_name"], trained["result"]["model_version"])
    tracked = MlflowClient(stack.endpoints()["mlflow"]).get_run(trained["result"]["run_id"]).data
    assert tracked.metrics["accuracy"] >= 0.8
    assert tracked.metrics["f1_macro"] == pytest.approx(trained["result"]["metrics"]["f1_macro"])
    assert (tracked.params["split.test_size"], tracked.params["split.random_state"]) == ("0.25", "42")


def test_the_version_records_reference_predictions_that_its_model_reproduces(stack, trained, monkeypatch):
    import mlflow.pyfunc
    import pandas as pd

    result = trained["result"]
    version = stack.model_registry.get_version(result["model_name"], result["model_version"])
    reference = json.loads(version.tags["lastmile.reference"])
    assert len(reference["rows"]) == 3 and len(reference["predictions"]) == 3
    monkeypatch.setenv("MLFLOW_TRACKING_URI", stack.endpoints()["mlflow"])
    model = mlflow.pyfunc.load_model(result["model_uri"])
    assert model.predict(pd.DataFrame(reference["rows"])).tolist() == reference["predictions"]


def test_registered_model_reloads_and_reproduces_its_accuracy(stack, trained, monkeypatch):
    """What serving and the promotion gate rely on: the model loads (skops trusts the tree) and the
    documented split gives the logged held-out accuracy."""
    import mlflow.pyfunc
    import pandas as pd
    from sklearn.metrics import accuracy_score

    from training.train import split

    # Through the environment, not mlflow.set_tracking_uri: no process-wide state outlives this test.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", stack.endpoints()["mlflow"])
    model = mlflow.pyfunc.load_model(trained["result"]["model_uri"])
    _, x_test, _, y_test = split(pd.read_csv(io.BytesIO(iris_csv())))
    assert accuracy_score(y_test, model.predict(x_test)) == pytest.approx(trained["result"]["metrics"]["accuracy"])


def test_champion_is_scored_on_the_same_held_out_rows(stack, trained, training_build, dataset, runner):
    """Same data, same seed, same code: the champion (version 1) scores exactly what it logged."""
    first = trained["result"]
    stack.model_registry.set_alias(first["model_name"], "champion", first["model_version"])
    run_id = runner.submit(training_spec(training_build, dataset, first["model_name"])).run_id
    assert runner.wait(run_id).state is JobState.SUCCEEDED, runner.log_tail(run_id, 40)
    second = runner.result(run_id)
    assert int(second["model_version"]) == int(first["model_version"]) + 1
    assert second["champion"]["version"] == first["model_version"]
    assert second["champion"]["metrics"] == pytest.approx(first["metrics"])


def test_wrong_dataset_hash_fails_before_training(stack, training_build, dataset):
    """Built by the job-runner factory, so this also checks the environment it hands to jobs."""
    runner = stack.settings.ports.job_runner.build(stack)
    model_name = f"lastmile-it-{uuid.uuid4().hex[:8]}"
    run_id = runner.submit(training_spec(training_build, dataset, model_name, sha256="ab" * 32)).run_id
    done = runner.wait(run_id)
    assert (done.state, done.exit_code) == (JobState.FAILED, 3)
    log = runner.log_tail(run_id, 20)
    assert f"dataset hash mismatch for {dataset.uri}" in log
    assert "trained on" not in log
    with pytest.raises(NotFound):
        stack.model_registry.get_version(model_name, "1")
