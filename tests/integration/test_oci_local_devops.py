"""The oci-local profile with stage 2 on the ``devops`` ImageBuilder (switched on by environment overrides): the
OCI API stand-in runs ``build_spec.yaml`` on a clean checkout of the project's commit, the build pushes to the
registry stand-in through OCIR's login with the auth token from the stand-in's Vault, and the pipeline runs on."""

from __future__ import annotations

import shutil

import pytest

from harness.bootstrap import build
from harness.config.settings import load_settings
from harness.infra.bundle import plan_bundle
from harness.infra.processes import free_port
from harness.pipeline.runner import Pipeline, RunOptions
from tests.integration.conftest import ROOT
from tests.support import git

pytestmark = pytest.mark.integration
ROUTES = ("FAULTS", "OBJECT_STORE", "REGISTRY", "MLFLOW", "DEPLOYER", "OCI")
BUNDLE_CODE = ("harness/__init__.py", "harness/domain", "harness/infra/__init__.py", "harness/infra/bundle.py",
               "adapters/__init__.py", "adapters/shared", "build_spec.yaml", "training", "serving", "lastmile.yaml")
DEVOPS = {"FLAVOR": "devops", "BUILD_PIPELINE_ID": "ocid1.devopsbuildpipeline.oc1..lastmile",
          "PROJECT_ID": "ocid1.devopsproject.oc1..lastmile", "COMPARTMENT_ID": "ocid1.compartment.oc1..lastmile",
          "LOG_ID": "ocid1.log.oc1..lastmile", "LOG_GROUP_ID": "ocid1.loggroup.oc1..lastmile",
          "REPOSITORY_URL": "https://github.com/example/lastmile.git", "ENDPOINT": "standin",
          "AUTH__CONFIG_FILE": '"{state_dir}/oci/client/config"', "TIMEOUT_S": "300"}


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    repo = tmp_path_factory.mktemp("oci-local-devops") / "project"
    for item in BUNDLE_CODE:
        source, dest = ROOT / item, repo / item
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(source, dest)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "initial")
    environ = {"LASTMILE_STATE_DIR": str(repo / ".lastmile"),
               "LASTMILE_STANDINS__DEPLOYER__SERVICE_PORT": str(free_port()),
               **{f"LASTMILE_STANDINS__{route}__PORT": str(free_port()) for route in ROUTES},
               **{f"LASTMILE_PORTS__IMAGE_BUILDER__{key}": value for key, value in DEVOPS.items()}}
    h = build(load_settings(repo / "lastmile.yaml", "oci-local", environ))
    h.supervisor.up(h.standins())
    try:
        yield h
    finally:
        h.supervisor.down()


def test_a_devops_build_gives_the_local_builders_digest(harness):
    context = harness.settings.root / "training"
    built = harness.image_builder.build("training", context)

    assert built.artifact.digest == plan_bundle("training", context).digest
    assert built.artifact.repository == harness.settings.ports.artifact_registry.repository_prefix + "/training"


def test_the_pipeline_runs_with_stage_two_on_devops(harness):
    record = Pipeline(harness).run(RunOptions(force=True))

    assert record.status == "succeeded", {n: s.error for n, s in record.stages.items() if s.error}
    assert record.summary["ports"]["image_builder"] == "devops"
