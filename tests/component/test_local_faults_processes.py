"""LocalFaultInjector's process faults on the running job and on replicas (their process groups): real processes."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from adapters.local.faults import LocalFaultInjector
from adapters.local.jobs import SubprocessJobRunner
from harness.bootstrap import Given, build
from harness.config.settings import load_settings
from harness.domain.errors import UserError
from harness.domain.records import DeploymentStatus, FaultSpec, JobSpec, JobState, ReplicaStatus
from harness.infra.bundle import build_bundle
from tests.fakes import MemoryRegistry

ROOT = Path(__file__).resolve().parents[2]
SLEEPER = "import sys, time\nopen(sys.argv[1], 'w').write('started')\ntime.sleep(120)\n"

pytestmark = pytest.mark.timeout(60)


class ReplicaTable:
    """A deployer that only reports the replicas it holds (processes the test started), as the controller does."""

    def __init__(self) -> None:
        self.replicas: list[ReplicaStatus] = []

    def status(self, name: str) -> DeploymentStatus:
        ready = len([r for r in self.replicas if r.state == "ready"])
        return DeploymentStatus(name, None, None, len(self.replicas), ready, tuple(self.replicas))


@pytest.fixture
def table() -> ReplicaTable:
    return ReplicaTable()


@pytest.fixture
def h(tmp_path, table):
    settings = load_settings(ROOT / "lastmile.yaml", "local", {"LASTMILE_STATE_DIR": str(tmp_path / ".lastmile")})
    return build(settings, Given(deployer=table))  # a deployer that only reports status


@pytest.fixture
def injector(h) -> LocalFaultInjector:
    return LocalFaultInjector(h)


@pytest.fixture
def replicas(table):
    """Two replicas, each a process in a session of its own (as the controller starts them); stopped by pid."""
    procs = [subprocess.Popen(["sleep", "60"], start_new_session=True) for _ in range(2)]
    table.replicas = [ReplicaStatus("lastmile-b", 1, "ready", pid=procs[0].pid),
                      ReplicaStatus("lastmile-a", 1, "starting", pid=procs[1].pid)]
    yield procs
    for proc in procs:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait(5)


@pytest.fixture
def running_job(h, tmp_path):
    """A job run by the real job runner, sleeping in its process group under the harness's state dir."""
    registry = MemoryRegistry()
    package = tmp_path / "src" / "sleeper"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "main.py").write_text(SLEEPER)
    artifact = build_bundle(registry, "sleeper", package, "lastmile/sleeper", entrypoint="sleeper.main").artifact
    runner = SubprocessJobRunner(registry, h.settings.state_dir, grace_s=2)
    started = tmp_path / "started"
    run = runner.submit(JobSpec("sleeper", artifact, (str(started),), timeout_s=60))
    until = time.monotonic() + 20
    while not started.exists() and time.monotonic() < until:
        time.sleep(0.05)
    yield runner, run.run_id
    runner.cancel(run.run_id)


def job_processes(runner: SubprocessJobRunner, run_id: str) -> list[psutil.Process]:
    pid = runner._load(run_id)["pid"]
    return [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]


def test_pausing_the_current_job_stops_its_group_and_revert_resumes_it(injector, running_job):
    runner, run_id = running_job
    handle = injector.inject(FaultSpec("process", "job:current", "pause"))
    paused = {p.status() for p in job_processes(runner, run_id)}
    evidence = injector.revert(handle.id)
    resumed = {p.status() for p in job_processes(runner, run_id)}

    assert paused == {psutil.STATUS_STOPPED}
    assert psutil.STATUS_STOPPED not in resumed
    assert evidence.took_effect and f"job {run_id} was running" in evidence.detail
    assert "SIGCONT to job" in evidence.detail


def test_killing_the_current_job_fails_the_run_and_leaves_nothing_to_undo(injector, running_job):
    runner, run_id = running_job
    handle = injector.inject(FaultSpec("process", "job:current", "kill"))
    ended = runner.wait(run_id, 20)
    evidence = injector.revert(handle.id)

    assert ended.state is JobState.FAILED
    assert evidence.took_effect and "nothing to undo: a killed job run stays FAILED" in evidence.detail


def test_without_a_running_job_the_target_is_refused(injector):
    with pytest.raises(UserError, match="job:current: no training job is running"):
        injector.inject(FaultSpec("process", "job:current", "kill"))


def test_a_job_cannot_be_restarted(injector, running_job):
    with pytest.raises(UserError, match="a job run cannot be restarted"):
        injector.inject(FaultSpec("process", "job:current", "restart"))


def test_replica_any_pauses_the_first_ready_replica_and_says_which(injector, replicas):
    handle = injector.inject(FaultSpec("process", "replica:any", "pause"))
    status = psutil.Process(replicas[0].pid).status(), psutil.Process(replicas[1].pid).status()
    evidence = injector.revert(handle.id)

    assert status == (psutil.STATUS_STOPPED, psutil.STATUS_SLEEPING)
    assert "replica lastmile-b" in handle.detail
    assert psutil.Process(replicas[0].pid).status() != psutil.STATUS_STOPPED
    assert evidence.took_effect


def test_killing_a_named_replica_is_left_to_the_controller(injector, replicas):
    handle = injector.inject(FaultSpec("process", "replica:lastmile-a", "kill"))
    code = replicas[1].wait(5)
    evidence = injector.revert(handle.id)
    assert code == -signal.SIGKILL and replicas[0].poll() is None
    assert "nothing to undo: the deployment controller replaces a killed replica" in evidence.detail


def test_resuming_what_was_not_paused_did_not_take_effect(injector, replicas):
    handle = injector.inject(FaultSpec("process", "replica:lastmile-b", "resume"))
    assert not injector.evidence(handle.id).took_effect
    injector.revert(handle.id)


def test_an_unknown_replica_is_refused_naming_the_replicas(injector, replicas):
    with pytest.raises(UserError, match=r"no live replica 'lastmile-c'; replicas: lastmile-b \(ready\), "
                                        r"lastmile-a \(starting\)"):
        injector.inject(FaultSpec("process", "replica:lastmile-c", "kill"))


@pytest.mark.parametrize("target", ["service", "object:lastmile-data/x", "worker"])
def test_what_no_process_fault_can_hit_is_refused(injector, target):
    with pytest.raises(UserError, match=f"a process fault cannot target '{target}'; it takes faults, object_store"):
        injector.inject(FaultSpec("process", target, "kill"))


def test_a_stand_in_that_is_not_up_is_refused(injector):
    with pytest.raises(UserError, match=r"stand-in mlflow is not running \(running: none\)"):
        injector.inject(FaultSpec("process", "mlflow", "pause"))
