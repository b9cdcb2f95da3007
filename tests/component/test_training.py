"""The training job with MLflow's tracking server gone: one line naming it and exit code 4, in seconds rather than
after minutes of client retries."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.infra.processes import free_port
from training.tracking import EXIT_TRACKING_DOWN, TrackingUnreachable, mlflow_calls, tracking_url

ROOT = Path(__file__).resolve().parents[2]


def test_a_job_whose_tracking_server_does_not_answer_fails_in_seconds_with_one_line(tmp_path, budget):
    url = f"http://127.0.0.1:{free_port()}"
    env = {name: value for name, value in os.environ.items() if not name.startswith("MLFLOW_")}
    env.update(MLFLOW_TRACKING_URI=url, MLFLOW_DISABLE_TELEMETRY="true", PYTHONPATH=str(ROOT))
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "training.train", "--data-uri", "s3://data/iris.csv",
                           "--data-sha256", "0" * 64], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    elapsed = time.monotonic() - started
    assert (done.returncode, done.stdout) == (EXIT_TRACKING_DOWN, "")
    assert done.stderr.splitlines() == [f"training: MLflow at {url} did not answer (ConnectionRefusedError); "
                                        "is it up? run `lastmile up`"]
    budget("training job against a tracking server that does not answer, start to exit", elapsed, 5)


def test_a_connection_failure_in_an_mlflow_call_becomes_tracking_unreachable(monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(TrackingUnreachable) as failed, mlflow_calls(url):
        MlflowClient(url).get_experiment_by_name("lastmile")
    assert str(failed.value) == f"MLflow at {url} did not answer (ConnectionRefusedError); is it up? run `lastmile up`"


def test_any_other_error_in_an_mlflow_call_keeps_its_traceback():
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match="a bug of ours"), mlflow_calls("http://127.0.0.1:1"):
        raise MlflowException("a bug of ours")


@pytest.mark.parametrize(("uri", "named"), [("http://lastmile:pw@127.0.0.1:5000/", "http://127.0.0.1:5000"),
                                            ("https://mlflow.example/prefix", "https://mlflow.example/prefix"),
                                            ("sqlite:///mlflow.db", None), ("", None)])
def test_the_tracking_server_is_named_without_credentials_and_only_over_http(monkeypatch, uri, named):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert tracking_url() == named
