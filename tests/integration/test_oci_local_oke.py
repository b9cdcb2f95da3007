"""The oci-local profile with the ``oke`` deployer: all seven stages, the deployment through the Kubernetes API of
the deployer stand-in's front door, with the kubeconfig from the OCI API stand-in's CreateKubeconfig and a token
from the SDK's signer that the stand-in verifies. The profile in lastmile.yaml is changed here, in the test's copy
only, until the lead switches oci-local itself."""

from __future__ import annotations

import shutil

import psutil
import pytest
import yaml

from harness.bootstrap import build
from harness.config.settings import load_settings
from harness.infra.processes import free_port
from harness.pipeline.runner import Pipeline, RunOptions
from tests.integration.conftest import ROOT
from tests.support import git

pytestmark = pytest.mark.integration
ROUTES = ("FAULTS", "OBJECT_STORE", "REGISTRY", "MLFLOW", "DEPLOYER", "OCI")
CLUSTER = "ocid1.cluster.oc1.eu-frankfurt-1.aaaaaaaalastmile"
OKE = {"flavor": "oke", "cluster_id": CLUSTER, "region": "eu-frankfurt-1", "endpoint": "standin",
       "auth": {"method": "api_key", "config_file": "{state_dir}/oci/client/config"}, "ready_deadline_s": 180}


@pytest.fixture(scope="module")
def oci_local_oke(tmp_path_factory):
    repo = tmp_path_factory.mktemp("oci-local-oke") / "project"
    repo.mkdir()
    for folder in ("training", "serving"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    config = yaml.safe_load((ROOT / "lastmile.yaml").read_text())
    config["profiles"]["oci-local"]["ports"]["deployer"] = OKE
    (repo / "lastmile.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "initial")
    environ = {"LASTMILE_STATE_DIR": str(repo / ".lastmile"),
               "LASTMILE_STANDINS__DEPLOYER__SERVICE_PORT": str(free_port()),
               "LASTMILE_STANDINS__DEPLOYER__KUBE_PORT": str(free_port()),
               **{f"LASTMILE_STANDINS__{route}__PORT": str(free_port()) for route in ROUTES}}
    h = build(load_settings(repo / "lastmile.yaml", "oci-local", environ))
    h.supervisor.up(h.standins())
    try:
        yield h
        h.log_sink.flush()  # the run's last events, before the Logging stand-in goes down
    finally:
        h.supervisor.down()
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(repo) in " ".join(p.info["cmdline"] or [])]


@pytest.fixture(scope="module")
def record(oci_local_oke):
    return Pipeline(oci_local_oke).run(RunOptions(force=True))


def test_all_seven_stages_run_with_the_oke_deployer(oci_local_oke, record):
    assert record.status == "succeeded", {n: s.error for n, s in record.stages.items() if s.error}
    assert record.summary["ports"]["deployer"] == "oke"
    assert record.stages["observation"].outputs["prediction_samples"] >= 1


def test_the_deployment_went_through_the_kubernetes_api(oci_local_oke, record):
    status = oci_local_oke.deployer.status(oci_local_oke.settings.project)
    assert status.revision is not None and status.ready == status.desired >= 1
    assert all(r.state == "ready" for r in status.replicas if r.revision == status.revision.number)
