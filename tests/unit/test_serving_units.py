"""The serving package's parts without a registry: settings, the coalescer, input parsing, failure answers."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from serving import Settings, SettingsError, create_app
from serving.__main__ import main as serve_main
from serving.coalesce import Coalescer
from serving.protocol import parse_invocations
from serving.schema import Column, InputError, Schema
from serving.served import ServedModel

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Schema([Column("x", "double"), Column("n", "long"), Column("note", "string", required=False)])


def test_settings_come_from_the_environment():
    settings = Settings.from_env({
        "LASTMILE_SERVING_MODEL_URI": "models:/churn/3", "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
        "LASTMILE_SERVING_MAX_BODY_BYTES": "2048", "LASTMILE_SERVING_REPLICA": "r-1",
        "LASTMILE_SERVING_PREDICTION_LOG": "/tmp/p.jsonl", "LASTMILE_SERVING_PREDICTION_SAMPLE_RATE": "0.25",
        "LASTMILE_SERVING_COALESCE": "false", "LASTMILE_SERVING_MODEL_DIR": "/models/churn/3"})
    assert (settings.model_name, settings.model_version, settings.model_alias) == ("churn", "3", None)
    assert settings.tracking_uri == "http://127.0.0.1:5000"
    assert settings.max_body_bytes == 2048 and settings.replica == "r-1"
    assert settings.prediction_log == Path("/tmp/p.jsonl") and settings.prediction_sample_rate == 0.25
    assert settings.coalesce is False
    assert settings.model_dir == Path("/models/churn/3")
    assert Settings.from_env({"LASTMILE_SERVING_MODEL_URI": "models:/churn@champion"}).max_body_bytes == 1024 * 1024


@pytest.mark.parametrize("env, named", [
    ({}, "LASTMILE_SERVING_MODEL_URI"),
    ({"LASTMILE_SERVING_MODEL_URI": "runs:/abc/model"}, "LASTMILE_SERVING_MODEL_URI"),
    ({"LASTMILE_SERVING_MODEL_URI": "models:/m@a", "LASTMILE_SERVING_MAX_BODY_BYTES": "-1"},
     "LASTMILE_SERVING_MAX_BODY_BYTES"),
    ({"LASTMILE_SERVING_MODEL_URI": "models:/m@a", "LASTMILE_SERVING_PREDICTION_SAMPLE_RATE": "2"},
     "LASTMILE_SERVING_PREDICTION_SAMPLE_RATE"),
    ({"LASTMILE_SERVING_MODEL_URI": "models:/m@a", "LASTMILE_SERVING_COALESCE": "maybe"}, "LASTMILE_SERVING_COALESCE"),
    ({"LASTMILE_SERVING_MODEL_URI": "models:/m@a", "LASTMILE_SERVING_MODEL_DIR": "/models/m/3"},
     "LASTMILE_SERVING_MODEL_DIR"),
])
def test_a_bad_environment_is_named_in_one_line(env, named):
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_the_server_command_exits_2_on_a_bad_environment(monkeypatch, capsys):
    monkeypatch.delenv("LASTMILE_SERVING_MODEL_URI", raising=False)
    assert serve_main(["--port", "0"]) == 2
    assert "LASTMILE_SERVING_MODEL_URI" in capsys.readouterr().err


def test_the_coalescer_runs_the_model_once_for_requests_of_the_same_turn():
    seen = []

    def run(rows):
        seen.append(len(rows))
        return [row[0] * 10 for row in rows]

    coalescer = Coalescer(run)

    async def scenario():
        return await asyncio.gather(coalescer([[1]]), coalescer([[2], [3]]), coalescer([[4]]))

    assert asyncio.run(scenario()) == [[10], [20, 30], [40]]
    assert seen == [4]


def test_a_failing_request_does_not_fail_the_requests_it_was_merged_with():
    def run(rows):
        if any(row[0] == "bad" for row in rows):
            raise InputError("bad row")
        return [row[0] for row in rows]

    coalescer = Coalescer(run)

    async def scenario():
        return await asyncio.gather(coalescer([["a"]]), coalescer([["bad"]]), coalescer([["c"]]),
                                    return_exceptions=True)

    first, second, third = asyncio.run(scenario())
    assert (first, third) == (["a"], ["c"])
    assert isinstance(second, InputError)


def test_lenient_parsing_reads_values_as_mlflow_casts_them():
    body = json.dumps({"dataframe_records": [{"x": "1.5", "n": 2.0}, {"x": True, "n": "3", "note": "hi"}]}).encode()
    rows = parse_invocations(body, "application/json", SCHEMA)
    assert rows == [[1.5, 2, None], [1.0, 3, "hi"]]


FLOATS = Schema([Column("a", "double"), Column("b", "double"), Column("c", "float")])


@pytest.mark.parametrize("columns, data, rows", [
    (["a", "b", "c"], [[1.5, 2, -3e5]], [[1.5, 2, -3e5]]),
    (["c", "a", "b", "extra"], [[3.0, 1.0, 2.0, "ignored"], [6.0, 4.0, 5.0, None]], [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
    (["a", "b", "c"], [["1.5", True, None]], [[1.5, 1.0, float("nan")]]),
], ids=["numbers as sent", "columns reordered", "lenient values converted"])
def test_split_rows_of_a_float_schema_are_taken_as_numbers_or_converted(columns, data, rows):
    body = json.dumps({"dataframe_split": {"columns": columns, "data": data}}).encode()
    parsed = parse_invocations(body, "application/json", FLOATS)
    assert json.dumps(parsed) == json.dumps(rows)


def test_json_that_only_pythons_json_reads_is_read_as_mlflow_reads_it():
    body = b'{"dataframe_split": {"columns": ["a", "b", "c"], "data": [[NaN, 1e400, -Infinity]]}}'
    rows = parse_invocations(body, "application/json", FLOATS)
    assert str(rows) == "[[nan, inf, -inf]]"


def test_a_split_row_of_the_wrong_width_is_refused_by_the_number_path_too():
    body = json.dumps({"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1.0, 2.0, 3.0], [1.0, 2.0]]}})
    with pytest.raises(InputError, match=r"'data'\[1\]"):
        parse_invocations(body.encode(), "application/json", FLOATS)


def test_a_fractional_value_in_an_integer_column_is_refused():
    body = json.dumps({"inputs": {"x": [1.0], "n": [2.5]}}).encode()
    with pytest.raises(InputError, match="'n'"):
        parse_invocations(body, "application/json", SCHEMA)


class _BrokenEstimator:
    classes_ = (0, 1)

    def predict(self, features):
        raise ValueError("Input X contains NaN.")

    def predict_proba(self, features):
        raise ValueError("Input X contains NaN.")


def _broken_model(_settings) -> ServedModel:
    schema = Schema([Column("x", "double")])
    return ServedModel(name="broken", version="1", run_id=None, source=None, estimator=_BrokenEstimator(),
                       schema=schema, example_rows=[[0.0]])


def test_a_model_that_fails_on_valid_input_answers_400_and_is_not_ready():
    settings = Settings(model_uri="models:/broken/1", replica="r", load_retry_seconds=0)
    with TestClient(create_app(settings, loader=_broken_model)) as client:
        invocation = client.post("/invocations", json={"inputs": {"x": [1.0]}})
        predicted = client.post("/predict", json={"row": {"x": 1.0}})
        ready = client.get("/ready")
    assert invocation.status_code == 400 and "Input X contains NaN" in invocation.json()["message"]
    assert predicted.status_code == 400
    assert ready.status_code == 503


class _FaultyEstimator(_BrokenEstimator):
    def predict(self, features):
        return np.array([object()] * len(features))  # not JSON: the server, not the input, is at fault


def test_a_fault_on_the_scoring_path_answers_500_with_mlflows_error_body():
    def faulty(_settings) -> ServedModel:
        return ServedModel(name="faulty", version="1", run_id=None, source=None, estimator=_FaultyEstimator(),
                           schema=Schema([Column("x", "double")]), example_rows=[[0.0]])

    settings = Settings(model_uri="models:/faulty/1", replica="r", load_retry_seconds=0)
    with TestClient(create_app(settings, loader=faulty), raise_server_exceptions=False) as client:
        response = client.post("/invocations", json={"inputs": {"x": [1.0]}}, headers={"x-request-id": "r-500"})
    assert response.status_code == 500
    assert response.json()["error_code"] == "INTERNAL_ERROR"
    assert response.headers["x-request-id"] == "r-500"


def test_the_image_pins_the_versions_the_tests_ran_with():
    from importlib.metadata import PackageNotFoundError, version

    pins = dict(line.split("==") for line in (ROOT / "serving" / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    installed = {}
    for name in pins:
        try:
            installed[name] = version(name)
        except PackageNotFoundError:
            continue
    assert {"mlflow", "scikit-learn", "fastapi", "uvicorn", "prometheus_client", "pydantic-settings",
            "python-json-logger", "boto3"} <= set(installed)
    assert {name: pins[name] for name in installed} == installed
    dockerfile = (ROOT / "serving" / "Dockerfile").read_text()
    assert 'CMD ["python", "-m", "serving", "--host", "0.0.0.0", "--port", "8080"]' in dockerfile


def test_a_failed_start_keeps_trying_until_the_model_loads():
    attempts = []

    def flaky(settings):
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("registry unreachable")
        return _working_model(settings)

    settings = Settings(model_uri="models:/m@champion", replica="r", load_retry_seconds=0.2)
    with TestClient(create_app(settings, loader=flaky)) as client:
        first = client.get("/ready")
        for _ in range(100):
            if client.get("/ready").status_code == 200:
                break
            time.sleep(0.05)
        ready = client.get("/ready")
    assert first.status_code == 503 and "registry unreachable" in first.json()["message"]
    assert ready.status_code == 200
    assert len(attempts) == 3


class _Doubler:
    classes_ = None

    def predict(self, features):
        return features[:, 0] * 2


def _working_model(_settings) -> ServedModel:
    return ServedModel(name="m", version="4", run_id=None, source=None, estimator=_Doubler(),
                       schema=Schema([Column("x", "double")]), example_rows=[[1.0]])


def test_a_regressor_answers_without_probabilities_or_class_counts():
    settings = Settings(model_uri="models:/m/4", replica="r", load_retry_seconds=0)
    with TestClient(create_app(settings, loader=_working_model)) as client:
        predicted = client.post("/predict", json={"rows": [{"x": 1.5}, {"x": 2}]}).json()
        metrics = client.get("/metrics").text
    assert predicted == {"predictions": [3.0, 4.0], "probabilities": None, "model_version": "4"}
    assert "lastmile_serving_predictions_total{" not in metrics
    assert 'lastmile_serving_rows_total{route="/predict"} 2.0' in metrics
