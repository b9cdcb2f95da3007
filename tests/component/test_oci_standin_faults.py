"""Faults reach the OCI stand-in like every stand-in: behind lastmile's fault proxy, the ``oci-too-many-requests``
preset answers in the stand-in's own error shape, so the SDK parses both into the same ``ServiceError`` and its retry
strategy retries the throttling (and not the stand-in's 404s)."""

from __future__ import annotations

import json

import httpx
import oci
import pytest

from adapters.local.faultproxy.presets import oci_too_many_requests
from adapters.local.faultproxy.testing import FaultProxyProcess
from adapters.oci.standin.testing import StandInProcess
from harness.infra.processes import free_port

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    """The stand-in behind a proxy ``oci`` of a running fault proxy: (stand-in, fault proxy client, proxy URL)."""
    root = tmp_path_factory.mktemp("oci-faults")
    with StandInProcess(free_port(), root / "state") as standin, \
            FaultProxyProcess(free_port(), log=root / "faultproxy.log") as faults, faults.client() as api:
        proxy = api.create_proxy("oci", f"127.0.0.1:{standin.port}")
        yield standin, api, f"http://127.0.0.1:{proxy.port}"


@pytest.fixture
def api(front):
    _, api, _ = front
    api.clear_faults("oci")
    yield api
    api.clear_faults("oci")


def client(front, retry_strategy) -> oci.object_storage.ObjectStorageClient:
    standin, _, url = front
    return oci.object_storage.ObjectStorageClient(standin.sdk_config(), service_endpoint=url,
                                                  retry_strategy=retry_strategy,
                                                  circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy())


def three_attempts():
    return oci.retry.RetryStrategyBuilder(max_attempts=3, retry_base_sleep_time_seconds=0.05,
                                          retry_max_wait_between_calls_seconds=0.2).get_retry_strategy()


def test_signed_requests_pass_through_the_fault_proxy(front, api):
    assert client(front, oci.retry.NoneRetryStrategy()).get_namespace().data == "lastmile"


def test_the_preset_429_reaches_the_sdk_as_too_many_requests(front, api):
    api.add_fault("oci", "GET", "/n*", preset="oci-too-many-requests", name="throttle")
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        client(front, oci.retry.NoneRetryStrategy()).get_namespace()

    assert (caught.value.status, caught.value.code) == (429, "TooManyRequests")
    assert caught.value.message == "User-rate limit exceeded."


def test_the_sdk_retries_the_preset_429_but_not_the_stand_ins_404(front, api):
    before = api.stats("oci").http_requests
    api.add_fault("oci", "GET", "/n", preset="oci-too-many-requests", name="throttle-retried")
    with pytest.raises(oci.exceptions.ServiceError) as throttled:
        client(front, three_attempts()).get_namespace()
    with pytest.raises(oci.exceptions.ServiceError) as missing:
        client(front, three_attempts()).get_bucket("lastmile", "absent")
    stats = api.stats("oci")

    assert throttled.value.status == 429 and stats.faults["throttle-retried"].injected == 3
    assert (missing.value.status, missing.value.code) == (404, "BucketNotFound")
    assert stats.http_requests - before == 4


def test_the_stand_ins_errors_have_the_presets_shape(front):
    standin, _, _ = front
    answer = httpx.get(f"{standin.url}/n/")
    preset = oci_too_many_requests()

    assert answer.headers["content-type"] == preset.content_type == "application/json"
    assert set(answer.json()) == set(json.loads(preset.body)) == {"code", "message"}
    assert answer.headers["opc-request-id"] and preset.headers["opc-request-id"]
