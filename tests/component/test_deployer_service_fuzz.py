"""Schemathesis against the stable endpoint (HAProxy in front of two replicas) and against one replica directly,
from the schema the replicas publish (``/openapi.json``, read through the endpoint): no 5xx from either."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.component.deployer_service import Controller, controller

MAX_EXAMPLES = 25  # per operation: a few seconds for the whole schema on two busy cores


@pytest.fixture(scope="module")
def deployed(registered, tmp_path_factory) -> Controller:
    with controller(registered, tmp_path_factory.mktemp("service-fuzz"), "haproxy") as running:
        yield running


@pytest.mark.parametrize("target", ["endpoint", "replica"])
def test_no_input_makes_the_endpoint_or_a_replica_answer_5xx(deployed, target):
    schema = schemathesis.openapi.from_url(f"{deployed.endpoint}/openapi.json")
    base_url = deployed.endpoint if target == "endpoint" else deployed.replica_url()
    failures: list[str] = []
    for operation in schema.get_all_operations():
        _fuzz(operation.ok(), base_url, failures)
    assert not failures, "\n".join(failures[:5])


def _fuzz(operation, base_url: str, failures: list[str]) -> None:
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def check(case) -> None:
        response = case.call(base_url=base_url, timeout=10)
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except (AssertionError, BaseExceptionGroup) as exc:  # one failure, or a FailureGroup of several
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")

    check()
