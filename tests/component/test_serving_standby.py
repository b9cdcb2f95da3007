"""``python -m serving --standby``: a warm spare that loads the model first and becomes a replica on one order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from harness.infra.supervisor import free_port
from serving.__main__ import _activate
from tests.component.serving_fixtures import RegisteredModel

ROOT = Path(__file__).resolve().parents[2]


def _standby(model: RegisteredModel, log: Path, **env: str) -> subprocess.Popen:
    environ = {**os.environ, "LASTMILE_SERVING_MODEL_URI": f"models:/{model.name}/{model.champion_version}",
               "LASTMILE_SERVING_MODEL_DIR": str(model.model_dir), "LASTMILE_SERVING_LOAD_RETRY_SECONDS": "0", **env}
    with open(log, "ab") as err:
        return subprocess.Popen([sys.executable, "-m", "serving", "--standby"], cwd=ROOT, env=environ,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)


def _warm(proc: subprocess.Popen, log: Path) -> None:
    line = proc.stdout.readline()
    assert line == b"warm\n", f"the standby said {line!r}; its log: {log.read_text()}"


def _ready(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 20.0) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(url + "/ready", timeout=1).status_code == 200:
                return time.monotonic() - began
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    pytest.fail(f"not ready in {timeout_s} s: {log.read_text()}")


@pytest.fixture
def ended():
    procs: list[subprocess.Popen] = []
    yield procs.append
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=15)


def test_a_standby_becomes_the_replica_it_is_told_to_be(registered, tmp_path, ended):
    spare_log, replica_log = tmp_path / "standby.log", tmp_path / "replica.log"
    proc = _standby(registered, spare_log)
    ended(proc)
    _warm(proc, spare_log)
    port = free_port()
    order = {"port": port, "log": str(replica_log),
             "env": {"LASTMILE_SERVING_REPLICA": "replica-b",
                     "LASTMILE_SERVING_PREDICTION_LOG": str(tmp_path / "predictions.jsonl")}}
    proc.stdin.write(json.dumps(order).encode() + b"\n")
    proc.stdin.close()
    url = f"http://127.0.0.1:{port}"
    activation_s = _ready(url, proc, replica_log)
    version = httpx.get(url + "/version").json()
    answer = httpx.post(url + "/invocations", json={"dataframe_records": registered.records()}).json()
    assert version["replica"] == "replica-b"
    assert version["model_version"] == registered.champion_version
    assert answer == {"predictions": registered.predictions}
    assert (tmp_path / "predictions.jsonl").read_text().strip(), "the prediction log from the order is used"
    assert "activated as replica-b" in replica_log.read_text(), "after the order, output goes to the replica's log"
    assert "activated" not in spare_log.read_text()
    # The model is loaded before the order: what is left is binding the port (a cold start takes seconds).
    assert activation_s < 2.0, f"ready {activation_s:.2f} s after the order"


def test_a_standby_that_loses_its_controller_ends_quietly(registered, tmp_path):
    log = tmp_path / "standby.log"
    proc = _standby(registered, log)
    _warm(proc, log)
    proc.stdin.close()
    assert proc.wait(timeout=15) == 0, log.read_text()


def test_an_order_that_is_not_json_ends_the_standby_with_exit_2(registered, tmp_path):
    log = tmp_path / "standby.log"
    proc = _standby(registered, log)
    _warm(proc, log)
    proc.stdin.write(b"not json\n")
    proc.stdin.close()
    assert proc.wait(timeout=15) == 2
    assert "bad standby order" in log.read_text()


@pytest.mark.parametrize("order, named", [
    ({"log": "x"}, "'port'"),
    ({"port": 1, "env": {"LASTMILE_SERVING_MODEL_DIR": "/elsewhere"}}, "the model is loaded"),
    ({"port": 1, "env": {"LASTMILE_SERVING_REFERENCE": '{"rows": [{"x": 1}], "predictions": [0]}'}},
     "LASTMILE_SERVING_REFERENCE"),
    ({"port": 1, "env": {"PATH": "/bin"}}, "may set LASTMILE_SERVING_"),
    ({"port": 1, "env": {"LASTMILE_SERVING_REPLICA": 3}}, "strings"),
])
def test_an_order_may_not_change_the_loaded_model_or_the_rest_of_the_environment(order, named):
    with pytest.raises((KeyError, ValueError), match=named):
        _activate(order, "models:/m/1")
