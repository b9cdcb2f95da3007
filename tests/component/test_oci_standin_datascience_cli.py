"""The OCI stand-in's Data Science job operations driven by the real ``oci`` CLI (``oci data-science job ...`` and
``job-run ...``, ``--endpoint`` the stand-in), one test per operation (the table is in
:mod:`tests.component.test_oci_standin_datascience`). Skipped only when PyPI cannot be reached to install the CLI."""

from __future__ import annotations

import json
import time

import pytest

from adapters.oci.standin.testing import CliUnavailable, ensure_oci_cli, oci_cli
from tests.component.oci_datascience_support import COMPARTMENT, GROUP, LOG, PROJECT, stack

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    try:
        ensure_oci_cli()
    except CliUnavailable as exc:
        pytest.skip(f"the oci CLI cannot be installed: {exc}")
    yield from stack(tmp_path_factory.mktemp("ds-cli"))


def ok(ds, *args: str):
    result = oci_cli(ds.standin, "data-science", *args)
    assert result.code == 0, result.stderr[-2000:]
    return result.json() if result.stdout.strip() else None


def refused(ds, *args: str) -> dict:
    result = oci_cli(ds.standin, "data-science", *args)
    assert result.code != 0, result.stdout
    return result.service_error()


def create_job(ds) -> dict:
    return ok(ds, "job", "create", "--compartment-id", COMPARTMENT, "--project-id", PROJECT,
              "--display-name", "cli-job",
              "--configuration-details", json.dumps({"jobType": "DEFAULT", "maximumRuntimeInMinutes": 5}),
              "--infrastructure-configuration-details", json.dumps({
                  "jobInfrastructureType": "ME_STANDALONE", "shapeName": "VM.Standard.E4.Flex",
                  "blockStorageSizeInGBs": 50, "jobShapeConfigDetails": {"ocpus": 1, "memoryInGBs": 16}}),
              "--job-environment-configuration-details", json.dumps({
                  "jobEnvironmentType": "OCIR_CONTAINER", "image": ds.image()}),
              "--log-configuration-details", json.dumps({"enableLogging": True, "logGroupId": GROUP,
                                                          "logId": LOG}))["data"]


@pytest.fixture(scope="module")
def job(ds) -> dict:
    return create_job(ds)


def start(ds, job: dict, *args: str) -> dict:
    return ok(ds, "job-run", "create", "--compartment-id", COMPARTMENT, "--project-id", PROJECT,
              "--job-id", job["id"], "--configuration-override-details",
              json.dumps({"jobType": "DEFAULT", "commandLineArguments": " ".join(args)}))["data"]


def ended(ds, run_id: str, timeout_s: float = 30) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        run = ok(ds, "job-run", "get", "--job-run-id", run_id)["data"]
        if run["lifecycle-state"] in ("SUCCEEDED", "FAILED", "CANCELED") or time.monotonic() > deadline:
            return run
        time.sleep(0.2)


def test_data_science_job_create(job):
    assert (job["lifecycle-state"], job["display-name"]) == ("ACTIVE", "cli-job")
    assert job["job-environment-configuration-details"]["job-environment-type"] == "OCIR_CONTAINER"


def test_data_science_job_get(ds, job):
    got = ok(ds, "job", "get", "--job-id", job["id"])
    assert got["data"]["id"] == job["id"] and got["etag"]
    assert refused(ds, "job", "get", "--job-id", "ocid1.datasciencejob.oc1..nope")["status"] == 404


def test_data_science_job_list(ds, job):
    listed = ok(ds, "job", "list", "--compartment-id", COMPARTMENT, "--project-id", PROJECT, "--all")["data"]
    assert job["id"] in {j["id"] for j in listed}


def test_data_science_job_delete(ds):
    doomed = create_job(ds)
    ok(ds, "job", "delete", "--job-id", doomed["id"], "--force")
    assert ok(ds, "job", "get", "--job-id", doomed["id"])["data"]["lifecycle-state"] == "DELETED"


def test_data_science_job_run_create(ds, job):
    created = ok(ds, "job-run", "create", "--compartment-id", COMPARTMENT, "--project-id", PROJECT,
                 "--job-id", job["id"], "--configuration-override-details",
                 json.dumps({"jobType": "DEFAULT", "commandLineArguments": "fail"}),
                 "--wait-for-state", "FAILED", "--wait-for-state", "SUCCEEDED", "--wait-interval-seconds", "1",
                 "--max-wait-seconds", "60")["data"]
    assert (created["lifecycle-state"], created["lifecycle-details"]) == (
        "FAILED", "Job run artifact execution failed with exit code 3")


def test_data_science_job_run_get(ds, job):
    run = ended(ds, start(ds, job, "succeed")["id"])
    assert (run["lifecycle-state"], run["log-details"]["log-id"]) == ("SUCCEEDED", LOG)
    assert run["time-started"] and run["time-finished"]


def test_data_science_job_run_list(ds, job):
    run = start(ds, job, "succeed")
    listed = ok(ds, "job-run", "list", "--compartment-id", COMPARTMENT, "--job-id", job["id"], "--all")["data"]
    assert run["id"] in {r["id"] for r in listed}
    ended(ds, run["id"])


def test_data_science_job_run_cancel(ds, job):
    run = start(ds, job, "hang")
    ok(ds, "job-run", "cancel", "--job-run-id", run["id"])
    canceled = ended(ds, run["id"])
    assert (canceled["lifecycle-state"], canceled["lifecycle-details"]) == ("CANCELED", "Job run canceled")
    error = refused(ds, "job-run", "cancel", "--job-run-id", run["id"])
    assert (error["status"], error["code"]) == (409, "IncorrectState")


def test_data_science_job_run_delete(ds, job):
    run = ended(ds, start(ds, job, "succeed")["id"])
    ok(ds, "job-run", "delete", "--job-run-id", run["id"], "--force")
    assert ok(ds, "job-run", "get", "--job-run-id", run["id"])["data"]["lifecycle-state"] == "DELETED"
