"""The stand-in's DevOps operations driven by the real ``oci`` CLI (``oci devops ...`` through
``scripts/oci-cli.sh``), one test per operation. Skipped only when PyPI cannot be reached to install the CLI."""

from __future__ import annotations

import json

import pytest

from adapters.oci.standin.testing import CliUnavailable, ensure_oci_cli, oci_cli
from tests.component.devops_fixtures import PIPELINE, PROJECT, SPEC_PIPELINES, devops_world, git

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    try:
        ensure_oci_cli()
    except CliUnavailable as exc:
        pytest.skip(f"the oci CLI cannot be installed: {exc}")
    yield from devops_world(tmp_path_factory)


def ok(world, *args: str) -> dict:
    result = oci_cli(world.standin, "devops", *args)
    assert result.code == 0, result.stderr[-2000:]
    return result.json()


def create(world, pipeline: str, *extra: str) -> dict:
    commit = json.dumps({"repositoryUrl": "https://github.com/example/tiny.git", "repositoryBranch": "main",
                         "commitHash": git(world.repo, "rev-parse", "HEAD")})
    return ok(world, "build-run", "create", "--build-pipeline-id", pipeline, "--commit-info", commit, *extra)["data"]


def test_project_get(world):
    assert ok(world, "project", "get", "--project-id", PROJECT)["data"]["lifecycle-state"] == "ACTIVE"


def test_build_pipeline_get(world):
    pipeline = ok(world, "build-pipeline", "get", "--build-pipeline-id", PIPELINE)["data"]

    assert pipeline["project-id"] == PROJECT


def test_build_run_create_waits_for_success(world):
    arguments = json.dumps({"items": [{"name": "WHO", "value": "cli"}]})
    run = create(world, SPEC_PIPELINES["secret"], "--build-run-arguments", arguments,
                 "--wait-for-state", "SUCCEEDED", "--wait-for-state", "FAILED", "--wait-interval-seconds", "1")
    exported = {v["name"]: v["value"] for v in run["build-outputs"]["exported-variables"]["items"]}

    assert run["lifecycle-state"] == "SUCCEEDED" and exported["GREETING"] == "hello cli"


def test_build_run_get(world):
    run = create(world, SPEC_PIPELINES["fail"])
    got = ok(world, "build-run", "get", "--build-run-id", run["id"])["data"]

    assert got["id"] == run["id"] and got["build-pipeline-id"] == SPEC_PIPELINES["fail"]


def test_build_run_list(world):
    run = create(world, SPEC_PIPELINES["fail"])
    listed = ok(world, "build-run", "list", "--build-pipeline-id", SPEC_PIPELINES["fail"], "--all")["data"]["items"]

    assert run["id"] in [r["id"] for r in listed]


def test_build_run_cancel(world):
    run = create(world, SPEC_PIPELINES["hang"])
    canceled = ok(world, "build-run", "cancel", "--build-run-id", run["id"], "--reason", "cli test",
                  "--wait-for-state", "CANCELED", "--wait-interval-seconds", "1")["data"]

    assert canceled["lifecycle-state"] == "CANCELED"
