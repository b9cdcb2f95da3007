"""LocalFaultInjector's network and HTTP faults on a fault proxy of the test's own, and its ledger of active faults."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from adapters.local.faultproxy.testing import FaultProxyProcess, HttpRecorder
from adapters.local.faults import LocalFaultInjector
from harness.bootstrap import Harness, build
from harness.config.settings import load_settings
from harness.domain.errors import NotFound, UserError
from harness.domain.records import FaultSpec
from harness.infra.processes import free_port
from tests.contracts.fault_injector import FaultInjectorContract

ROOT = Path(__file__).resolve().parents[2]
ROUTES = ("object_store", "registry", "mlflow", "deployer", "service")

pytestmark = pytest.mark.timeout(60)


def harness_in(state_dir: Path) -> Harness:
    return build(load_settings(ROOT / "lastmile.yaml", "local", {"LASTMILE_STATE_DIR": str(state_dir)}))


@pytest.fixture(scope="module")
def faultproxy(tmp_path_factory):
    with FaultProxyProcess(free_port(), log=tmp_path_factory.mktemp("faultproxy") / "faultproxy.log") as process:
        yield process


@pytest.fixture(scope="module")
def upstream():
    with HttpRecorder() as server:
        yield server


@pytest.fixture
def urls(faultproxy, upstream) -> dict[str, str]:
    """One proxy per route, named like the front door's, each in front of the recorder: route -> proxied URL."""
    with faultproxy.client() as client:
        client.reset()
        for name in client.proxies():
            client.delete_proxy(name)
        return {route: f"http://127.0.0.1:{client.create_proxy(route, upstream.address).port}" for route in ROUTES}


@pytest.fixture
def injector(tmp_path, faultproxy, urls) -> LocalFaultInjector:
    return LocalFaultInjector(harness_in(tmp_path / ".lastmile"), faults_url=faultproxy.url)


class TestLocalFaultInjectorOnAFaultProxy(FaultInjectorContract):
    @pytest.fixture
    def harmless_fault(self):
        return FaultSpec("network", "registry", "latency", {"latency": 1})

    @pytest.fixture
    def make_it_meet(self, urls):
        return lambda handle: httpx.get(urls["registry"] + "/v2/", timeout=5).raise_for_status()


def test_latency_adds_time_to_a_request_until_reverted(injector, urls):
    def timed() -> float:
        started = time.monotonic()
        httpx.get(urls["mlflow"] + "/health", timeout=10).raise_for_status()
        return time.monotonic() - started

    handle = injector.inject(FaultSpec("network", "mlflow", "latency", {"latency": 400}))
    slowed = timed()
    evidence = injector.revert(handle.id)
    after = timed()

    assert slowed >= 0.4 > after, (slowed, after)
    assert evidence.took_effect and "1 connection(s) got toxic" in evidence.detail
    assert "toxic" in handle.detail and "on proxy mlflow" in handle.detail


def test_a_toxic_on_one_proxy_is_not_met_by_traffic_through_another(injector, urls):
    handle = injector.inject(FaultSpec("network", "registry", "latency", {"latency": 50}))
    httpx.get(urls["mlflow"] + "/health", timeout=5).raise_for_status()
    evidence = injector.revert(handle.id)
    assert not evidence.took_effect and "no traffic met toxic" in evidence.detail


def test_an_http_rule_answers_for_the_service_until_reverted(injector, urls, upstream):
    upstream.requests.clear()
    handle = injector.inject(FaultSpec("http", "object_store", "error",
                                       {"method": "GET", "path": "/lastmile-data/*", "preset": "s3-slowdown"}))
    refused = httpx.get(urls["object_store"] + "/lastmile-data/key", timeout=5)
    passed = httpx.put(urls["object_store"] + "/lastmile-data/key", content=b"x", timeout=5)
    evidence = injector.evidence(handle.id)
    injector.revert(handle.id)
    after = httpx.get(urls["object_store"] + "/lastmile-data/key", timeout=5)

    assert refused.status_code == 503 and "<Code>SlowDown</Code>" in refused.text
    assert passed.status_code == after.status_code == 200
    assert [r.method for r in upstream.requests] == ["PUT", "GET"]
    assert evidence.took_effect and "1 request(s) answered 503" in evidence.detail


