"""The run lock across processes: two runs on one state directory take turns, and a dead holder frees it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.infra.locks import RunLock, RunLocked

ROOT = Path(__file__).resolve().parents[2]
BUILD_S = 1.0


def child_run(state_dir: str) -> None:
    """One ``lastmile run --until build`` with in-memory ports whose builds take ``BUILD_S``; prints its record."""
    from adapters.local.bundle_builder import BundleImageBuilder
    from harness.bootstrap import Given, Harness
    from harness.config.settings import load_settings
    from harness.pipeline.runner import Pipeline, RunOptions
    from tests.fakes import MemoryLogSink, MemoryRegistry, MemorySourceTrigger

    class SlowBuilder(BundleImageBuilder):
        def build(self, name, context):
            time.sleep(BUILD_S)
            return super().build(name, context)

    settings = load_settings(ROOT / "lastmile.yaml", "local", environ={"LASTMILE_STATE_DIR": state_dir})
    given = Given(source_trigger=MemorySourceTrigger([("c1", ["training/train.py", "serving/app.py"])]),
                  image_builder=SlowBuilder(MemoryRegistry()), log_sink=MemoryLogSink())
    waited: list[str | None] = []
    pipeline = Pipeline(Harness(settings, given), on_wait=lambda holder: waited.append(holder and holder.run_id))
    record = pipeline.run(RunOptions(until="build"))
    print(json.dumps({"run_id": record.run_id, "status": record.status, "started": record.started,
                      "ended": record.ended, "waited_for": waited}), flush=True)


def child_hold(path: str, run_id: str) -> None:
    """Take the lock, say so, and keep it until killed."""
    lock = RunLock(Path(path))
    lock.acquire(run_id)
    print("held", flush=True)
    time.sleep(600)


def _python(call: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", f"from tests.component.test_run_lock import *; {call}"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_runs_at_once_take_turns(tmp_path):
    children = [_python(f"child_run({str(tmp_path)!r})") for _ in range(2)]
    results = []
    for child in children:
        out, errors = child.communicate(timeout=120)
        assert child.returncode == 0, errors
        results.append(json.loads(out.strip().splitlines()[-1]))
    first, second = sorted(results, key=lambda r: r["started"])
    assert first["status"] == "succeeded"
    assert second["status"] == "nothing-to-do", "the second run saw the first one's result, not the same old state"
    assert second["started"] >= first["ended"], "the runs overlapped"
    assert second["waited_for"] == [first["run_id"]], "the waiting run was told who held the lock"


@pytest.fixture
def holder(tmp_path):
    """A process holding ``tmp_path/run.lock`` for run ``holder-run``, killed at the end if still alive."""
    path = tmp_path / "run.lock"
    child = _python(f"child_hold({str(path)!r}, 'holder-run')")
    try:
        assert child.stdout.readline().strip() == "held", child.stderr.read() if child.poll() is not None else ""
        yield path, child
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=30)


def test_a_run_that_will_not_wait_names_the_holder(holder):
    path, child = holder
    with pytest.raises(RunLocked) as caught:
        RunLock(path).acquire("mine", wait=False)
    assert (caught.value.holder.pid, caught.value.holder.run_id) == (child.pid, "holder-run")
    assert str(caught.value).startswith(f"run holder-run (pid {child.pid}, since ")
    assert "\n" not in caught.value.line() and "--no-wait" in caught.value.line()


def test_a_killed_holder_leaves_no_stale_lock(holder):
    path, child = holder
    child.kill()
    child.wait(timeout=30)
    lock = RunLock(path)
    started = time.monotonic()
    lock.acquire("mine", wait=False)
    try:
        assert lock.holder().run_id == "mine" and lock.holder().pid == os.getpid()
    finally:
        lock.release()
    assert time.monotonic() - started < 1.0


def _lastmile(*args: str, state_dir: Path) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LASTMILE_")}
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, text=True,
                            env={**environ, "LASTMILE_STATE_DIR": str(state_dir), "COLUMNS": "200"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_lastmile_run_no_wait_refuses_in_one_line_naming_the_holder(holder):
    path, child = holder
    cli = _lastmile("run", "--no-wait", state_dir=path.parent)
    _, errors = cli.communicate(timeout=60)
    assert cli.returncode == 1, errors
    assert errors.count("\n") == 1 and "Traceback" not in errors
    assert errors.startswith(f"lastmile: error: run holder-run (pid {child.pid}, since ")
    assert f"holds {path}" in errors


def test_lastmile_run_waits_with_a_message_naming_the_holder(holder):
    path, child = holder
    cli = _lastmile("run", "--json", state_dir=path.parent)
    try:
        line = cli.stderr.readline()
        assert line.startswith(f"lastmile: waiting for run holder-run (pid {child.pid}, since "), line
        assert cli.poll() is None, "it waits"
    finally:
        cli.terminate()
        cli.communicate(timeout=30)
