"""The JobRunner contract: OCI Data Science job-run states, exit codes, cancel, timeouts and log tails."""

from __future__ import annotations

import pytest

from harness.domain.errors import NotFound
from harness.domain.records import JobState

HELLO = "hello from the job"
GOING_DOWN = "going down"


class JobRunnerContract:
    """Fixtures: ``runner``; ``spec(kind)`` -> a JobSpec whose job, for ``kind``:
    ``succeed`` prints HELLO and exits 0; ``fail`` prints GOING_DOWN and exits 3; ``hang`` runs for a minute;
    ``lines`` prints ``line 1`` .. ``line 30`` and exits 0."""

    def test_a_run_is_accepted_then_succeeds(self, runner, spec):
        accepted = runner.submit(spec("succeed"))
        assert accepted.state is JobState.ACCEPTED
        done = runner.wait(accepted.run_id, 60)
        assert (done.state, done.exit_code) == (JobState.SUCCEEDED, 0)
        assert runner.get(accepted.run_id) == done
        assert HELLO in runner.log_tail(accepted.run_id, 50)

    def test_a_failing_job_ends_failed_with_its_exit_code(self, runner, spec):
        run = runner.wait(runner.submit(spec("fail")).run_id, 60)
        assert (run.state, run.exit_code) == (JobState.FAILED, 3)
        assert "3" in run.message
        assert GOING_DOWN in runner.log_tail(run.run_id, 50)

    def test_wait_with_a_timeout_returns_a_running_job_as_it_is(self, runner, spec):
        run = runner.submit(spec("hang"))
        try:
            # not yet ended: a Data Science run may still be ACCEPTED (its infrastructure being provisioned)
            assert runner.wait(run.run_id, 0.5).state in (JobState.ACCEPTED, JobState.IN_PROGRESS)
        finally:
            runner.cancel(run.run_id)

    def test_cancel_stops_a_running_job(self, runner, spec):
        run = runner.submit(spec("hang"))
        canceled = runner.cancel(run.run_id)
        assert canceled.state is JobState.CANCELED
        assert runner.get(run.run_id).state is JobState.CANCELED

    def test_cancel_of_a_finished_run_changes_nothing(self, runner, spec):
        done = runner.wait(runner.submit(spec("succeed")).run_id, 60)
        assert runner.cancel(done.run_id) == done

    def test_the_log_tail_is_the_last_lines(self, runner, spec):
        run = runner.wait(runner.submit(spec("lines")).run_id, 60)
        tail = runner.log_tail(run.run_id, 3).splitlines()
        assert tail == ["line 28", "line 29", "line 30"]
        assert runner.log_tail(run.run_id, 0) == ""

    @pytest.mark.parametrize("method", ["get", "wait", "cancel", "log_tail"])
    def test_an_unknown_run_is_not_found(self, runner, method):
        with pytest.raises(NotFound):
            getattr(runner, method)("jobrun-doesnotexist")
