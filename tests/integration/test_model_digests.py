"""The failure drill on the real stand-ins: a model file replaced in the S3 stand-in behind MLflow's back (any
loopback client can write it). The registry's ``verify`` names it, the replicas refuse to load it, and the
harness's rollout policy rolls the revision back to the one that serves."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from adapters.local.flavors import LocalDeployer
from adapters.local.standins import DeployerStandIn
from harness.domain.records import DeploymentSpec
from harness.infra.processes import free_port
from harness.infra.supervisor import Supervisor
from harness.pipeline.delivery import reference_of
from harness.pipeline.rollout import RolloutFailed, RolloutPolicy, roll_out

pytestmark = pytest.mark.integration

TAMPERED = b"not the model training stored"


@pytest.fixture
def deployer(stack, tmp_path):
    """A deployment controller of this test's own, one replica, on the session's stand-ins."""
    state = tmp_path / ".lastmile"
    standin = DeployerStandIn(free_port(), state, free_port(), "digests", LocalDeployer(flavor="local", replicas=1),
                              stack.secret_store)
    supervisor = Supervisor(state)
    [running] = supervisor.up([standin])
    try:
        yield LocalDeployer(flavor="local", replicas=1, endpoint=running.url).build(stack)
    finally:
        supervisor.down()


@pytest.fixture
def tampered_version(stack, trained_version, tmp_path):
    """The trained version's files and tags registered again (files of its own, under a model name of its own),
    then its ``model.skops`` overwritten straight in the bucket MLflow's server proxies artifacts to."""
    from mlflow.artifacts import download_artifacts
    from mlflow.tracking import MlflowClient

    good, _serving = trained_version
    url = stack.endpoints()["mlflow"]
    client = MlflowClient(url, url)
    files = download_artifacts(artifact_uri=client.get_model_version_download_uri(good.name, good.version),
                               dst_path=str(tmp_path / "files"), tracking_uri=url)
    run = client.create_run("0")
    client.log_artifacts(run.info.run_id, files, "model")
    client.set_terminated(run.info.run_id)
    name = f"digests-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    created = client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id,
                                          tags=dict(good.tags))
    assert stack.model_registry.verify(name, str(created.version)) == [], "the copy starts as intact as the original"
    key = f"{run.info.artifact_uri.removeprefix('mlflow-artifacts:').lstrip('/')}/model/model.skops"
    stack.object_store.put(stack.settings.buckets.artifacts, key, TAMPERED)
    return stack.model_registry.get_version(name, str(created.version))


def test_the_registry_names_the_replaced_file(stack, tampered_version):
    [problem] = stack.model_registry.verify(tampered_version.name, tampered_version.version)
    assert "model.skops has sha256" in problem


def test_a_replaced_model_file_is_refused_and_the_rollout_rolls_back(deployer, trained_version, tampered_version):
    good, serving = trained_version
    policy = RolloutPolicy(deadline_s=120.0, poll_s=0.2)
    served = roll_out(deployer, DeploymentSpec("digests", serving.artifact, good, reference_of(good)), policy)
    tampered = DeploymentSpec("digests", serving.artifact, tampered_version, reference_of(tampered_version))
    with pytest.raises(RolloutFailed, match="rolled back") as failed:
        roll_out(deployer, tampered, policy)
    why = re.search(r"keeps failing: .*last exit code 3; log (\S+)\)", str(failed.value))
    assert why, failed.value
    assert "model.skops has sha256" in Path(why[1]).read_text(), "the replica's log names the file"
    status = deployer.status("digests")
    assert status.revision is not None and status.revision.model_version == served.model_version == good.version
    assert status.ready == status.desired >= 1
