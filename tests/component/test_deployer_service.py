"""The deployment's stable endpoint answers as a replica does, odd input included, and routes around a frozen
replica; with HAProxy (the default) and with the Python proxy kept as the alternative."""

from __future__ import annotations

import os
import signal
import time

import httpx
import psutil
import pytest

from tests.component.deployer_service import Controller, controller

LIMIT = 1024 * 1024  # the serving app's default max_body_bytes
ODD_PATHS = ["/invocations%00", "/%0d%0aSet-Cookie:%20x=1", "/ready%7f", "/metrics%23x", "/%2e%2e/metrics", "/%ff"]


@pytest.fixture(scope="module", params=["haproxy", "python"])
def deployed(request, registered, tmp_path_factory) -> Controller:
    with controller(registered, tmp_path_factory.mktemp(f"service-{request.param}"), request.param) as running:
        yield running


def _row(registered) -> dict:
    return {"dataframe_split": {"columns": registered.columns, "data": registered.rows[:1]}}


def test_a_prediction_through_the_endpoint_names_the_replica_that_answered(deployed, registered):
    names = {r["name"] for r in deployed.status()["replicas"]}
    answers = [httpx.post(f"{deployed.endpoint}/invocations", json=_row(registered), timeout=10) for _ in range(4)]
    assert [a.status_code for a in answers] == [200] * 4
    assert {a.headers["x-lastmile-replica"] for a in answers} == names
    assert answers[0].json()["predictions"] == registered.predictions[:1]


@pytest.mark.parametrize("path", ODD_PATHS)
def test_an_odd_path_is_answered_as_the_replica_answers_it(deployed, path):
    with httpx.Client(timeout=10) as client:
        direct = client.get(deployed.replica_url() + path)
        through = client.get(deployed.endpoint + path)
    assert through.status_code < 500, through.text
    assert (through.status_code, through.content) == (direct.status_code, direct.content)


def test_an_encoded_hash_is_not_decoded_into_another_route(deployed):
    answer = httpx.get(f"{deployed.endpoint}/metrics%23x", timeout=10)
    assert answer.status_code == 404 and "lastmile_serving_requests" not in answer.text


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_replicas_limit_is_answered_413(deployed, chunked):
    """Every time: the client writes its whole body before reading, and a replica that answered and closed while the
    body still arrived got its connection reset, taking the 413 with it (once in a CI run); it now drains first."""
    body = b"x" * (LIMIT + 1)
    for _ in range(10):
        content = (body[i:i + 65536] for i in range(0, len(body), 65536)) if chunked else body
        answer = httpx.post(f"{deployed.endpoint}/invocations", content=content, timeout=30,
                            headers={"content-type": "application/json"})
        assert answer.status_code == 413, answer.text
        assert answer.json()["error_code"] == "PAYLOAD_TOO_LARGE"


def test_a_huge_body_is_not_held_in_memory(deployed):
    """64 MB streamed: the endpoint's processes (the controller and HAProxy) grow by far less than that."""
    members = _endpoint_processes(deployed)
    before = sum(p.memory_info().rss for p in members)
    chunk = b"x" * (1 << 20)
    try:
        answer = httpx.post(f"{deployed.endpoint}/invocations", content=(chunk for _ in range(64)), timeout=30)
        status = answer.status_code
    except httpx.HTTPError:  # the endpoint may close the connection once it has answered 413
        status = 413
    after = sum(p.memory_info().rss for p in members)
    assert status == 413
    assert after - before < 16 << 20, f"grew by {(after - before) >> 20} MB"


def _endpoint_processes(deployed: Controller) -> list[psutil.Process]:
    """The process serving the admin port and its children (HAProxy)."""
    port = int(deployed.admin.rsplit(":", 1)[1])
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            leader = psutil.Process(conn.pid)
            return [leader, *leader.children()]
    raise AssertionError("the controller is not listening")


def test_each_replicas_metrics_carry_the_services_timing_of_it(deployed, registered):
    for _ in range(6):
        httpx.post(f"{deployed.endpoint}/invocations", json=_row(registered), timeout=10)
    time.sleep(0.3)  # HAProxy's log lines reach the controller asynchronously
    texts = {m["replica"]: m["text"] for m in deployed.metrics()}
    assert len(texts) == 2
    for name, text in texts.items():
        assert f'lastmile_service_upstream_duration_seconds_count{{replica="{name}",route="/invocations"}}' in text


def test_requests_waiting_on_a_paused_replica_are_answered_by_the_other(deployed, registered):
    replica = deployed.status()["replicas"][1]
    answered, failed = 0, []
    os.kill(replica["pid"], signal.SIGSTOP)
    try:
        with httpx.Client(timeout=5) as client:
            end = time.monotonic() + 4
            while time.monotonic() < end:
                try:
                    answer = client.post(f"{deployed.endpoint}/invocations", json=_row(registered))
                    answered += answer.status_code == 200
                    if answer.status_code != 200:
                        failed.append(answer.status_code)
                except httpx.HTTPError as exc:
                    failed.append(type(exc).__name__)
    finally:
        os.kill(replica["pid"], signal.SIGCONT)
    assert not failed and answered > 0, (answered, failed)
