"""The stand-in's DevOps build runs through the real ``oci`` SDK: a real commit of a tiny repository built with the
project's ``build_spec.yaml`` and bundle code into the registry, failures, timeouts, cancels, vault variables,
the GitHub push webhook and the drill hooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx
import oci
import pytest
from oci.devops.models import (
    BuildRunArgument,
    BuildRunArgumentCollection,
    CancelBuildRunDetails,
    CommitInfo,
    CreateBuildRunDetails,
)

from adapters.oci.standin.devops_api import set_faults
from adapters.shared.distribution import DistributionRegistry
from harness.domain.records import Secret
from harness.infra.bundle import build_bundle
from tests.component.devops_fixtures import (
    PIPELINE,
    PROJECT,
    REGISTRY_PASSWORD,
    REGISTRY_USER,
    SECRET_SPEC_VALUE,
    SPEC_PIPELINES,
    TRIGGER,
    WEBHOOK_SECRET,
    commit_all,
    devops_world,
    git,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    yield from devops_world(tmp_path_factory)


@pytest.fixture(scope="module")
def client(world):
    return oci.devops.DevopsClient(world.standin.sdk_config(), service_endpoint=world.standin.url,
                                   retry_strategy=oci.retry.NoneRetryStrategy())


def start(client, pipeline: str, commit: str, **arguments: str):
    details = CreateBuildRunDetails(
        build_pipeline_id=pipeline, display_name="test",
        commit_info=CommitInfo(repository_url="https://github.com/example/tiny.git", repository_branch="main",
                               commit_hash=commit),
        build_run_arguments=BuildRunArgumentCollection(items=[BuildRunArgument(name=k, value=v)
                                                              for k, v in arguments.items()]))
    return client.create_build_run(details).data


def ended(client, run_id: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        run = client.get_build_run(run_id).data
        if run.lifecycle_state in ("SUCCEEDED", "FAILED", "CANCELED") or time.monotonic() > deadline:
            return run
        time.sleep(0.1)


def log_lines(world, run_id: str) -> list[str]:
    search = oci.loggingsearch.LogSearchClient(world.standin.sdk_config(), service_endpoint=world.standin.url)
    from adapters.oci.devops import log_tail_reader
    from tests.component.devops_fixtures import COMPARTMENT, GROUP, LOG

    return log_tail_reader(search, f"{COMPARTMENT}/{GROUP}/{LOG}")(run_id, 1000).splitlines()


def head(world) -> str:
    return git(world.repo, "rev-parse", "HEAD")


def test_get_project(client):
    project = client.get_project(PROJECT).data

    assert (project.id, project.lifecycle_state) == (PROJECT, "ACTIVE")


def test_get_build_pipeline(client, world):
    pipeline = client.get_build_pipeline(PIPELINE).data
    parameters = {p.name: p.default_value for p in pipeline.build_pipeline_parameters.items}

    assert pipeline.project_id == PROJECT and parameters["OCIR_REGISTRY"] == world.registry.url


def test_unknown_build_run_is_404(client):
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        client.get_build_run("ocid1.devopsbuildrun.oc1..nothing")

    assert (caught.value.status, caught.value.code) == (404, "NotAuthorizedOrNotFound")


def test_build_run_delivers_the_bundle_the_local_builder_makes(client, world, tmp_path):
    commit = head(world)
    accepted = start(client, PIPELINE, commit, BUILD_TARGET="training", OCIR_REPOSITORY_PREFIX="lastmile")
    run = ended(client, accepted.id)
    registry = DistributionRegistry(world.registry.url, REGISTRY_USER, Secret(REGISTRY_PASSWORD))
    git(world.repo, "worktree", "add", "-q", "--detach", str(tmp_path / "wt"), commit)
    local = build_bundle(registry, "training", tmp_path / "wt" / "training", "lastmile/training")

    assert accepted.lifecycle_state == "ACCEPTED"
    assert run.lifecycle_state == "SUCCEEDED", (run.lifecycle_details, log_lines(world, run.id)[-20:])
    exported = {v.name: v.value for v in run.build_outputs.exported_variables.items}
    delivered = run.build_outputs.delivered_artifacts.items[0]
    assert exported["BUNDLE_DIGEST"] == local.artifact.digest == delivered.delivered_artifact_hash
    assert exported["SOURCE_DIGEST"] == local.source_digest and not local.pushed
    assert delivered.artifact_type == "OCIR" and delivered.image_uri == str(local.artifact)
    assert run.commit_info.commit_hash == commit
    stage = next(iter(run.build_run_progress.build_pipeline_stage_run_progress.values()))
    assert [s.state for s in stage.steps] == ["SUCCEEDED"] * 3 and stage.status == "SUCCEEDED"


def test_registry_password_never_shows(client, world):
    runs = client.list_build_runs(build_pipeline_id=PIPELINE).data.items
    state = (world.standin.state / "devops" / "buildruns.json").read_text()

    assert runs and REGISTRY_PASSWORD not in state
    assert not any(REGISTRY_PASSWORD in line for r in runs for line in log_lines(world, r.id))


def test_list_build_runs(client, world):
    run = ended(client, start(client, SPEC_PIPELINES["fail"], head(world)).id)
    listed = client.list_build_runs(project_id=PROJECT, lifecycle_state="FAILED").data.items

    assert run.id in [r.id for r in listed] and all(r.lifecycle_state == "FAILED" for r in listed)


def test_failing_step_fails_the_run_with_details_and_log(client, world):
    run = ended(client, start(client, SPEC_PIPELINES["fail"], head(world)).id)
    lines = log_lines(world, run.id)

    assert run.lifecycle_state == "FAILED"
    assert run.lifecycle_details == "Step 'breaks' failed with exit code 3"
    assert "compiler says no" in lines and "cleaning up" in lines
    stage = next(iter(run.build_run_progress.build_pipeline_stage_run_progress.values()))
    assert [s.state for s in stage.steps] == ["SUCCEEDED", "FAILED"]


def test_step_timeout_kills_the_step(client, world):
    began = time.monotonic()
    run = ended(client, start(client, SPEC_PIPELINES["slow"], head(world)).id)

    assert run.lifecycle_state == "FAILED" and run.lifecycle_details == "Step 'sleeps' timed out after 1 seconds"
    assert time.monotonic() - began < 15


def test_cancel_build_run(client, world):
    run = start(client, SPEC_PIPELINES["hang"], head(world))
    canceling = client.cancel_build_run(CancelBuildRunDetails(reason="test"), run.id).data
    run = ended(client, run.id)

    assert canceling.lifecycle_state == "CANCELING" and run.lifecycle_state == "CANCELED"


def test_vault_variables_resolved_and_never_stored(client, world):
    run = ended(client, start(client, SPEC_PIPELINES["secret"], head(world)).id)
    exported = {v.name: v.value for v in run.build_outputs.exported_variables.items}
    lines = log_lines(world, run.id)
    state = (world.standin.state / "devops" / "buildruns.json").read_text()

    assert run.lifecycle_state == "SUCCEEDED" and exported == {"LEAK": "***", "GREETING": "hello world"}
    assert "token is ***" in lines
    assert SECRET_SPEC_VALUE not in state and not any(SECRET_SPEC_VALUE in line for line in lines)


def test_unknown_commit_fails_the_run(client):
    run = ended(client, start(client, SPEC_PIPELINES["fail"], "0" * 40).id)

    assert run.lifecycle_state == "FAILED" and "Unable to check out commit" in run.lifecycle_details


# --- the GitHub push webhook ------------------------------------------------------------------------------------

def push(world, paths: list[str], ref: str = "refs/heads/main", secret: str | None = WEBHOOK_SECRET,
         event: str = "push") -> httpx.Response:
    body = json.dumps({"ref": ref, "after": head(world), "repository": {"clone_url": "https://github.com/e/t.git"},
                       "commits": [{"added": paths[:1], "modified": paths[1:], "removed": []}]}).encode()
    headers = {"X-GitHub-Event": event, "Content-Type": "application/json"}
    if secret is not None:
        headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return httpx.post(f"{world.standin.url}/20210630/triggers/{TRIGGER}/events", content=body, headers=headers)


def test_webhook_starts_a_run_when_a_filtered_path_changed(client, world):
    answer = push(world, ["training/model.py", "README.md"])
    run = ended(client, answer.json()["buildRunId"])

    assert answer.status_code == 202 and answer.json()["paths"] == ["training/model.py"]
    assert run.build_run_source.source_type == "GITHUB" and run.build_run_source.trigger_id == TRIGGER
    assert run.lifecycle_state == "SUCCEEDED", run.lifecycle_details


@pytest.mark.parametrize("paths", [["serving/app.py"], ["training/README.md"]], ids=["not-included", "excluded"])
def test_webhook_ignores_unfiltered_paths(world, paths):
    answer = push(world, paths)

    assert answer.status_code == 200 and answer.json() == {"buildRunId": None, "reason": "no filtered path changed"}


def test_webhook_ignores_other_branches(world):
    assert push(world, ["training/model.py"], ref="refs/heads/feature").json()["buildRunId"] is None


def test_webhook_without_signature_is_401(world):
    assert push(world, ["training/model.py"], secret=None).status_code == 401


def test_webhook_with_a_wrong_signature_is_403(world):
    assert push(world, ["training/model.py"], secret="guessed").status_code == 403


# --- drill hooks -------------------------------------------------------------------------------------------------

def faults(world, method: str, body: dict | None = None) -> dict:
    return set_faults(world.standin.url, world.standin.api_key.config_file, world.standin.api_key.profile, method,
                      **(body or {}))


def test_drill_makes_the_next_run_fail(client, world):
    assert faults(world, "PUT", {"fail": 1}) == {"fail": 1, "hang": 0, "throttle": 0}
    run = ended(client, start(client, SPEC_PIPELINES["secret"], head(world)).id)

    assert run.lifecycle_state == "FAILED" and "made to fail" in run.lifecycle_details
    assert faults(world, "GET")["fail"] == 0


def test_drill_makes_the_next_run_hang_until_canceled(client, world):
    faults(world, "PUT", {"hang": 1})
    run = start(client, SPEC_PIPELINES["secret"], head(world))
    time.sleep(1)
    hanging = client.get_build_run(run.id).data
    client.cancel_build_run(CancelBuildRunDetails(reason="drill over"), run.id)

    assert hanging.lifecycle_state == "IN_PROGRESS" and ended(client, run.id).lifecycle_state == "CANCELED"


def test_drill_throttles_the_api(client, world):
    faults(world, "PUT", {"throttle": 1})
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        client.get_project(PROJECT)

    assert (caught.value.status, caught.value.code) == (429, "TooManyRequests")
    assert client.get_project(PROJECT).data.id == PROJECT
    assert faults(world, "DELETE") == {"fail": 0, "hang": 0, "throttle": 0}


def test_a_new_commit_is_built_from_its_own_tree(client, world):
    (world.repo / "training" / "model.py").write_text("WEIGHTS = [4, 5, 6]\n")
    commit = commit_all(world.repo, "new weights")
    run = ended(client, start(client, PIPELINE, commit, BUILD_TARGET="training").id)
    first = client.list_build_runs(build_pipeline_id=PIPELINE, lifecycle_state="SUCCEEDED").data.items[-1]
    before = {v.name: v.value for v in ended(client, first.id).build_outputs.exported_variables.items}
    after = {v.name: v.value for v in run.build_outputs.exported_variables.items}

    assert run.lifecycle_state == "SUCCEEDED" and after["BUNDLE_DIGEST"] != before["BUNDLE_DIGEST"]
