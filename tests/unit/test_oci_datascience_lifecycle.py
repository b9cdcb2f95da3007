"""The Data Science stand-in's lifecycle details for a run of the process runner, as OCI words them."""

from __future__ import annotations

from adapters.oci.standin.datascience_runs import lifecycle
from harness.domain.diagnosis import TIMEOUT_CAPACITY, diagnose_job
from harness.domain.records import JobRun, JobState


def test_a_run_ended_by_a_signal_reports_a_containers_exit_code_and_the_signal():
    killed = JobRun("ocid1.datasciencejobrun.oc1..x", "train", JobState.FAILED, exit_code=-9)

    state, details = lifecycle(killed)

    assert (state, details) == ("FAILED", "Job run artifact execution failed with exit code 137 (ended by signal 9)")
    diagnosis = diagnose_job(JobRun(killed.run_id, "train", JobState.FAILED, 137, message=details), "")
    assert diagnosis.cause == TIMEOUT_CAPACITY and "signal 9" in diagnosis.evidence


def test_a_run_that_exits_non_zero_reports_its_exit_code():
    assert lifecycle(JobRun("r", "train", JobState.FAILED, exit_code=3)) == \
        ("FAILED", "Job run artifact execution failed with exit code 3")
