"""SubprocessJobRunner: real subprocesses running a tiny bundle pulled from an in-memory registry."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psutil
import pytest

from adapters.local.jobs import SubprocessJobRunner
from harness.domain.errors import NotFound
from harness.domain.ports import JobRunner
from harness.domain.records import ArtifactRef, JobSpec, JobState
from harness.infra.bundle import build_bundle
from tests.fakes import MemoryRegistry

TINY_JOB = '''
import json, os, sys, time
mode = sys.argv[1]
if mode == "ok":
    print("working", file=sys.stderr)
    print(json.dumps({"ok": True, "file": __file__, "spec_env": os.environ.get("FROM_SPEC"),
                      "has_runner_secret": "RUNNER_SECRET" in os.environ}))
elif mode == "fail":
    print("boom: something broke", file=sys.stderr)
    sys.exit(1)
elif mode == "sleep":
    with open(sys.argv[2], "w") as f:
        f.write(str(os.getpid()))
    print("sleeping", flush=True)
    time.sleep(120)
'''
SECRET_VALUE = "s3cr3t-value-never-logged"


@pytest.fixture
def registry() -> MemoryRegistry:
    return MemoryRegistry()


@pytest.fixture
def artifact(registry, tmp_path) -> ArtifactRef:
    pkg = tmp_path / "src" / "tinyjob"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "main.py").write_text(TINY_JOB)
    return build_bundle(registry, "tinyjob", pkg, "lastmile/tinyjob", entrypoint="tinyjob.main").artifact


@pytest.fixture
def runner(registry, tmp_path) -> SubprocessJobRunner:
    return SubprocessJobRunner(registry, tmp_path / "state", env={"RUNNER_SECRET": SECRET_VALUE}, grace_s=2)


def spec(artifact: ArtifactRef, *args: str, timeout_s: float = 60, **env: str) -> JobSpec:
    return JobSpec(name="tiny", artifact=artifact, args=args, env=env, timeout_s=timeout_s)


def record(runner: SubprocessJobRunner, run_id: str) -> dict:
    return json.loads((runner.state_dir / "jobs" / run_id / "run.json").read_text())


def gone(pid: int) -> bool:
    """Not running and reaped: not even a zombie is left behind."""
    return not psutil.pid_exists(pid)


def started_pid(pid_file: Path, timeout_s: float = 15) -> int:
    until = time.monotonic() + timeout_s
    while time.monotonic() < until:
        if pid_file.is_file() and pid_file.read_text():
            return int(pid_file.read_text())
        time.sleep(0.05)
    raise AssertionError(f"the job never wrote {pid_file}")


def test_runner_implements_the_port(runner):
    assert isinstance(runner, JobRunner)


def test_success_goes_through_the_states(runner, artifact):
    accepted = runner.submit(spec(artifact, "ok"))
    assert accepted.state is JobState.ACCEPTED
    done = runner.wait(accepted.run_id, timeout_s=30)
    assert (done.state, done.exit_code, done.message) == (JobState.SUCCEEDED, 0, "")
    assert record(runner, done.run_id)["states"] == ["ACCEPTED", "IN_PROGRESS", "SUCCEEDED"]
    assert Path(done.log_path).is_file()


def test_result_is_the_last_json_line(runner, artifact):
    run_id = runner.submit(spec(artifact, "ok")).run_id
    runner.wait(run_id, timeout_s=30)
    assert runner.result(run_id)["ok"] is True
    assert "working" in runner.log_tail(run_id)


def test_job_imports_the_pulled_bundle_not_the_checkout(runner, artifact):
    run_id = runner.submit(spec(artifact, "ok")).run_id
    runner.wait(run_id, timeout_s=30)
    work = runner.state_dir / "jobs" / run_id / "work"
    assert Path(runner.result(run_id)["file"]) == work / "tinyjob" / "main.py"


def test_environment_reaches_the_job_but_no_value_is_written(runner, artifact):
    run_id = runner.submit(spec(artifact, "ok", FROM_SPEC="spec-value")).run_id
    runner.wait(run_id, timeout_s=30)
    result = runner.result(run_id)
    assert (result["spec_env"], result["has_runner_secret"]) == ("spec-value", True)
    written = "".join(p.read_text() for p in (runner.state_dir / "jobs" / run_id).glob("*.*"))
    assert "RUNNER_SECRET" in written  # the name is logged ...
    assert SECRET_VALUE not in written  # ... its value never


def test_failure_reports_exit_code_and_log(runner, artifact):
    run_id = runner.submit(spec(artifact, "fail")).run_id
    done = runner.wait(run_id, timeout_s=30)
    assert (done.state, done.exit_code) == (JobState.FAILED, 1)
    assert "exited with code 1" in done.message
    assert "boom: something broke" in runner.log_tail(run_id, 3)
    assert runner.result(run_id) is None


def test_timeout_kills_the_job(runner, artifact, tmp_path):
    pid_file = tmp_path / "pid"
    run_id = runner.submit(spec(artifact, "sleep", str(pid_file), timeout_s=1.5)).run_id
    job_pid = started_pid(pid_file)
    done = runner.wait(run_id, timeout_s=30)
    assert done.state is JobState.FAILED
    assert done.message == "timed out after 1.5 s"
    assert gone(job_pid) and gone(record(runner, run_id)["pid"])


def test_cancel_stops_the_job(runner, artifact, tmp_path):
    pid_file = tmp_path / "pid"
    run_id = runner.submit(spec(artifact, "sleep", str(pid_file))).run_id
    job_pid = started_pid(pid_file)
    canceled = runner.cancel(run_id)
    assert canceled.state is JobState.CANCELED
    assert record(runner, run_id)["states"][-2:] == ["CANCELING", "CANCELED"]
    assert gone(job_pid)
    assert runner.get(run_id).state is JobState.CANCELED


def test_cancel_of_a_finished_run_changes_nothing(runner, artifact):
    run_id = runner.submit(spec(artifact, "ok")).run_id
    runner.wait(run_id, timeout_s=30)
    assert runner.cancel(run_id).state is JobState.SUCCEEDED


def test_another_runner_sees_the_end_state(runner, registry, artifact):
    """A run finishes correctly even when a different process (here: runner instance) looks at it."""
    run_id = runner.submit(spec(artifact, "fail")).run_id
    other = SubprocessJobRunner(registry, runner.state_dir)
    done = other.wait(run_id, timeout_s=30)
    assert (done.state, done.exit_code) == (JobState.FAILED, 1)


def test_wait_returns_in_progress_when_its_own_timeout_passes(runner, artifact, tmp_path):
    run_id = runner.submit(spec(artifact, "sleep", str(tmp_path / "pid"))).run_id
    assert runner.wait(run_id, timeout_s=0.3).state is JobState.IN_PROGRESS
    runner.cancel(run_id)


def test_missing_bundle_fails_the_run(runner, registry):
    missing = ArtifactRef(registry.registry, "lastmile/tinyjob", "sha256:" + "0" * 64)
    run_id = runner.submit(spec(missing, "ok")).run_id
    done = runner.get(run_id)
    assert done.state is JobState.FAILED
    assert "could not pull bundle" in done.message
    assert "not found" in runner.log_tail(run_id)


def test_runner_time_limit_caps_the_spec(registry, artifact, tmp_path):
    capped = SubprocessJobRunner(registry, tmp_path / "state", max_timeout_s=1, grace_s=2)
    run_id = capped.submit(spec(artifact, "sleep", str(tmp_path / "pid"), timeout_s=600)).run_id
    assert capped.wait(run_id, timeout_s=30).message == "timed out after 1 s"


def test_unknown_run_is_not_found(runner):
    with pytest.raises(NotFound):
        runner.get("jobrun-nope")
