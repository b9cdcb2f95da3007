"""The ``devops`` ImageBuilder on the real ``oci`` SDK against the stand-in: a build is a build run of a commit,
checked against the bundle the local builder makes of the same tree, never rebuilt when the registry has it."""

from __future__ import annotations

import oci
import pytest

from adapters.oci.devops import BuildFailed, DevOpsImageBuilder, log_tail_reader
from adapters.oci.sdk import make_client
from adapters.oci.standin.devops_api import set_faults
from adapters.shared.distribution import DistributionRegistry
from harness.domain.errors import CapacityError, UserError
from harness.domain.records import Secret
from harness.infra.bundle import plan_bundle, source_digest
from tests.component.devops_fixtures import (
    COMPARTMENT,
    GROUP,
    LOG,
    PIPELINE,
    REGISTRY_PASSWORD,
    REGISTRY_USER,
    SPEC_PIPELINES,
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
    config = world.standin.sdk_config()
    return make_client(oci.devops.DevopsClient, config, _signer(config), world.standin.url)


def _signer(config):
    return oci.signer.Signer(config["tenancy"], config["user"], config["fingerprint"], config["key_file"])


def builder(world, client, pipeline: str = PIPELINE, timeout_s: float = 60) -> DevOpsImageBuilder:
    registry = DistributionRegistry(world.registry.url, REGISTRY_USER, Secret(REGISTRY_PASSWORD))
    search = oci.loggingsearch.LogSearchClient(world.standin.sdk_config(), service_endpoint=world.standin.url)
    return DevOpsImageBuilder(client, pipeline, registry, "lastmile", timeout_s=timeout_s,
                              log_tail=log_tail_reader(search, f"{COMPARTMENT}/{GROUP}/{LOG}"),
                              arguments={"OCIR_REGISTRY": world.registry.url, "OCIR_USERNAME": REGISTRY_USER})


def runs(client, pipeline: str = PIPELINE) -> int:
    return len(client.list_build_runs(build_pipeline_id=pipeline).data.items)


def test_build_is_a_build_run_giving_the_local_builders_digest(world, client):
    context = world.repo / "training"
    built = builder(world, client).build("training", context)

    assert built.pushed and built.artifact.digest == plan_bundle("training", context).digest
    assert built.source_digest == source_digest(context)
    assert str(built.artifact) == f"127.0.0.1:{world.registry.port}/lastmile/training@{built.artifact.digest}"


def test_a_tree_already_built_is_not_built_again(world, client):
    first = builder(world, client).build("training", world.repo / "training")
    before = runs(client)
    again = builder(world, client).build("training", world.repo / "training")

    assert not again.pushed and again.artifact == first.artifact and runs(client) == before


def test_uncommitted_changes_are_refused_by_name(world, client):
    (world.repo / "training" / "scratch.py").write_text("x = 1\n")
    try:
        with pytest.raises(UserError, match=r"training has uncommitted changes \(training/scratch.py\)"):
            builder(world, client).build("training", world.repo / "training")
    finally:
        (world.repo / "training" / "scratch.py").unlink()


def test_a_failed_build_run_raises_with_details_and_log_tail(world, client):
    (world.repo / "training" / "model.py").write_text("WEIGHTS = [7]\n")
    commit_all(world.repo, "weights the fail pipeline never built")
    with pytest.raises(BuildFailed) as caught:
        builder(world, client, SPEC_PIPELINES["fail"]).build("training", world.repo / "training")

    message = str(caught.value)
    assert "FAILED: Step 'breaks' failed with exit code 3" in message and "compiler says no" in message


def test_a_run_past_the_timeout_is_canceled(world, client):
    (world.repo / "training" / "model.py").write_text("WEIGHTS = [8]\n")
    commit_all(world.repo, "weights for the hang")
    with pytest.raises(CapacityError, match="did not end within 1 s; canceled"):
        builder(world, client, SPEC_PIPELINES["hang"], timeout_s=1).build("training", world.repo / "training")

    latest = client.list_build_runs(build_pipeline_id=SPEC_PIPELINES["hang"]).data.items[0]
    assert latest.lifecycle_state in ("CANCELING", "CANCELED")


def test_throttled_calls_are_retried(world, client):
    key = world.standin.api_key
    set_faults(world.standin.url, key.config_file, key.profile, throttle=2)
    (world.repo / "training" / "model.py").write_text("WEIGHTS = [9]\n")
    commit = commit_all(world.repo, "weights built through throttling")
    built = builder(world, client).build("training", world.repo / "training")

    assert built.pushed and git(world.repo, "rev-parse", "HEAD") == commit
    assert set_faults(world.standin.url, key.config_file, key.profile, "GET")["throttle"] == 0
