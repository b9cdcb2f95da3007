"""One replica (``python -m serving`` on the iris model's downloaded directory) fuzzed by schemathesis from its own
OpenAPI document: every operation, valid and invalid bodies in every documented media type, no 5xx, and answers
with the statuses, media types and bodies the document declares."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from harness.infra.processes import free_port
from tests.component.serving_support import serving, serving_env, wait_until_ready

EXAMPLES_PER_OPERATION = 40
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@schemathesis.serializer("text/csv")
def _csv(_context, value) -> bytes:
    """Whatever the fuzzer drew for a CSV body, as text: strings as they are, anything else as JSON."""
    return (value if isinstance(value, str) else json.dumps(value)).encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def replica(registered, tmp_path_factory) -> Iterator[str]:
    port, log = free_port(), tmp_path_factory.mktemp("fuzz") / "serving.log"
    env = serving_env(registered, LASTMILE_SERVING_MODEL_DIR=registered.model_dir, LASTMILE_SERVING_LOG_LEVEL="WARNING")
    with serving(env, port, log) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(url, proc, log)
        yield url


@pytest.fixture(scope="module")
def operations(replica) -> dict[str, schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_url(f"{replica}/openapi.json")
    found = [result.ok() for result in schema.get_all_operations()]
    return {f"{operation.method.upper()} {operation.path}": operation for operation in found}


OPERATIONS = ["GET /health", "GET /ping", "GET /ready", "GET /version", "GET /metrics", "POST /invocations",
              "POST /predict"]


def test_every_operation_is_fuzzed(operations):
    assert set(operations) == set(OPERATIONS)


FUZZED = [(name, mode) for name in OPERATIONS for mode in GenerationMode
          if name.startswith("POST") or mode is GenerationMode.POSITIVE]
"""Negative cases for the routes with bodies; a GET without parameters has nothing to get wrong."""


@pytest.mark.parametrize(("name", "mode"), FUZZED, ids=[f"{name}-{mode.value}" for name, mode in FUZZED])
def test_no_operation_answers_a_server_error_or_off_its_document(operations, name, mode):
    """schemathesis 4's pytest plugin (``from_fixture``) fails to collect under pytest 9: hypothesis directly."""
    operation = operations[name]
    examples = EXAMPLES_PER_OPERATION if operation.method.upper() == "POST" else 5

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def fuzz(case):
        case.call_and_validate(checks=CHECKS)

    fuzz()


def test_the_document_gives_the_scoring_routes_request_bodies(replica):
    import httpx

    paths = httpx.get(f"{replica}/openapi.json", timeout=10).json()["paths"]
    invocations = paths["/invocations"]["post"]["requestBody"]["content"]
    assert set(invocations) == {"application/json", "text/csv"}
    formats = [option["title"] for option in invocations["application/json"]["schema"]["oneOf"]]
    assert formats == ["dataframe_split", "dataframe_records", "instances", "inputs"]
    row = paths["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]["oneOf"][0]
    assert row["properties"]["row"]["required"] == ["sepal length (cm)", "sepal width (cm)", "petal length (cm)",
                                                     "petal width (cm)"]
    assert {"400", "413", "415", "503"} <= set(paths["/invocations"]["post"]["responses"])
