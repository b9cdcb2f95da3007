"""LocalFaultInjector on the real stand-ins: each kind of fault meets real traffic, processes and data, and its
revert undoes it. Every test reverts what it injected, so the session's stack is whole again afterwards."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from adapters.local.faultproxy.testing import FaultProxyProcess
from adapters.local.faults import LocalFaultInjector
from adapters.local.flavors import s3_credentials
from adapters.local.s3 import S3ObjectStore
from adapters.shared.distribution import DistributionRegistry
from harness.domain.errors import AuthError, CapacityError, IntegrityError, NotFound
from harness.domain.records import FaultSpec, oci_digest
from harness.infra.processes import free_port
from harness.infra.standin import http_status
from harness.pipeline import datasets
from tests.contracts.fault_injector import FaultInjectorContract

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
ROUTES = ("object_store", "registry", "mlflow", "deployer")


@dataclass(frozen=True)
class Front:
    """The fault proxy's API and the URL through it of each route."""

    api: str
    urls: dict[str, str]


@pytest.fixture(scope="module")
def front(stack, tmp_path_factory):
    """The stack's own ``faults`` stand-in when ``lastmile up`` starts one (every client then goes through it);
    else a fault proxy started here with a proxy per route, named like the front door's."""
    urls = stack.endpoints().urls
    if "faults" in urls:
        yield Front(urls["faults"], {route: urls[route] for route in ROUTES})
        return
    with FaultProxyProcess(free_port(), log=tmp_path_factory.mktemp("faults") / "faultproxy.log") as process, \
            process.client() as client:
        ports = {route: client.create_proxy(route, urlsplit(urls[route]).netloc).port for route in ROUTES}
        yield Front(process.url, {route: f"http://127.0.0.1:{port}" for route, port in ports.items()})


@pytest.fixture
def injector(stack, front):
    """The profile's own injector (its ``LocalFaults`` flavor) when the front door runs; else one on our proxy."""
    if front.api == stack.endpoints().urls.get("faults"):
        assert isinstance(stack.fault_injector, LocalFaultInjector)
        return stack.fault_injector
    return LocalFaultInjector(stack, faults_url=front.api)


def proxied_store(stack, front) -> S3ObjectStore:
    return S3ObjectStore(front.urls["object_store"], "us-east-1", *s3_credentials(stack.settings.ports.object_store,
                                                                                    stack))


def registry_client(stack, password_ref: str = "secret:registry-password") -> DistributionRegistry:
    return DistributionRegistry(stack.endpoints()["registry"], "lastmile", stack.secret(password_ref))


def wait_until(check, timeout_s: float) -> bool:
    until = time.monotonic() + timeout_s
    while time.monotonic() < until:
        if check():
            return True
        time.sleep(0.1)
    return False


class TestLocalFaultInjectorOnTheStandIns(FaultInjectorContract):
    @pytest.fixture
    def harmless_fault(self):
        return FaultSpec("network", "registry", "latency", {"latency": 1})

    @pytest.fixture
    def make_it_meet(self, front):
        return lambda handle: httpx.get(front.urls["registry"] + "/v2/", timeout=10)


def test_latency_slows_a_real_request_until_reverted(injector, front):
    def timed() -> float:
        started = time.monotonic()
        assert httpx.get(front.urls["mlflow"] + "/health", timeout=10).status_code == 200
        return time.monotonic() - started

    handle = injector.inject(FaultSpec("network", "mlflow", "latency", {"latency": 500}))
    try:
        slowed = timed()
    finally:
        evidence = injector.revert(handle.id)
    assert slowed >= 0.5 and timed() < 0.5
    assert evidence.took_effect


def test_a_503_rule_on_object_store_is_a_capacity_error_naming_slowdown(stack, injector, front):
    store = proxied_store(stack, front)
    bucket = stack.settings.buckets.data
    key = f"faults/{uuid.uuid4().hex}"
    store.put(bucket, key, b"payload")
    handle = injector.inject(FaultSpec("http", "object_store", "error",
                                       {"method": "GET", "path": f"/{bucket}/faults/*", "preset": "s3-slowdown"}))
    try:
        with pytest.raises(CapacityError, match=r"\(SlowDown\) after boto3's retries") as refused:
            store.get(bucket, key)
    finally:
        evidence = injector.revert(handle.id)
    assert refused.value.url == front.urls["object_store"]
    assert evidence.took_effect and "answered 503" in evidence.detail
    assert store.get(bucket, key) == b"payload"


def test_a_rule_no_request_matched_did_not_take_effect(stack, injector, front):
    handle = injector.inject(FaultSpec("http", "registry", "error", {"method": "PUT", "path": "/v2/nothing/*"}))
    httpx.get(front.urls["registry"] + "/v2/", timeout=10)
    evidence = injector.revert(handle.id)
    assert not evidence.took_effect and "no request matched" in evidence.detail