def test_an_http_rule_nothing_matched_says_so(injector, urls):
    handle = injector.inject(FaultSpec("http", "deployer", "error", {"method": "POST", "status": 500}))
    httpx.get(urls["deployer"] + "/healthz", timeout=5)
    evidence = injector.revert(handle.id)
    assert not evidence.took_effect and "no request matched" in evidence.detail


def test_a_replica_target_names_its_proxy(injector, faultproxy, upstream):
    with faultproxy.client() as client:
        port = client.create_proxy("replica-r1", upstream.address).port
    handle = injector.inject(FaultSpec("http", "replica:r1", "error", {"status": 503}))
    assert httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).status_code == 503
    assert injector.revert(handle.id).took_effect


def test_a_missing_proxy_is_one_line_naming_the_ones_there_are(injector):
    with pytest.raises(UserError, match=r"replica:r9: the fault proxy .* has no such proxy; its proxies: deployer, "
                                        r"mlflow, object_store, registry, service"):
        injector.inject(FaultSpec("network", "replica:r9", "latency", {"latency": 10}))
    assert injector.active() == []


@pytest.mark.parametrize("spec, message", [
    (FaultSpec("network", "faults", "latency"), "a network fault cannot target 'faults'; it takes object_store"),
    (FaultSpec("http", "mlflow", "error", {"code": 500}), "http fault params code are not known; allowed: method"),
    (FaultSpec("network", "mlflow", "latency", {"latency": -1}), "the fault proxy refused the network fault"),
    (FaultSpec("network", "mlflow", "latency", {"latency": object()}), "a fault's params must be JSON values"),
])
def test_a_fault_the_proxy_cannot_take_is_refused_in_one_line(injector, spec, message):
    with pytest.raises(UserError, match=message):
        injector.inject(spec)


def test_without_a_fault_proxy_network_faults_say_how_to_get_one(tmp_path):
    injector = LocalFaultInjector(harness_in(tmp_path / ".lastmile"))
    with pytest.raises(UserError, match="the 'faults' stand-in is not up"):
        injector.inject(FaultSpec("network", "mlflow", "latency", {"latency": 10}))


def test_a_fault_injected_by_one_process_is_reverted_by_another(injector, tmp_path, faultproxy):
    handle = injector.inject(FaultSpec("network", "service", "latency", {"latency": 10}))
    script = ("import sys; from pathlib import Path; from adapters.local.faults import LocalFaultInjector; "
              "from tests.component.test_local_faults import harness_in; "
              "i = LocalFaultInjector(harness_in(Path(sys.argv[1])), faults_url=sys.argv[2]); "
              "print([f.id for f in i.active()]); print(i.revert(sys.argv[3]).detail)")
    other = subprocess.run([sys.executable, "-c", script, str(tmp_path / ".lastmile"), faultproxy.url, handle.id],
                           cwd=ROOT, capture_output=True, text=True, timeout=30)

    assert other.returncode == 0, other.stderr
    assert other.stdout.splitlines()[0] == repr([handle.id])
    assert injector.active() == []
    with faultproxy.client() as client:
        assert client.toxics("service") == []
    assert injector.revert(handle.id).detail == other.stdout.splitlines()[1]


def test_the_ledger_keeps_active_and_reverted_faults_in_one_file(injector, tmp_path):
    kept = injector.inject(FaultSpec("network", "registry", "latency", {"latency": 1}))
    gone = injector.inject(FaultSpec("network", "mlflow", "latency", {"latency": 1}))
    injector.revert(gone.id)
    data = json.loads((tmp_path / ".lastmile" / "faults" / "active.json").read_text())
    injector.revert(kept.id)

    assert [r["id"] for r in data["active"]] == [kept.id]
    assert [r["id"] for r in data["reverted"]] == [gone.id]
    assert data["active"][0]["spec"] == {"kind": "network", "target": "registry", "action": "latency",
                                         "params": {"latency": 1}}


def test_a_toxic_gone_with_a_reset_proxy_reverts_cleanly(injector, faultproxy):
    handle = injector.inject(FaultSpec("network", "deployer", "latency", {"latency": 1}))
    with faultproxy.client() as client:
        client.reset()
    assert "was already gone from proxy deployer" in injector.revert(handle.id).detail
    with pytest.raises(NotFound):
        injector.revert("fault-that-never-was")
