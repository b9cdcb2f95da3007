"""The OCI stand-in's Data Science jobs and job runs, driven by the real ``oci`` SDK (``DataScienceClient``,
``LogSearchClient``) with its endpoint overridden. Retries are off, so every refusal is seen as sent.

=================  =========================================================  ===========================================
operation          SDK test (this module)                                     CLI test (test_oci_standin_datascience_cli)
=================  =========================================================  ===========================================
CreateJob          test_create_job_is_active_with_env_values_redacted         test_data_science_job_create
GetJob             test_get_job_has_an_etag; test_unknown_ids_are_404         test_data_science_job_get
ListJobs           test_list_jobs_filters_and_pages                           test_data_science_job_list
DeleteJob          test_delete_job_with_runs_needs_delete_related_runs        test_data_science_job_delete
CreateJobRun       test_create_job_run_is_accepted_then_succeeds              test_data_science_job_run_create
GetJobRun          test_create_job_run_is_accepted_then_succeeds              test_data_science_job_run_get
ListJobRuns        test_list_job_runs_by_job                                  test_data_science_job_run_list
CancelJobRun       test_cancel_job_run_stops_the_process;                     test_data_science_job_run_cancel
                   test_cancel_of_an_ended_run_is_409
DeleteJobRun       test_delete_job_run_only_once_ended                        test_data_science_job_run_delete
=================  =========================================================  ===========================================
"""

from __future__ import annotations

import datetime as dt
import json
import time

import oci
import psutil
import pytest
from oci.data_science import DataScienceClient
from oci.data_science import models as m
from oci.loggingsearch import LogSearchClient
from oci.loggingsearch.models import SearchLogsDetails

from adapters.oci.standin.datascience import set_drills
from harness.infra.processes import same_process
from tests.component.oci_datascience_support import (
    COMPARTMENT,
    GOING_DOWN,
    GROUP,
    HELLO,
    LOG,
    PROJECT,
    SECRET_VALUE,
    stack,
)

pytestmark = pytest.mark.timeout(120)
ENDED = ("SUCCEEDED", "FAILED", "CANCELED")


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    yield from stack(tmp_path_factory.mktemp("ds"))


@pytest.fixture(scope="module")
def client(ds) -> DataScienceClient:
    return DataScienceClient(ds.standin.sdk_config(), service_endpoint=ds.standin.url,
                             retry_strategy=oci.retry.NoneRetryStrategy())


@pytest.fixture(autouse=True)
def no_drills(ds):
    yield
    set_drills(ds.standin.state)


def job_details(ds, **config) -> m.CreateJobDetails:
    return m.CreateJobDetails(
        project_id=PROJECT, compartment_id=COMPARTMENT, display_name="tiny",
        job_configuration_details=m.DefaultJobConfigurationDetails(**config),
        job_infrastructure_configuration_details=m.ManagedEgressStandaloneJobInfrastructureConfigurationDetails(
            shape_name="VM.Standard.E4.Flex", block_storage_size_in_gbs=50,
            job_shape_config_details=m.JobShapeConfigDetails(ocpus=1, memory_in_gbs=16)),
        job_environment_configuration_details=m.OcirContainerJobEnvironmentConfigurationDetails(image=ds.image()),
        job_log_configuration_details=m.JobLogConfigurationDetails(enable_logging=True, log_group_id=GROUP,
                                                                   log_id=LOG),
        freeform_tags={"suite": "datascience"})


@pytest.fixture(scope="module")
def job(ds, client) -> m.Job:
    return client.create_job(job_details(ds, environment_variables={"SECRET_TOKEN": SECRET_VALUE})).data


def run(client, job, *args: str, minutes: int | None = None, **env: str) -> m.JobRun:
    override = m.DefaultJobConfigurationDetails(command_line_arguments=" ".join(args),
                                                environment_variables=env or None,
                                                maximum_runtime_in_minutes=minutes)
    return client.create_job_run(m.CreateJobRunDetails(project_id=PROJECT, compartment_id=COMPARTMENT,
                                                       job_id=job.id, job_configuration_override_details=override,
                                                       display_name=f"run-{args[0] if args else 'default'}")).data


