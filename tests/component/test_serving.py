"""The serving app end to end in-process: a real model registered in a SQLite-backed MLflow, the app's lifespan
resolving its alias, and every endpoint through FastAPI's TestClient."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from serving import Settings, create_app
from tests.component.serving_fixtures import ALIAS, RegisteredModel

JSON = {"content-type": "application/json"}
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


def settings_for(model: RegisteredModel, **overrides) -> Settings:
    return Settings(model_uri=f"models:/{model.name}@{ALIAS}", tracking_uri=model.tracking_uri,
                    build_digest="sha256:feedface", replica="replica-a", load_retry_seconds=0, **overrides)


@pytest.fixture(scope="module")
def client(registered):
    with TestClient(create_app(settings_for(registered))) as test_client:
        yield test_client


def metric(client: TestClient, name: str, **labels) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_the_alias_is_pinned_to_one_version_not_the_latest(client, registered):
    version = client.get("/version").json()
    assert registered.champion_version != registered.latest_version
    assert version["model_version"] == registered.champion_version
    assert version["model_uri"] == f"models:/{registered.name}/{registered.champion_version}"
    assert version["run_id"] == registered.run_id
    assert version["build_digest"] == "sha256:feedface"
    assert version["requested_uri"] == f"models:/{registered.name}@{ALIAS}"


def test_health_and_ready(client, registered):
    assert client.get("/health").status_code == 200
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["model_version"] == registered.champion_version


def test_a_model_that_cannot_load_is_alive_but_not_ready(registered):
    settings = settings_for(registered).model_copy(update={"model_uri": "models:/no-such-model@champion"})
    with TestClient(create_app(settings)) as test_client:
        assert test_client.get("/health").status_code == 200
        ready = test_client.get("/ready")
        assert ready.status_code == 503
        assert "no-such-model" in ready.json()["message"]
        assert test_client.post("/invocations", json={"inputs": {}}).status_code == 503
        assert test_client.get("/version").json()["ready"] is False


def _invocation_bodies(model: RegisteredModel) -> dict[str, tuple[str, bytes]]:
    records = model.records()
    csv = ",".join(f'"{c}"' for c in model.columns) + "\n" + "\n".join(",".join(map(repr, r)) for r in model.rows)
    return {
        "dataframe_split": ("application/json", json.dumps(
            {"dataframe_split": {"columns": model.columns, "data": model.rows}}).encode()),
        "dataframe_records": ("application/json", json.dumps({"dataframe_records": records}).encode()),
        "instances": ("application/json", json.dumps({"instances": records}).encode()),
        "inputs": ("application/json; charset=utf-8", json.dumps(
            {"inputs": {c: [r[i] for r in model.rows] for i, c in enumerate(model.columns)}, "params": {}}).encode()),
        "csv": ("text/csv", csv.encode()),
    }


@pytest.mark.parametrize("form", ["dataframe_split", "dataframe_records", "instances", "inputs", "csv"])
def test_invocations_answer_as_the_model_does_offline(client, registered, form):
    content_type, body = _invocation_bodies(registered)[form]
    response = client.post("/invocations", content=body, headers={"content-type": content_type})
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": registered.predictions}


def test_invocations_columns_may_come_in_any_order(client, registered):
    columns = registered.columns[::-1]
    rows = [row[::-1] for row in registered.rows]
    response = client.post("/invocations", json={"dataframe_split": {"columns": columns, "data": rows}})
    assert response.json()["predictions"] == registered.predictions


def test_predict_one_row_gives_probabilities_that_sum_to_one(client, registered):
    response = client.post("/predict", json={"row": registered.records()[0]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["predictions"] == registered.predictions[:1]
    assert body["model_version"] == registered.champion_version
    assert set(body["probabilities"][0]) == {"0", "1", "2"}
    assert sum(body["probabilities"][0].values()) == pytest.approx(1.0)


def test_predict_a_batch_matches_offline_predictions_and_probabilities(client, registered):
    body = client.post("/predict", json={"rows": registered.records()}).json()
    assert body["predictions"] == registered.predictions
    served = [p[key] for p in body["probabilities"] for key in ("0", "1", "2")]
    assert served == pytest.approx([p for row in registered.probabilities for p in row])
    assert all(sum(p.values()) == pytest.approx(1.0) for p in body["probabilities"])


def _row(model: RegisteredModel, **changes) -> dict:
    return {**model.records()[0], **changes}


def _without(model: RegisteredModel, column: str) -> dict:
    return {k: v for k, v in model.records()[0].items() if k != column}


PETAL = "petal width (cm)"
BAD_INPUTS = {
    # name: (path, content type, body builder, status, text the message must contain)
    "invocations missing column": ("/invocations", "application/json",
                                   lambda m: {"dataframe_records": [_without(m, PETAL)]}, 400, PETAL),
    "invocations string in float column": ("/invocations", "application/json",
                                           lambda m: {"dataframe_records": [_row(m, **{PETAL: "wide"})]}, 400, PETAL),
    "invocations list in float column": ("/invocations", "application/json",
                                         lambda m: {"instances": [_row(m, **{PETAL: [1.0]})]}, 400, PETAL),
    "invocations empty records": ("/invocations", "application/json", lambda m: {"dataframe_records": []}, 400,
                                 "dataframe_records"),
    "invocations no format field": ("/invocations", "application/json", lambda m: {"rows": []}, 400,
                                    "dataframe_split"),
    "invocations two format fields": ("/invocations", "application/json",
                                      lambda m: {"instances": [], "inputs": []}, 400, "exactly one"),
    "invocations split without columns": ("/invocations", "application/json",
                                          lambda m: {"dataframe_split": {"data": m.rows}}, 400, "columns"),
    "invocations split row too short": ("/invocations", "application/json", lambda m: {
        "dataframe_split": {"columns": m.columns, "data": [m.rows[0][:3]]}}, 400, "'data'[0]"),
    "invocations malformed json": ("/invocations", "application/json", lambda m: b'{"inputs": [', 400, "JSON"),
    "invocations json nested too deep": ("/invocations", "application/json", lambda m: b"[" * 100_000, 400, "JSON"),
    "invocations json list body": ("/invocations", "application/json", lambda m: m.records(), 400, "a list"),
    "invocations csv bad value": ("/invocations", "text/csv", lambda m: (
        ",".join(m.columns) + "\n1,2,3,wide\n").encode(), 400, PETAL),
    "invocations csv missing column": ("/invocations", "text/csv", lambda m: (
        ",".join(m.columns[:3]) + "\n1,2,3\n").encode(), 400, PETAL),
    "invocations csv not utf-8": ("/invocations", "text/csv", lambda m: b"\xff\xfe\x00", 400, "UTF-8"),
    "invocations unsupported type": ("/invocations", "application/xml", lambda m: b"<rows/>", 415, "Content-Type"),
    "invocations latin-1 charset": ("/invocations", "application/json; charset=latin-1", lambda m: {}, 415,
                                    "UTF-8"),
    "invocations missing content type": ("/invocations", None, lambda m: {"inputs": []}, 415, "Content-Type"),
    "predict unknown column": ("/predict", "application/json", lambda m: {"row": _row(m, colour="red")}, 422,
                               "colour"),
    "predict missing column": ("/predict", "application/json", lambda m: {"row": _without(m, PETAL)}, 422, PETAL),
    "predict string in float column": ("/predict", "application/json",
                                       lambda m: {"rows": [_row(m), _row(m, **{PETAL: "1.5"})]}, 422, PETAL),
    "predict boolean in float column": ("/predict", "application/json", lambda m: {"row": _row(m, **{PETAL: True})},
                                        422, PETAL),
    "predict null in required column": ("/predict", "application/json", lambda m: {"row": _row(m, **{PETAL: None})},
                                        422, PETAL),
    "predict empty rows": ("/predict", "application/json", lambda m: {"rows": []}, 422, "rows"),
    "predict rows not a list": ("/predict", "application/json", lambda m: {"rows": {"a": 1}}, 422, "rows"),
    "predict row not an object": ("/predict", "application/json", lambda m: {"row": [1, 2, 3, 4]}, 422, "row"),
    "predict unknown field": ("/predict", "application/json", lambda m: {"row": _row(m), "explain": True}, 400,
                              "explain"),
    "predict malformed json": ("/predict", "application/json", lambda m: b"{row:", 400, "JSON"),
    "predict csv body": ("/predict", "text/csv", lambda m: b"a,b\n1,2\n", 415, "Content-Type"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input_is_refused_with_a_message_naming_the_problem(client, registered, case):
    path, content_type, build, status, named = BAD_INPUTS[case]
    payload = build(registered)
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"content-type": content_type} if content_type else {}
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()
    assert set(error) == {"error_code", "message"}
    assert named in error["message"]


def test_unknown_columns_are_ignored_by_invocations_as_mlflow_does(client, registered):
    response = client.post("/invocations", json={"dataframe_records": [_row(registered, target=0)]})
    assert response.json() == {"predictions": registered.predictions[:1]}


def test_unknown_columns_can_be_refused_by_invocations(registered):
    with TestClient(create_app(settings_for(registered, reject_unknown_columns=True))) as strict:
        response = strict.post("/invocations", json={"dataframe_records": [_row(registered, target=0)]})
    assert response.status_code == 400
    assert "'target'" in response.json()["message"]


def test_a_body_over_the_limit_is_refused_by_content_length_and_by_size(registered):
    with TestClient(create_app(settings_for(registered, max_body_bytes=256))) as small:
        big = json.dumps({"dataframe_records": registered.records()}).encode()
        assert len(big) > 256
        declared = small.post("/invocations", content=big, headers=JSON)
        streamed = small.post("/invocations", content=iter([big[:200], big[200:]]), headers=JSON)
        fits = small.post("/invocations", json={"dataframe_records": registered.records()[:1]})
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert "256" in streamed.json()["message"]
    assert fits.status_code == 200


def test_metrics_count_requests_by_route_and_status_and_predictions_by_class(client, registered):
    ok = metric(client, "lastmile_serving_requests_total", route="/invocations", status="200", method="POST")
    refused = metric(client, "lastmile_serving_requests_total", route="/predict", status="422", method="POST")
    setosa = metric(client, "lastmile_serving_predictions_total", **{"class": "0"})
    client.post("/invocations", json={"dataframe_records": registered.records()[:2]})
    client.post("/predict", json={"rows": []})
    assert metric(client, "lastmile_serving_requests_total", route="/invocations", status="200", method="POST") == ok + 1
    assert metric(client, "lastmile_serving_requests_total", route="/predict", status="422", method="POST") == refused + 1
    assert metric(client, "lastmile_serving_predictions_total", **{"class": "0"}) == setosa + 2
    assert metric(client, "lastmile_serving_request_duration_seconds_count", route="/invocations", status="200") >= 1
    assert metric(client, "lastmile_serving_model_info", model_version=registered.champion_version,
                  build_digest="sha256:feedface", replica="replica-a") == 1


def test_the_metrics_registry_belongs_to_the_app(registered, client):
    from prometheus_client import REGISTRY

    assert REGISTRY.get_sample_value("lastmile_serving_requests_total",
                                     {"route": "/health", "method": "GET", "status": "200"}) is None


def test_the_request_id_is_echoed_or_generated(client):
    given = client.get("/health", headers={"x-request-id": "trace-42"})
    generated = client.get("/health")
    unsafe = client.get("/health", headers={"x-request-id": "a b\tc"})
    assert given.headers["x-request-id"] == "trace-42"
    assert len(generated.headers["x-request-id"]) == 32
    assert unsafe.headers["x-request-id"] != "a b\tc"


def _access_lines(capsys, request_id: str) -> list[dict]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("request_id") == request_id and line["message"] == "request"]


def test_the_json_access_log_line_of_a_refusal_carries_the_request_id(client, capsys):
    capsys.readouterr()
    client.post("/invocations", json={"rows": []}, headers={"x-request-id": "log-me-7"})
    access = _access_lines(capsys, "log-me-7")
    assert access and access[0]["path"] == "/invocations" and access[0]["status"] == 400
    assert access[0]["level"] == "info" and access[0]["replica"] == "replica-a"


def test_an_answered_request_is_logged_at_debug_only(registered, capsys):
    for level, expected in (("INFO", []), ("DEBUG", [("debug", 200)])):
        with TestClient(create_app(settings_for(registered, log_level=level))) as logged:
            capsys.readouterr()
            logged.post("/invocations", json={"dataframe_records": registered.records()[:1]},
                        headers={"x-request-id": f"ok-{level}"})
            access = _access_lines(capsys, f"ok-{level}")
        assert [(line["level"], line["status"]) for line in access] == expected


def test_sampled_predictions_are_written_as_json_lines(registered, tmp_path):
    log = tmp_path / "predictions.jsonl"
    with TestClient(create_app(settings_for(registered, prediction_log=log))) as logged:
        logged.post("/invocations", json={"dataframe_records": registered.records()[:3]},
                    headers={"x-request-id": "sampled-1"})
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["prediction"] for e in entries] == registered.predictions[:3]
    assert entries[0]["request_id"] == "sampled-1"
    assert entries[0]["features"] == registered.records()[0]
    assert entries[0]["version"] == registered.champion_version


def test_no_prediction_is_written_at_sample_rate_zero(registered, tmp_path):
    log = tmp_path / "predictions.jsonl"
    with TestClient(create_app(settings_for(registered, prediction_log=log, prediction_sample_rate=0))) as logged:
        assert logged.post("/invocations", json={"dataframe_records": registered.records()[:1]}).status_code == 200
    assert log.read_text() == ""


def test_concurrent_requests_share_model_calls_and_get_their_own_answers(registered):
    app = create_app(settings_for(registered))
    records = registered.records()

    async def scenario():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://serving") as http:
                calls_before = app.state.serving.predict.calls
                responses = await asyncio.gather(*(
                    http.post("/invocations", json={"dataframe_records": [record]}) for record in records))
                return responses, app.state.serving.predict.calls - calls_before

    responses, calls = asyncio.run(scenario())
    assert [r.json()["predictions"][0] for r in responses] == registered.predictions
    assert calls < len(records)


def test_a_null_reaches_the_model_as_nan_as_mlflow_passes_it(client, registered):
    response = client.post("/invocations", json={"dataframe_records": [_row(registered, **{PETAL: None})]})
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 1


def test_infinity_gets_the_models_own_checks_and_a_400(client, registered):
    csv = ",".join(registered.columns) + "\n5.1,3.5,1.4,inf\n"
    response = client.post("/invocations", content=csv.encode(), headers={"content-type": "text/csv"})
    assert response.status_code == 400
    assert "infinity" in response.json()["message"].lower()
