"""A real replica (``python -m serving``) ships its sampled predictions to an S3 endpoint on loopback (moto's
server), where lastmile's own object store reads them back with their sha256 checked."""

from __future__ import annotations

import hashlib
import json
import re
import time

import httpx
import pytest
from moto.server import ThreadedMotoServer

from adapters.local.s3 import S3ObjectStore
from harness.infra.processes import free_port
from tests.component.serving_support import serving, serving_env, wait_until_ready

BUCKET = "lastmile-samples"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def s3_endpoint(monkeypatch):
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    S3ObjectStore(endpoint, "us-east-1", None, None).ensure_bucket(BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()


def test_a_replica_ships_its_sampled_rows_to_object_storage(registered, s3_endpoint, tmp_path, budget):
    port, log = free_port(), tmp_path / "serving.log"
    env = serving_env(registered, **CREDENTIALS, LASTMILE_SERVING_MODEL_DIR=registered.model_dir,
                      LASTMILE_SERVING_SAMPLES_URI=f"s3://{BUCKET}/predictions/",
                      LASTMILE_SERVING_S3_ENDPOINT=s3_endpoint, LASTMILE_SERVING_SAMPLES_FLUSH_SECONDS="0.5")
    store = S3ObjectStore(s3_endpoint, "us-east-1", None, None)
    url = f"http://127.0.0.1:{port}"
    with serving(env, port, log) as proc:
        wait_until_ready(url, proc, log)
        posted = time.monotonic()
        answer = httpx.post(url + "/invocations", json={"dataframe_records": registered.records()},
                            headers={"x-request-id": "shipped-1"}, timeout=10).json()
        refs = _objects(store, "predictions/", timeout=15.0, log=log)
        shipped_after = time.monotonic() - posted
        metrics = httpx.get(url + "/metrics", timeout=5).text
    (ref,) = refs
    assert re.fullmatch(rf"predictions/iris/{registered.champion_version}/replica-c/\d{{13}}-\d{{6}}\.jsonl", ref.key)
    body = store.get(BUCKET, ref.key)  # checks the sha256 metadata against the body
    assert store.head(BUCKET, ref.key).sha256 == hashlib.sha256(body).hexdigest()
    entries = [json.loads(line) for line in body.decode().splitlines()]
    assert [e["features"] for e in entries] == registered.records()
    assert [e["prediction"] for e in entries] == answer["predictions"] == registered.predictions
    assert {e["request_id"] for e in entries} == {"shipped-1"}
    assert f"lastmile_serving_samples_shipped_total {float(len(entries))}" in metrics
    budget("sampled rows in object storage after the request", shipped_after, 5.0)


def _objects(store: S3ObjectStore, prefix: str, timeout: float, log) -> list:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if refs := store.list(BUCKET, prefix):
            return refs
        time.sleep(0.1)
    pytest.fail(f"nothing under s3://{BUCKET}/{prefix} within {timeout} s:\n{log.read_text()}")
