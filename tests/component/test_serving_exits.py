"""A load that cannot heal ends ``python -m serving`` with exit code 3 and one JSON line saying why; a registry
that may come back keeps the server up and retrying."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from harness.infra.processes import free_port
from tests.component.serving_fixtures import RegisteredModel
from tests.component.serving_support import run_to_exit, serving, serving_env, wait_for_health

ROOT = Path(__file__).resolve().parents[2]

EXIT_LOAD_FAILED = 3


def broken_model_dir(model: RegisteredModel, tmp_path: Path) -> Path:
    directory = Path(shutil.copytree(model.model_dir, tmp_path / "model"))
    (directory / "version.json").write_text("{not json")
    return directory


def the_failure_line(lines: list[dict]) -> dict:
    """The one error line of the serving logger; fails when there are none or several."""
    failures = [line for line in lines if line["logger"] == "lastmile.serving" and line["level"] == "error"]
    assert len(failures) == 1, lines
    return failures[0]


def test_a_model_dir_that_cannot_load_ends_the_server_with_exit_3(registered, tmp_path):
    directory = broken_model_dir(registered, tmp_path)
    done = run_to_exit(serving_env(registered, LASTMILE_SERVING_MODEL_DIR=str(directory)), "--port", str(free_port()))
    assert done.returncode == EXIT_LOAD_FAILED, done.stderr
    failure = the_failure_line(done.json_lines())
    assert failure["message"] == "model not loaded" and failure["model_uri"] == "models:/iris/1"
    assert "version.json is not readable JSON" in failure["error"]
    assert "Traceback" not in done.stdout + done.stderr, "one line says why: no traceback of framework frames"
    assert len(done.stdout.splitlines()) <= 5, done.stdout


def test_a_reference_the_version_does_not_reproduce_ends_the_server_with_exit_3(registered):
    wrong = [(p + 1) % 3 for p in registered.predictions]
    reference = json.dumps({"rows": registered.records(), "predictions": wrong})
    done = run_to_exit(serving_env(registered, LASTMILE_SERVING_MODEL_DIR=registered.model_dir,
                                   LASTMILE_SERVING_REFERENCE=reference), "--port", str(free_port()))
    assert done.returncode == EXIT_LOAD_FAILED, done.stderr
    error = the_failure_line(done.json_lines())["error"]
    assert "models:/iris/1 does not reproduce the reference predictions" in error
    assert f"got {json.dumps(registered.predictions)}, expected {json.dumps(wrong)}" in error


def test_from_the_registry_a_reference_the_version_does_not_reproduce_ends_the_server_with_exit_3(registered):
    """On Kubernetes a replica loads its version from the registry: a rejected version must crash-loop there too."""
    wrong = [(p + 1) % 3 for p in registered.predictions]
    reference = json.dumps({"rows": registered.records(), "predictions": wrong})
    env = serving_env(registered, MLFLOW_TRACKING_URI=registered.tracking_uri,
                      LASTMILE_SERVING_MODEL_URI=f"models:/{registered.name}/{registered.champion_version}",
                      LASTMILE_SERVING_LOAD_RETRY_SECONDS="0.2", LASTMILE_SERVING_REFERENCE=reference)
    done = run_to_exit(env, "--port", str(free_port()))
    assert done.returncode == EXIT_LOAD_FAILED, done.stderr
    assert "does not reproduce the reference predictions" in the_failure_line(done.json_lines())["error"]


def test_a_standby_that_cannot_load_exits_3_without_saying_warm(registered, tmp_path):
    directory = broken_model_dir(registered, tmp_path)
    done = run_to_exit(serving_env(registered, LASTMILE_SERVING_MODEL_DIR=str(directory)), "--standby")
    assert done.returncode == EXIT_LOAD_FAILED, done.stderr
    assert done.stdout == "", "stdout is the standby's channel to its controller: no 'warm', no log"
    (failure,) = done.json_lines("stderr")
    assert (failure["level"], failure["message"], failure["model_uri"]) == ("error", "model not loaded",
                                                                            "models:/iris/1")
    assert "version.json" in failure["error"] and "exception" not in failure


def test_from_the_registry_a_failed_load_keeps_the_server_up_and_retrying(registered, tmp_path):
    port, log = free_port(), tmp_path / "serving.log"
    env = serving_env(registered, MLFLOW_TRACKING_URI=registered.tracking_uri,
                      LASTMILE_SERVING_MODEL_URI="models:/no-such-model@champion",
                      LASTMILE_SERVING_LOAD_RETRY_SECONDS="0.2")
    url = f"http://127.0.0.1:{port}"
    with serving(env, port, log) as proc:
        wait_for_health(url, proc, log)
        failures = _failures_logged(log, at_least=2, timeout=30)
        ready = httpx.get(url + "/ready", timeout=5)
        assert proc.poll() is None, log.read_text()
    assert ready.status_code == 503 and "no-such-model" in ready.json()["message"]
    assert all(f["model_uri"] == "models:/no-such-model@champion" for f in failures)


def _failures_logged(log: Path, at_least: int, timeout: float) -> list[dict]:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        failures = [line for line in lines if line.get("message") == "model not loaded"]
        if len(failures) >= at_least:
            return failures
        time.sleep(0.1)
    pytest.fail(f"fewer than {at_least} load attempts logged in {timeout} s:\n{log.read_text()}")


def test_importing_the_app_loads_no_model_and_starts_no_thread():
    code = ("import sys, threading, serving.app, serving.__main__; "
            "print(threading.active_count(), 'mlflow' in sys.modules, 'sklearn' in sys.modules, "
            "'boto3' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1", "False", "False", "False"]
