"""Shipping sampled predictions to object storage, against moto's in-process S3 (no sockets)."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time

import pytest
from fastapi.testclient import TestClient
from moto import mock_aws

from serving import Settings, create_app, logs
from serving.metrics import ServingMetrics
from serving.prediction_log import PredictionSampler
from serving.samples import SampleShipper, s3_client
from serving.schema import Column, Schema
from serving.served import ServedModel

BUCKET = "lastmile-samples"
KEY = re.compile(r"^predictions/m/4/replica-a/(?P<ms>\d{13})-(?P<seq>\d{6})\.jsonl$")


@pytest.fixture
def s3():
    with mock_aws():
        client = s3_client(None)
        client.create_bucket(Bucket=BUCKET)
        yield client


def objects(client, bucket: str = BUCKET) -> dict[str, dict]:
    """``{key: {"lines": [...], "metadata": {...}}}`` of every object in ``bucket``, keys in order."""
    found = {}
    for item in client.list_objects_v2(Bucket=bucket).get("Contents", []):
        response = client.get_object(Bucket=bucket, Key=item["Key"])
        body = response["Body"].read()
        found[item["Key"]] = {"body": body, "lines": body.decode().splitlines(), "metadata": response["Metadata"]}
    return found


def shipper(client, metrics: ServingMetrics | None = None, **options) -> SampleShipper:
    return SampleShipper(client, BUCKET, "predictions/m/4/replica-a/", metrics or ServingMetrics("replica-a"),
                         **options)


def lines(count: int, start: int = 0) -> list[str]:
    return [json.dumps({"n": n}) for n in range(start, start + count)]


def shipped(metrics: ServingMetrics) -> float:
    return metrics.registry.get_sample_value("lastmile_serving_samples_shipped_total")


def dropped(metrics: ServingMetrics) -> float:
    return metrics.registry.get_sample_value("lastmile_serving_samples_dropped_total")


def wait_for(predicate, timeout: float = 5.0):
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if value := predicate():
            return value
        time.sleep(0.02)
    pytest.fail(f"not within {timeout} s")


def test_writing_buffers_without_any_upload(s3):
    sink = shipper(s3)
    sink.write(lines(10))
    assert sink.waiting == 10
    assert objects(s3) == {}


def test_an_object_per_batch_under_the_replicas_prefix_with_its_sha256(s3):
    metrics = ServingMetrics("replica-a")
    sink = shipper(s3, metrics, batch_lines=4, clock=lambda: 1_700_000_000.1234)
    sink.write(lines(10))
    assert sink.ship_waiting() is True
    found = objects(s3)
    assert list(found) == [f"predictions/m/4/replica-a/1700000000123-{n:06d}.jsonl" for n in (1, 2, 3)]
    assert [len(o["lines"]) for o in found.values()] == [4, 4, 2]
    assert [line for o in found.values() for line in o["lines"]] == lines(10)
    assert all(o["metadata"] == {"sha256": hashlib.sha256(o["body"]).hexdigest()} for o in found.values())
    assert shipped(metrics) == 10


def test_the_thread_uploads_every_flush_interval(s3):
    sink = shipper(s3, flush_seconds=0.05)
    sink.start()
    try:
        sink.write(lines(3))
        found = wait_for(lambda: objects(s3))
    finally:
        sink.close()
    (key, content), = found.items()
    assert KEY.match(key) and abs(int(KEY.match(key)["ms"]) / 1000 - time.time()) < 60
    assert content["lines"] == lines(3)


def test_a_full_batch_does_not_wait_for_the_interval(s3):
    sink = shipper(s3, flush_seconds=600)
    sink.start()
    try:
        began = time.monotonic()
        sink.write(lines(999))
        sink.write(lines(1, start=999))
        found = wait_for(lambda: objects(s3))
        took = time.monotonic() - began
    finally:
        sink.close()
    assert [len(o["lines"]) for o in found.values()] == [1000], f"{took:.2f} s"


def test_what_is_left_is_uploaded_at_close(s3):
    sink = shipper(s3, flush_seconds=600)
    sink.start()
    sink.write(lines(5))
    sink.close()
    assert [line for o in objects(s3).values() for line in o["lines"]] == lines(5)


class _UnansweringClient:
    """An endpoint that takes a request and never answers (until released)."""

    def __init__(self):
        self.called, self.release = threading.Event(), threading.Event()

    def put_object(self, **_request):
        self.called.set()
        self.release.wait(10)
        raise ConnectionError("no answer")


def test_close_gives_up_within_its_bound_and_counts_what_is_left():
    client, metrics = _UnansweringClient(), ServingMetrics("r")
    sink = SampleShipper(client, BUCKET, "p/", metrics, flush_seconds=0.01)
    sink.start()
    sink.write(lines(2))
    assert client.called.wait(5)
    sink.write(lines(3))
    began = time.monotonic()
    sink.close(timeout=0.2)
    took = time.monotonic() - began
    client.release.set()
    assert took < 2.0, f"close took {took:.2f} s"
    assert dropped(metrics) == 3


def test_a_failed_upload_keeps_the_lines_for_the_next_attempt(s3):
    sink = SampleShipper(s3, "not-created-yet", "p/", ServingMetrics("r"))
    sink.write(lines(3))
    assert sink.ship_waiting() is False
    sink.write(lines(2, start=3))
    assert sink.waiting == 5
    s3.create_bucket(Bucket="not-created-yet")
    assert sink.ship_waiting() is True
    assert [line for o in objects(s3, "not-created-yet").values() for line in o["lines"]] == lines(5)


def test_beyond_the_bound_the_oldest_lines_are_dropped_and_counted(s3):
    metrics = ServingMetrics("r")
    sink = SampleShipper(s3, "not-created-yet", "p/", metrics, batch_lines=3, max_lines=5)
    sink.write(lines(4))
    assert sink.ship_waiting() is False
    sink.write(lines(4, start=4))
    assert sink.ship_waiting() is False
    assert dropped(metrics) == 3
    s3.create_bucket(Bucket="not-created-yet")
    assert sink.ship_waiting() is True
    assert [line for o in objects(s3, "not-created-yet").values() for line in o["lines"]] == lines(5, start=3)
    assert shipped(metrics) == 5


def test_a_failure_streak_is_logged_once_and_so_is_the_recovery(s3, capsys):
    logs.configure("INFO")
    sink = SampleShipper(s3, "not-created-yet", "p/", ServingMetrics("r"))
    sink.write(lines(1))
    for _ in range(3):
        sink.ship_waiting()
    s3.create_bucket(Bucket="not-created-yet")
    sink.ship_waiting()
    s3.delete_object(Bucket="not-created-yet", Key=next(iter(objects(s3, "not-created-yet"))))
    s3.delete_bucket(Bucket="not-created-yet")
    sink.write(lines(1))
    sink.ship_waiting()
    messages = [json.loads(line)["message"] for line in capsys.readouterr().out.splitlines()]
    assert messages == ["prediction samples not shipped; keeping them for the next attempt",
                        "prediction samples shipped again",
                        "prediction samples not shipped; keeping them for the next attempt"]


class _ListSink:
    def __init__(self):
        self.written: list[list[str]] = []

    def write(self, lines: list[str]) -> None:
        self.written.append(lines)

    def close(self) -> None:
        pass


def test_only_drawn_requests_are_sampled_and_every_sink_gets_the_same_lines():
    first, second = _ListSink(), _ListSink()
    draws = iter([0.7, 0.2])
    sampler = PredictionSampler(0.5, ["x"], "m", "4", [first, second], draw=lambda: next(draws))
    assert sampler.record("req-1", "/invocations", [[1.0]], [2.0]) is False
    assert sampler.record("req-2", "/predict", [[1.0], [float("nan")]], [2.0, 0.0], [{"a": 1.0}, {"a": 0.5}]) is True
    assert first.written == second.written and len(first.written) == 1
    entries = [json.loads(line) for line in first.written[0]]
    assert [e["request_id"] for e in entries] == ["req-2", "req-2"]
    assert entries[1]["features"] == {"x": None} and entries[1]["probabilities"] == {"a": 0.5}
    assert set(entries[0]) == {"ts", "request_id", "route", "model", "version", "features", "prediction",
                               "probabilities"}


class _Doubler:
    classes_ = None

    def predict(self, features):
        return features[:, 0] * 2


def _model(_settings) -> ServedModel:
    return ServedModel(name="m", version="4", run_id=None, source=None, estimator=_Doubler(),
                       schema=Schema([Column("x", "double")]), example_rows=[[1.0]])


def test_the_app_ships_what_it_writes_to_the_file(s3, tmp_path):
    log = tmp_path / "predictions.jsonl"
    settings = Settings(model_uri="models:/m/4", replica="replica-a", load_retry_seconds=0, prediction_log=log,
                        samples_uri=f"s3://{BUCKET}/predictions", samples_flush_seconds=600)
    with TestClient(create_app(settings, loader=_model)) as client:
        client.post("/invocations", json={"dataframe_records": [{"x": 1}, {"x": 2}]}, headers={"x-request-id": "s-1"})
        client.post("/predict", json={"row": {"x": 3}})
        assert objects(s3) == {}, "nothing is uploaded on the request path"
        before_close = client.get("/metrics").text
    found = objects(s3)
    (key, content), = found.items()
    assert KEY.match(key)
    assert content["lines"] == log.read_text().splitlines()
    assert [json.loads(line)["prediction"] for line in content["lines"]] == [2.0, 4.0, 6.0]
    assert "lastmile_serving_samples_shipped_total 0.0" in before_close


def test_the_app_ships_nothing_at_sample_rate_zero(s3):
    settings = Settings(model_uri="models:/m/4", replica="replica-a", load_retry_seconds=0,
                        samples_uri=f"s3://{BUCKET}/predictions", prediction_sample_rate=0)
    with TestClient(create_app(settings, loader=_model)) as client:
        assert client.post("/invocations", json={"dataframe_records": [{"x": 1}]}).status_code == 200
    assert objects(s3) == {}
