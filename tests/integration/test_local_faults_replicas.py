"""LocalFaultInjector on a real deployment's replicas: through the fault proxy route the Service takes to each one
(``replica-<name>``), and on their processes. Needs the front door (the ``faults`` stand-in)."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from harness.domain.records import DeploymentSpec, DeploymentStatus, FaultSpec
from harness.pipeline.delivery import reference_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
SETTLE_S = 90.0


@pytest.fixture(scope="module")
def deployment(stack, trained_version) -> str:
    """The session's trained version deployed on the stack's controller with two replicas; its name."""
    if "faults" not in stack.endpoints().urls:
        pytest.skip("the stand-ins run without the fault proxy in front (standins.faults.enabled false)")
    version, serving = trained_version
    name = stack.settings.project
    stack.deployer.deploy(DeploymentSpec(name, serving.artifact, version, reference_of(version), replicas=2))
    return name


@pytest.fixture
def settled(stack, deployment) -> DeploymentStatus:
    return wait_settled(stack, deployment)


def wait_settled(stack, name: str) -> DeploymentStatus:
    """Every desired replica ready, each with its route on the fault proxy."""
    from adapters.local.faultproxy.client import FaultProxyClient

    until = time.monotonic() + SETTLE_S
    while True:
        status = stack.deployer.status(name)
        with FaultProxyClient(stack.endpoints()["faults"]) as client:
            routes = set(client.proxies())
        if (status.ready == status.desired == len(status.replicas)
                and all(r.state == "ready" and f"replica-{r.name}" in routes for r in status.replicas)):
            return status
        assert time.monotonic() < until, f"the deployment never settled: {status}"
        time.sleep(0.25)


def replica_in(detail: str) -> str:
    return re.search(r"replica(?::any is| ) ?([\w.-]+)", detail).group(1)  # type: ignore[union-attr]


def test_latency_on_one_replica_slows_only_what_the_service_sends_it(stack, settled):
    injector = stack.fault_injector
    service = settled.endpoint
    handle = injector.inject(FaultSpec("network", "replica:any", "latency", {"latency": 400}))
    chosen = replica_in(handle.detail)
    times: dict[str, list[float]] = {}
    try:
        for _ in range(6):
            started = time.monotonic()
            answer = httpx.get(f"{service}/ready", timeout=10)
            times.setdefault(answer.headers["x-lastmile-replica"], []).append(time.monotonic() - started)
    finally:
        evidence = injector.revert(handle.id)
    others = [t for name, ts in times.items() if name != chosen for t in ts]

    assert chosen == min(r.name for r in settled.replicas)
    assert times[chosen] and min(times[chosen]) >= 0.4
    assert others and max(others) < 0.4
    assert evidence.took_effect and f"on proxy replica-{chosen}" in handle.detail


def test_a_killed_replica_is_replaced_by_the_controller(stack, settled):
    injector = stack.fault_injector
    handle = injector.inject(FaultSpec("process", "replica:any", "kill"))
    chosen = replica_in(handle.detail)
    [before] = [r for r in settled.replicas if r.name == chosen]
    evidence = injector.revert(handle.id)

    until = time.monotonic() + SETTLE_S
    while True:
        now = {r.name: r for r in stack.deployer.status(settled.name).replicas}
        if chosen in now and now[chosen].state == "ready" and now[chosen].pid != before.pid:
            break
        assert time.monotonic() < until, f"replica {chosen} was not replaced: {now}"
        time.sleep(0.25)
    assert evidence.took_effect and "the deployment controller replaces a killed replica" in evidence.detail


def test_a_paused_replica_goes_unready_and_comes_back_on_revert(stack, settled):
    injector = stack.fault_injector
    name = max(r.name for r in settled.replicas)
    handle = injector.inject(FaultSpec("process", f"replica:{name}", "pause"))
    try:
        until = time.monotonic() + 20
        while {r.name: r.state for r in stack.deployer.status(settled.name).replicas}[name] == "ready":
            assert time.monotonic() < until, f"replica {name} stayed ready while paused"
            time.sleep(0.25)
        served = {httpx.get(f"{settled.endpoint}/ready", timeout=10).headers["x-lastmile-replica"] for _ in range(4)}
    finally:
        injector.revert(handle.id)
    assert served == {min(r.name for r in settled.replicas)}
    until = time.monotonic() + 20
    while {r.name: r.state for r in stack.deployer.status(settled.name).replicas}[name] != "ready":
        assert time.monotonic() < until, f"replica {name} did not come back after SIGCONT"
        time.sleep(0.25)


def test_the_service_answers_again_once_a_killed_fault_proxy_is_brought_back(stack, settled):
    injector = stack.fault_injector
    handle = injector.inject(FaultSpec("process", "faults", "kill"))
    evidence = injector.revert(handle.id)
    try:
        assert "faults started again by the supervisor" in evidence.detail
        answer = None
        until = time.monotonic() + 20
        while time.monotonic() < until:
            try:
                answer = httpx.get(f"{settled.endpoint}/ready", timeout=5)
            except httpx.TransportError:
                answer = None
            if answer is not None and answer.status_code == 200:
                break
            time.sleep(0.5)
        assert answer is not None and answer.status_code == 200, answer and answer.text
    finally:
        wait_settled(stack, settled.name)