def test_a_paused_mlflow_stops_answering_until_resumed(stack, injector, front):
    handle = injector.inject(FaultSpec("process", "mlflow", "pause"))
    try:
        paused = http_status(front.urls["mlflow"] + "/health", timeout=1.0)
    finally:
        evidence = injector.revert(handle.id)
    assert paused is None
    assert wait_until(lambda: http_status(front.urls["mlflow"] + "/health", timeout=2.0) == 200, 20)
    assert evidence.took_effect and "mlflow was running (pids" in evidence.detail and "SIGCONT" in evidence.detail


def test_a_killed_registry_is_brought_back_healthy_by_the_revert(stack, injector, budget):
    [registry] = [s for s in stack.standins() if s.name == "registry"]
    handle = injector.inject(FaultSpec("process", "registry", "kill"))
    [dead] = stack.supervisor.status([registry])
    started = time.monotonic()
    evidence = injector.revert(handle.id)
    budget("the registry brought back by a revert", time.monotonic() - started, 15)

    [back] = stack.supervisor.status([registry])
    assert dead.state == "dead" and back.state == "healthy" and back.pid != dead.pid
    assert http_status(stack.endpoints()["registry"] + "/v2/") == 401
    assert evidence.took_effect and "registry started again by the supervisor" in evidence.detail


def test_a_restarted_registry_answers_again_with_a_new_process(stack, injector):
    [registry] = [s for s in stack.standins() if s.name == "registry"]
    [before] = stack.supervisor.status([registry])
    handle = injector.inject(FaultSpec("process", "registry", "restart"))
    [after] = stack.supervisor.status([registry])
    evidence = injector.revert(handle.id)
    assert after.state == "healthy" and after.pid != before.pid
    assert "nothing to undo: registry is healthy" in evidence.detail


def test_a_corrupt_dataset_fails_its_integrity_check_until_reverted(stack, injector):
    bucket = stack.settings.buckets.data
    key = datasets.seed(stack.object_store, bucket).ref.key
    original = stack.object_store.get(bucket, key)
    handle = injector.inject(FaultSpec("data", f"object:{bucket}/{key}", "corrupt"))
    try:
        with pytest.raises(IntegrityError):
            stack.object_store.get(bucket, key)
    finally:
        evidence = injector.revert(handle.id)
    assert stack.object_store.get(bucket, key) == original
    assert evidence.took_effect and "recorded sha256" in evidence.detail
    assert not (stack.settings.state_dir / "faults" / handle.id).exists()


def test_a_deleted_object_is_put_back_with_its_sha256(stack, injector):
    bucket, key = stack.settings.buckets.data, f"faults/{uuid.uuid4().hex}"
    ref = stack.object_store.put(bucket, key, b"keep me")
    handle = injector.inject(FaultSpec("data", f"object:{bucket}/{key}", "delete"))
    gone = stack.object_store.head(bucket, key)
    injector.revert(handle.id)
    assert gone is None and stack.object_store.head(bucket, key) == ref


def test_a_missing_object_is_refused_naming_the_bucket(stack, injector):
    with pytest.raises(Exception, match=r"object:lastmile-data/none/such: no such object in lastmile-data"):
        injector.inject(FaultSpec("data", f"object:{stack.settings.buckets.data}/none/such", "corrupt"))


@pytest.fixture
def blob(stack) -> tuple[str, str, bytes]:
    repository, data = f"lastmile/faults-{uuid.uuid4().hex[:8]}", uuid.uuid4().bytes * 1000
    return repository, stack.artifact_registry.push_blob(repository, data), data


def test_a_corrupt_blob_fails_its_digest_check_until_reverted(stack, injector, blob):
    repository, digest, data = blob
    handle = injector.inject(FaultSpec("data", f"blob:{repository}@{digest}", "corrupt"))
    try:
        with pytest.raises(IntegrityError):
            stack.artifact_registry.fetch_blob(repository, digest)
    finally:
        injector.revert(handle.id)
    assert stack.artifact_registry.fetch_blob(repository, digest) == data


def test_a_deleted_blob_is_pushed_back_by_the_revert(stack, injector, blob):
    repository, digest, data = blob
    handle = injector.inject(FaultSpec("data", f"blob:{repository}@{digest}", "delete"))
    try:
        with pytest.raises(NotFound):
            stack.artifact_registry.fetch_blob(repository, digest)
    finally:
        injector.revert(handle.id)
    assert stack.artifact_registry.fetch_blob(repository, digest) == data and oci_digest(data) == digest


def test_a_rotated_registry_password_is_refused_by_the_registry_until_restored(stack, injector, blob):
    repository, digest, _ = blob
    handle = injector.inject(FaultSpec("data", "secret:registry-password", "rotate"))
    try:
        with pytest.raises(AuthError):
            registry_client(stack).has_blob(repository, digest)
    finally:
        evidence = injector.revert(handle.id)
    assert registry_client(stack).has_blob(repository, digest)
    assert evidence.took_effect and "htpasswd still holds the old password" in evidence.detail
