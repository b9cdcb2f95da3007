"""Our ``/invocations`` against MLflow's own scoring function (what ``mlflow models serve`` runs per request) on the
same model files: the same predictions for every payload MLflow accepts, and a 4xx wherever MLflow refuses an
input because the model cannot evaluate it (finite values that overflow inside the pipeline included)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from fastapi.testclient import TestClient

from serving import Settings, create_app
from tests.component.serving_fixtures import RegisteredModel

pytestmark = pytest.mark.filterwarnings("ignore")
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5], [6, 3, 5, 2]]
"""Iris rows; the last one in JSON integers."""
OVERFLOWING = {
    "1e308 scaled to infinity": [1e308, 3.5, 1.4, 0.2],
    "-1e308 scaled to -infinity": [-1e308, 3.5, 1.4, 0.2],
    "1e39, beyond float32 in the tree": [5.1, 3.5, 1.4, 1e39],
    "two columns at 1e308": [5.1, 1e308, 1.4, 1e308],
}


def _json(document: dict) -> tuple[bytes, str]:
    return json.dumps(document).encode(), "application/json"


def _csv(columns: list[str], rows: list[list]) -> tuple[bytes, str]:
    text = io.StringIO()
    csv.writer(text).writerows([columns, *rows])
    return text.getvalue().encode(), "text/csv"


def payloads(columns: list[str], rows: list[list]) -> dict[str, tuple[bytes, str]]:
    """The same rows in every format both servers read."""
    records = [dict(zip(columns, row, strict=True)) for row in rows]
    reordered = columns[::-1]
    return {
        "dataframe_split": _json({"dataframe_split": {"columns": columns, "data": rows}}),
        "dataframe_split, columns reordered": _json({"dataframe_split": {
            "columns": reordered, "data": [row[::-1] for row in rows]}}),
        "dataframe_records": _json({"dataframe_records": records}),
        "instances": _json({"instances": records}),
        "inputs as columns": _json({"inputs": {c: [row[i] for row in rows] for i, c in enumerate(columns)}}),
        "csv": _csv(columns, rows),
    }


@pytest.fixture(scope="module")
def mlflow_scoring(registered: RegisteredModel):
    """``(body, content type) -> (status, JSON answer)`` by MLflow's scoring server code, in this process."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server

    model = mlflow.pyfunc.load_model(registered.model_dir)
    schema = model.metadata.get_input_schema()

    def score(body: bytes, content_type: str) -> tuple[int, dict]:
        try:
            answer = scoring_server.invocations(body.decode(), content_type, model, schema)
        except MlflowException as exc:  # the server's exception handler turns it into this answer
            return exc.get_http_status_code(), json.loads(exc.serialize_as_json())
        return answer.status, json.loads(answer.response)
    return score


@pytest.fixture(scope="module")
def ours(registered: RegisteredModel):
    settings = Settings(model_uri=f"models:/{registered.name}/{registered.champion_version}",
                        model_dir=registered.model_dir, replica="parity", load_retry_seconds=0)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize("form", list(payloads(["a"], [[1]])))
def test_predictions_equal_mlflows_in_every_format(registered, mlflow_scoring, ours, form):
    body, content_type = payloads(registered.columns, ROWS)[form]
    status, expected = mlflow_scoring(body, content_type)
    answer = ours.post("/invocations", content=body, headers={"content-type": content_type})
    assert status == 200, expected
    assert (answer.status_code, answer.json()) == (200, expected)


@pytest.mark.parametrize("case", list(OVERFLOWING))
@pytest.mark.parametrize("form", ["dataframe_split", "dataframe_records", "csv"])
def test_inputs_that_overflow_inside_the_model_are_refused_as_mlflow_refuses_them(registered, mlflow_scoring, ours,
                                                                                  case, form):
    body, content_type = payloads(registered.columns, [ROWS[0], OVERFLOWING[case]])[form]
    status, refusal = mlflow_scoring(body, content_type)
    answer = ours.post("/invocations", content=body, headers={"content-type": content_type})
    assert status == 400 and refusal["error_code"] == "BAD_REQUEST"
    assert answer.status_code == 400, answer.text
    assert answer.json()["error_code"] == "BAD_REQUEST" and "infinity" in answer.json()["message"]


def test_a_missing_value_is_answered_as_mlflow_answers_it(registered, mlflow_scoring, ours):
    body, content_type = _json({"dataframe_records": [dict(zip(registered.columns, ROWS[0], strict=True)) | {
        registered.columns[3]: None}]})
    status, expected = mlflow_scoring(body, content_type)
    answer = ours.post("/invocations", content=body, headers={"content-type": content_type})
    assert status == 200, expected
    assert answer.json() == expected
