"""The ``datascience`` JobRunner (:mod:`adapters.oci.jobs`) on the OCI stand-in's Data Science API: the JobRunner
contract, and what is its own: one job per build digest, the time limit as OCI's, secrets as environment
variables, throttling turned into a CapacityError."""

from __future__ import annotations

import dataclasses

import pytest

from adapters.oci.auth import credentials
from adapters.oci.flavors import OciAuth
from adapters.oci.jobs import DataScienceJobRunner, open_runner
from adapters.oci.standin.datascience import set_drills
from harness.domain.errors import CapacityError
from harness.domain.ports import JobRunner
from harness.domain.records import JobSpec, JobState
from tests.component.oci_datascience_support import COMPARTMENT, GROUP, LOG, PROJECT, SECRET_VALUE, stack
from tests.contracts.job_runner import JobRunnerContract

pytestmark = pytest.mark.timeout(120)
KINDS = {"succeed": "succeed", "fail": "fail", "hang": "hang", "lines": "lines"}


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    yield from stack(tmp_path_factory.mktemp("ds-runner"))


@pytest.fixture(scope="module")
def module_runner(ds) -> DataScienceJobRunner:
    auth = OciAuth(config_file=str(ds.standin.api_key.config_file))
    return open_runner(credentials(auth), ds.standin.url, None, compartment_id=COMPARTMENT, project_id=PROJECT,
                       log_group_id=GROUP, log_id=LOG, env={"SECRET_TOKEN": SECRET_VALUE}, poll_s=0.1,
                       max_poll_s=0.5)


class TestDataScienceJobRunner(JobRunnerContract):
    @pytest.fixture
    def runner(self, module_runner):
        return module_runner

    @pytest.fixture
    def spec(self, ds):
        return lambda kind: JobSpec(name="tiny", artifact=ds.artifact, args=(KINDS[kind],), timeout_s=600)


def test_it_implements_the_port(module_runner):
    assert isinstance(module_runner, JobRunner)


def test_one_job_per_build_digest_is_reused_even_by_another_runner(ds, module_runner):
    first = module_runner.submit(JobSpec(name="tiny", artifact=ds.artifact, args=("succeed",)))
    auth = OciAuth(config_file=str(ds.standin.api_key.config_file))
    other = open_runner(credentials(auth), ds.standin.url, None, compartment_id=COMPARTMENT, project_id=PROJECT,
                        log_group_id=GROUP, log_id=LOG, poll_s=0.1)
    second = other.submit(JobSpec(name="tiny", artifact=ds.artifact, args=("succeed",)))
    jobs = {module_runner._client.get_job_run(r.run_id).data.job_id for r in (first, second)}
    assert len(jobs) == 1
    assert other.wait(second.run_id, 30).state is JobState.SUCCEEDED


def test_the_same_build_at_another_registry_address_gets_a_job_that_pulls_from_there(ds, module_runner):
    """A registry stand-in restarted on another port holds the same digest at another address: the job found by
    digest alone would keep pulling from the old one (a second drill run in one clone once failed so)."""
    first = module_runner.submit(JobSpec(name="tiny", artifact=ds.artifact, args=("succeed",)))
    moved = dataclasses.replace(ds.artifact, registry="127.0.0.1:1")
    second = module_runner.submit(JobSpec(name="tiny", artifact=moved, args=("succeed",)))
    client = module_runner._client
    first_job, second_job = (client.get_job(client.get_job_run(r.run_id).data.job_id).data for r in (first, second))
    assert first_job.id != second_job.id
    assert first_job.job_environment_configuration_details.image == str(ds.artifact)
    assert second_job.job_environment_configuration_details.image == str(moved)
    module_runner.wait(second.run_id, 30)


def test_the_time_limit_is_oci_s_maximum_runtime(ds, module_runner):
    run = module_runner.submit(JobSpec(name="tiny", artifact=ds.artifact, args=("hang",), timeout_s=30))
    done = module_runner.wait(run.run_id, 30)  # 30 s round up to a minute, which lasts a second on this stand-in
    assert (done.state, done.exit_code, done.message) == (JobState.FAILED, None, "Job run timed out")


def test_the_runner_environment_reaches_the_job_and_is_not_echoed(ds, module_runner):
    done = module_runner.wait(module_runner.submit(JobSpec(name="tiny", artifact=ds.artifact, args=("env",))).run_id,
                              30)
    assert done.state is JobState.SUCCEEDED
    assert "secret seen: True" in module_runner.log_tail(done.run_id, 5)
    details = module_runner._client.get_job_run(done.run_id).data.job_configuration_override_details
    assert details.environment_variables["SECRET_TOKEN"] == "<redacted>"


def test_a_failed_run_carries_oci_s_details_and_exit_code(ds, module_runner):
    done = module_runner.wait(module_runner.submit(JobSpec(name="tiny", artifact=ds.artifact, args=("fail",))).run_id,
                              30)
    assert (done.exit_code, done.message) == (3, "Job run artifact execution failed with exit code 3")
    assert done.log_path and LOG in done.log_path


def test_a_throttled_service_ends_in_a_capacity_error(ds, module_runner):
    set_drills(ds.standin.state, throttle=["CreateJobRun"])
    try:
        with pytest.raises(CapacityError, match="429 TooManyRequests"):
            module_runner.submit(JobSpec(name="tiny", artifact=ds.artifact, args=("succeed",)))
    finally:
        set_drills(ds.standin.state)