def until(client, run_id: str, states=ENDED, timeout_s: float = 30) -> m.JobRun:
    deadline = time.monotonic() + timeout_s
    while True:
        found = client.get_job_run(run_id).data
        if found.lifecycle_state in states or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def run_record(ds, run_id: str) -> dict:
    return json.loads((ds.jobs_dir / "jobs" / run_id / "run.json").read_text())


def job_pid(ds, run_id: str, timeout_s: float = 15) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            return run_record(ds, run_id)["pid"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
    raise AssertionError(f"job run {run_id} never started a process")


def refusal(call) -> oci.exceptions.ServiceError:
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        call()
    return caught.value


# --- the operations ---------------------------------------------------------------------------------------------

def test_create_job_is_active_with_env_values_redacted(job):
    assert (job.lifecycle_state, job.project_id, job.compartment_id) == ("ACTIVE", PROJECT, COMPARTMENT)
    assert job.id.startswith("ocid1.datasciencejob.oc1.")
    assert job.job_environment_configuration_details.job_environment_type == "OCIR_CONTAINER"
    assert job.job_infrastructure_configuration_details.job_infrastructure_type == "ME_STANDALONE"
    assert job.job_configuration_details.environment_variables == {"SECRET_TOKEN": "<redacted>"}


def test_get_job_has_an_etag(client, job):
    got = client.get_job(job.id)
    assert got.data.id == job.id and got.headers["etag"] and got.headers["opc-request-id"]


def test_list_jobs_filters_and_pages(ds, client, job):
    client.create_job(job_details(ds))
    listed = client.list_jobs(COMPARTMENT, project_id=PROJECT, limit=1)
    everything = oci.pagination.list_call_get_all_results(client.list_jobs, COMPARTMENT, project_id=PROJECT).data
    assert len(listed.data) == 1 and listed.next_page
    assert job.id in {j.id for j in everything} and all(isinstance(j, m.JobSummary) for j in everything)
    assert client.list_jobs(COMPARTMENT, project_id="ocid1.datascienceproject.oc1..other").data == []


def test_create_job_run_is_accepted_then_succeeds(ds, client, job):
    accepted = run(client, job, "succeed")
    done = until(client, accepted.id)
    assert (accepted.lifecycle_state, accepted.lifecycle_details) == ("ACCEPTED", "Job run accepted")
    assert (done.lifecycle_state, done.lifecycle_details) == ("SUCCEEDED", "Job run artifact execution succeeded")
    assert done.time_accepted <= done.time_started <= done.time_finished
    assert (done.log_details.log_id, done.log_details.log_group_id) == (LOG, GROUP)
    assert run_record(ds, done.id)["states"] == ["ACCEPTED", "IN_PROGRESS", "SUCCEEDED"]


def test_list_job_runs_by_job(client, job):
    first = run(client, job, "succeed")
    runs = client.list_job_runs(COMPARTMENT, job_id=job.id).data
    until(client, first.id)
    succeeded = client.list_job_runs(COMPARTMENT, job_id=job.id, lifecycle_state="SUCCEEDED").data
    assert first.id in {r.id for r in runs} and all(r.job_id == job.id for r in runs)
    assert first.id in {r.id for r in succeeded} and {r.lifecycle_state for r in succeeded} == {"SUCCEEDED"}


def test_cancel_job_run_stops_the_process(ds, client, job):
    accepted = run(client, job, "hang")
    pid = job_pid(ds, accepted.id)
    client.cancel_job_run(accepted.id)
    assert client.get_job_run(accepted.id).data.lifecycle_state in ("CANCELING", "CANCELED")
    done = until(client, accepted.id)
    assert (done.lifecycle_state, done.lifecycle_details) == ("CANCELED", "Job run canceled")
    assert not psutil.pid_exists(pid)


def test_cancel_of_an_ended_run_is_409(client, job):
    done = until(client, run(client, job, "succeed").id)
    error = refusal(lambda: client.cancel_job_run(done.id))
    assert (error.status, error.code) == (409, "IncorrectState")


def test_cancel_with_a_stale_etag_is_412(client, job):
    accepted = run(client, job, "hang")
    try:
        error = refusal(lambda: client.cancel_job_run(accepted.id, if_match="stale"))
        assert (error.status, error.code) == (412, "PreconditionFailed")
    finally:
        client.cancel_job_run(accepted.id, if_match=client.get_job_run(accepted.id).headers["etag"])
        until(client, accepted.id)


def test_delete_job_run_only_once_ended(client, job):
    accepted = run(client, job, "hang")
    assert refusal(lambda: client.delete_job_run(accepted.id)).status == 409
    client.cancel_job_run(accepted.id)
    until(client, accepted.id)
    client.delete_job_run(accepted.id)
    assert client.get_job_run(accepted.id).data.lifecycle_state == "DELETED"


def test_delete_job_with_runs_needs_delete_related_runs(ds, client):
    doomed = client.create_job(job_details(ds)).data
    until(client, run(client, doomed, "succeed").id)
    assert refusal(lambda: client.delete_job(doomed.id)).code == "IncorrectState"
    client.delete_job(doomed.id, delete_related_job_runs=True)
    assert client.get_job(doomed.id).data.lifecycle_state == "DELETED"
    assert refusal(lambda: run(client, doomed, "succeed")).status == 409


# --- refusals ---------------------------------------------------------------------------------------------------

def test_an_unsigned_request_is_401(ds, job):
    import httpx

    answer = httpx.get(f"{ds.standin.url}/20190101/jobs/{job.id}")
    assert (answer.status_code, answer.json()["code"]) == (401, "NotAuthenticated")


@pytest.mark.parametrize("call", ["get_job", "get_job_run", "cancel_job_run", "delete_job_run", "delete_job"])
def test_unknown_ids_are_404(client, call):
    error = refusal(lambda: getattr(client, call)("ocid1.datasciencejob.oc1..doesnotexist"))
    assert (error.status, error.code) == (404, "NotAuthorizedOrNotFound")


def test_an_image_without_a_digest_is_400(ds, client):
    details = job_details(ds)
    details.job_environment_configuration_details.image = ds.image().partition("@")[0] + ":latest"
    error = refusal(lambda: client.create_job(details))
    assert (error.status, error.code) == (400, "InvalidParameter") and "digest" in error.message


def test_a_run_of_an_unknown_job_is_404(client):
    error = refusal(lambda: run(client, m.Job(id="ocid1.datasciencejob.oc1..nope"), "succeed"))
    assert error.status == 404


# --- what runs --------------------------------------------------------------------------------------------------

def test_a_failing_job_fails_with_its_exit_code_in_the_details(client, job):
    done = until(client, run(client, job, "fail").id)
    assert (done.lifecycle_state, done.lifecycle_details) == (
        "FAILED", "Job run artifact execution failed with exit code 3")


def test_a_run_past_its_maximum_runtime_times_out(ds, client, job):
    accepted = run(client, job, "hang", minutes=1)  # the stand-in's minute lasts a second here
    pid = job_pid(ds, accepted.id)
    done = until(client, accepted.id)
    assert (done.lifecycle_state, done.lifecycle_details) == ("FAILED", "Job run timed out")
    assert not psutil.pid_exists(pid)


def test_the_output_is_in_the_run_log_through_logging_search(ds, client, job):
    done = until(client, run(client, job, "fail").id)
    search = LogSearchClient(ds.standin.sdk_config(), service_endpoint=ds.standin.url)
    now = dt.datetime.now(dt.UTC)
    found = search.search_logs(SearchLogsDetails(
        time_start=now - dt.timedelta(minutes=5), time_end=now + dt.timedelta(minutes=1),
        search_query=f"search \"{COMPARTMENT}/{GROUP}/{LOG}\" | where source = '{done.id}' | sort by datetime asc"))
    messages = [r.data["logContent"]["data"]["message"] for r in found.data.results]
    assert GOING_DOWN in messages and HELLO not in messages


def test_a_running_job_is_where_job_current_faults_look(ds, client, job):
    accepted = run(client, job, "hang")
    try:
        job_pid(ds, accepted.id)
        until(client, accepted.id, ("IN_PROGRESS",))
        record = run_record(ds, accepted.id)
        # what adapters.local.faults.targets.current_job reads to find the job to kill or pause
        assert record["state"] == "IN_PROGRESS" and record["started_at"]
        assert same_process(record["pid"], record["created"], tolerance=1.0)
    finally:
        client.cancel_job_run(accepted.id)
        until(client, accepted.id)


def test_env_values_reach_the_job_but_no_file_or_answer(ds, client, job):
    accepted = run(client, job, "env", EXTRA="also-secret-value")
    done = until(client, accepted.id)
    log = (ds.jobs_dir / "jobs" / done.id / "job.log").read_text()
    assert done.lifecycle_state == "SUCCEEDED" and f"secret seen: True run: {done.id}" in log
    assert done.job_configuration_override_details.environment_variables == {"EXTRA": "<redacted>"}
    for folder in (ds.standin.state, ds.jobs_dir):
        for path in folder.rglob("*"):
            if path.is_file() and path.name != "secrets.json":  # the vault's file holds the registry password
                text = path.read_text(errors="replace")
                assert SECRET_VALUE not in text and "also-secret-value" not in text, path


# --- drills -----------------------------------------------------------------------------------------------------

def test_drill_fail_makes_runs_fail_with_the_exit_code(ds, client, job):
    set_drills(ds.standin.state, fail_exit_code=7)
    done = until(client, run(client, job, "succeed").id)
    assert (done.lifecycle_state, done.lifecycle_details) == (
        "FAILED", "Job run artifact execution failed with exit code 7")


def test_drill_hang_keeps_a_run_in_progress_until_its_time_limit(ds, client, job):
    set_drills(ds.standin.state, hang=True)
    accepted = run(client, job, "succeed", minutes=1)
    assert until(client, accepted.id, ("IN_PROGRESS",)).lifecycle_state == "IN_PROGRESS"
    assert until(client, accepted.id).lifecycle_details == "Job run timed out"


@pytest.mark.parametrize("operation", ["CreateJobRun", "GetJobRun"])
def test_drill_throttle_answers_429(ds, client, job, operation):
    done = until(client, run(client, job, "succeed").id)
    set_drills(ds.standin.state, throttle=[operation])
    call = (lambda: run(client, job, "succeed")) if operation == "CreateJobRun" else \
        (lambda: client.get_job_run(done.id))
    error = refusal(call)
    assert (error.status, error.code) == (429, "TooManyRequests")
    assert client.get_job(job.id).status == 200  # the other operations answer


# --- a restart of the stand-in ----------------------------------------------------------------------------------

def test_a_restarted_stand_in_follows_the_runs_it_left_running(ds, client, job):
    accepted = run(client, job, "hang")
    pid = job_pid(ds, accepted.id)
    until(client, accepted.id, ("IN_PROGRESS",))
    ds.standin.stop()
    ds.standin.start()
    assert client.get_job_run(accepted.id).data.lifecycle_state == "IN_PROGRESS" and psutil.pid_exists(pid)
    client.cancel_job_run(accepted.id)
    assert until(client, accepted.id).lifecycle_state == "CANCELED" and not alive(pid)


def alive(pid: int) -> bool:
    """Running: a zombie no longer runs (a process whose first stand-in died is reaped by init, when it does)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
