"""The oci-local profile: the oci profile pointed at the OCI API stand-in. All seven stages run with object storage,
secrets, logs, the registry, the builds (OCI DevOps build runs of ``build_spec.yaml`` on a clean checkout of the
commit), the training job (a Data Science job run) and the deployment (OKE: the Kubernetes API of the deployer
stand-in's front door, credentials from CreateKubeconfig and a token the stand-in verifies) going through the oci
adapters (signed requests, checked as OCI checks them), MLflow keeping its artifacts in the Object Storage
stand-in."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
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
"""What a build run's checkout needs: the deployables, the build spec and the bundle code it runs."""
CLI_ENV: dict[str, str] = {}
"""The fixture's environment, for the `lastmile` command line on the same stand-ins."""


@pytest.fixture(scope="module")
def oci_local(tmp_path_factory):
    repo = tmp_path_factory.mktemp("oci-local") / "project"
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
               "LASTMILE_STANDINS__DEPLOYER__KUBE_PORT": str(free_port()),
               **{f"LASTMILE_STANDINS__{route}__PORT": str(free_port()) for route in ROUTES}}
    h = build(load_settings(repo / "lastmile.yaml", "oci-local", environ))
    h.supervisor.up(h.standins())
    CLI_ENV.update(environ, LASTMILE_PROFILE="oci-local")
    try:
        yield h
        h.log_sink.flush()  # the run's last events, before the Logging stand-in goes down
    finally:
        h.supervisor.down()
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(repo) in " ".join(p.info["cmdline"] or [])]


@pytest.fixture(scope="module")
def record(oci_local):
    return Pipeline(oci_local).run(RunOptions(force=True))


def test_all_seven_stages_run_through_the_oci_adapters(oci_local, record):
    assert record.status == "succeeded", {n: s.error for n, s in record.stages.items() if s.error}
    ports = record.summary["ports"]
    assert (ports["object_store"], ports["artifact_registry"], ports["secret_store"], ports["log_sink"],
            ports["image_builder"], ports["job_runner"], ports["deployer"]) == \
        ("oci", "ocir", "vault", "oci-logging", "devops", "datascience", "oke")
    oci = oci_local.endpoints()["oci"]
    assert record.summary["endpoints"]["object_store"] == record.summary["endpoints"]["secret_store"] == oci


def test_the_data_and_the_samples_are_in_the_oci_stand_in(oci_local, record):
    dataset = record.summary["dataset"]
    bucket, key = dataset["uri"].removeprefix("s3://").split("/", 1)
    stored = oci_local.object_store.head(bucket, key)
    assert stored is not None and stored.sha256 == dataset["sha256"]
    assert record.stages["observation"].outputs["prediction_samples"] >= 1
    assert oci_local.object_store.list(oci_local.settings.buckets.predictions, "predictions/")


def test_a_devops_build_gives_the_local_builders_digest(oci_local, record):
    context = oci_local.settings.root / "training"
    built = oci_local.image_builder.build("training", context)

    assert built.artifact.digest == plan_bundle("training", context).digest == \
        record.summary["builds"]["training"]["digest"]
    assert built.artifact.repository == oci_local.settings.ports.artifact_registry.repository_prefix + "/training"


def test_mlflow_keeps_its_artifacts_in_the_oci_stand_in_and_no_s3_stand_in_runs(oci_local, record):
    artifacts = oci_local.object_store.list(oci_local.settings.buckets.artifacts)
    assert any(ref.key.endswith("/model.skops") for ref in artifacts), [ref.key for ref in artifacts][:10]
    assert "object_store" not in {standin.name for standin in oci_local.standins()}


def test_the_run_s_events_read_back_from_oci_logging(oci_local, record):
    events = [e.event for e in oci_local.log_sink.events(record.run_id)]
    assert events[0] == "run.started" and events[-1] == "run.finished" and events.count("stage.succeeded") == 7


def test_training_ran_as_a_data_science_job_run_logging_to_oci_logging(oci_local, record):
    training = record.stages["training"].outputs
    assert training["job_run"].startswith("ocid1.datasciencejobrun.") and training["state"] == "SUCCEEDED"
    assert (oci_local.settings.state_dir / "jobs" / training["job_run"] / "run.json").is_file()
    assert oci_local.job_runner.log_tail(training["job_run"], 5).strip()


def test_lastmile_runs_logs_reads_the_build_and_job_runs_logs_from_oci_logging(oci_local, record):
    lastmile = str(Path(sys.executable).with_name("lastmile"))  # not -m: the project holds a partial harness/
    shown = subprocess.run([lastmile, "runs", "logs", record.run_id, "--lines", "200"],
                           cwd=oci_local.settings.root, env={**os.environ, **CLI_ENV, "COLUMNS": "400"},
                           capture_output=True, text=True, timeout=60)
    builds = record.stages["build"].outputs

    assert shown.returncode == 0, shown.stderr
    for name in ("training", "serving"):
        assert builds[name]["build_run"].startswith("ocid1.devopsbuildrun.")
        assert f"build {name} (build run {builds[name]['build_run']})" in shown.stdout
        assert "pushed " in shown.stdout and "build run succeeded" in shown.stdout
    assert f"training (job run {record.stages['training'].outputs['job_run']})" in shown.stdout
    assert "lastmile.files" in shown.stdout  # a line the training job itself logged


def test_the_deployment_went_through_the_kubernetes_api(oci_local, record):
    status = oci_local.deployer.status(oci_local.settings.project)
    assert status.revision is not None and status.ready == status.desired >= 1
    assert all(r.state == "ready" for r in status.replicas if r.revision == status.revision.number)
    assert record.stages["observation"].outputs["prediction_samples"] >= 1


def test_the_stand_in_refuses_what_oci_refuses(oci_local):
    answer = httpx.get(oci_local.endpoints()["oci"] + "/n/", timeout=10)
    assert answer.status_code == 401 and answer.json()["code"] == "NotAuthenticated"
    assert "opc-request-id" in answer.headers


def test_the_stand_ins_credentials_live_in_the_vault_and_the_key_is_private(oci_local):
    client = oci_local.settings.state_dir / "oci" / "client"
    assert (client / "oci_api_key.pem").stat().st_mode & 0o777 == 0o600
    assert (client / "config").stat().st_mode & 0o777 == 0o600
    assert not (oci_local.settings.state_dir / "secrets.json").exists(), "no local secret store on oci-local"
    vault = json.loads((oci_local.settings.state_dir / "oci" / "state" / "secrets.json").read_text())
    assert {"registry-password", "deployer-token", "mlflow-password"} <= {s["name"] for s in vault["secrets"]}
