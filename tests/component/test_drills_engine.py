"""Drills through Chaos Toolkit's real engine, in this process, on a harness of fakes: verdicts, journals,
rollbacks, the faults the runner reverts, a leaked secret, an invalid file and Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.drills import journal as journal_mod
from harness.drills import library
from harness.drills.runner import DrillInterrupted, run_drill, run_drills
from tests.unit.test_drills_actions import MODEL, make_world

ACTIONS, PROBES = "harness.drills.actions", "harness.drills.probes"


def activity(type_: str, name: str, module: str, func: str, tolerance=None, **arguments) -> dict:
    block: dict = {"type": type_, "name": name, "provider": {"type": "python", "module": module, "func": func}}
    if arguments:
        block["provider"]["arguments"] = arguments
    if tolerance is not None:
        block["tolerance"] = tolerance
    return block


CHAMPION_IS_1 = {"title": "version 1 is the champion",
                 "probes": [activity("probe", "champion-is-1", PROBES, "champion", tolerance="1")]}
INJECT = activity("action", "kill-mlflow", ACTIONS, "inject", kind="process", target="mlflow", action="kill",
                  label="mlflow-killed")
REVERT = activity("action", "revert-faults", ACTIONS, "revert")


def write(folder: Path, name: str, method: list, rollbacks: list | None = None, hypothesis=CHAMPION_IS_1) -> Path:
    experiment = {"title": name, "description": f"the {name} drill", "tags": ["registry"],
                  "runtime": {"rollbacks": {"strategy": "always"}}, "steady-state-hypothesis": hypothesis,
                  "method": method, "rollbacks": rollbacks or []}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False))
    return path


@pytest.fixture
def world(tmp_path):
    return make_world(tmp_path)


def run(world, path: Path):
    return run_drill(world.h, library.read(path))


def test_a_fault_injected_and_reverted_by_the_rollbacks_passes(world, tmp_path):
    world.faults.met["fault-1"] = "pid 4242 was running and got SIGKILL"
    path = write(tmp_path, "kill-mlflow", [INJECT, activity("probe", "it-took", PROBES, "fault_took_effect",
                                                             fault_id="mlflow-killed")], [REVERT])
    record = run(world, path)
    assert (record.verdict, record.status, record.deviated) == ("passed", "completed", False), record.reason
    assert world.faults.active() == [] and list(world.faults.reverted) == ["fault-1"]
    [fault] = record.faults
    assert (fault["took_effect"], fault["reverted_by"], fault["label"]) == (True, "drill", "mlflow-killed")
    journal = journal_mod.load(Path(record.journal))
    assert journal["run"][1]["output"] is True
    assert journal["rollbacks"][0]["output"][0]["took_effect"] is True
    assert journal["lastmile"]["invariants"] == {"champion": [], "runs": [], "processes": [], "secrets": []}
    assert Path(record.journal).parent.parent == world.state_dir / "drills"
    assert any("Action: kill-mlflow" in line for line in journal["lastmile"]["output"])


def test_a_hypothesis_that_fails_after_the_method_is_deviated_even_though_chaos_says_completed(world, tmp_path):
    path = write(tmp_path, "promote-2", [activity("action", "promote-2", ACTIONS, "promote", version="2")],
                 [activity("action", "swap-back", ACTIONS, "rollback_model")])
    record = run(world, path)
    assert (record.status, record.deviated, record.verdict) == ("completed", True, "deviated")
    assert "probe 'champion-is-1' returned \"2\", outside its tolerance \"1\"" in record.reason
    assert world.models.by_alias(MODEL, "champion").version == "1"  # the rollback ran


def test_a_fault_that_met_nothing_is_not_a_pass(world, tmp_path):
    record = run(world, write(tmp_path, "nothing-met", [INJECT], [REVERT]))
    assert record.verdict == "fault-not-applied"
    assert "fault fault-1 (mlflow-killed), process kill on mlflow, met nothing: nothing met it" in record.reason


def test_a_fault_the_drill_left_behind_is_reverted_by_the_runner(world, tmp_path):
    world.faults.met["fault-1"] = "pid 4242 killed"
    record = run(world, write(tmp_path, "no-rollbacks", [INJECT]))
    assert world.faults.active() == []
    assert record.faults[0]["reverted_by"] == "lastmile" and record.verdict == "passed"


def test_a_fault_that_cannot_be_reverted_fails_the_drill(world, tmp_path, monkeypatch):
    def broken(fault_id):
        raise ConnectionError("the fault proxy is gone")

    monkeypatch.setattr(world.faults, "revert", broken)
    record = run(world, write(tmp_path, "stuck", [INJECT]))
    assert record.verdict == "failed"
    assert "may still be active (revert failed: ConnectionError: the fault proxy is gone)" in record.reason


def test_a_secret_in_a_drill_is_an_invariant_violation_and_the_journal_masks_it(world, tmp_path):
    world.faults.met["fault-1"] = "pid 4242 killed"
    leaky = {**INJECT, "provider": {**INJECT["provider"], "arguments": {
        **INJECT["provider"]["arguments"], "params": {"note": "s3cret-registry-password"}}}}
    record = run(world, write(tmp_path, "leaky", [leaky], [REVERT]))
    assert record.verdict == "invariant-violated"
    assert record.invariants["secrets"] == [
        "the drill's Chaos Toolkit journal holds the value of secret:registry-password"]
    assert "s3cret-registry-password" not in Path(record.journal).read_text()


def test_an_invalid_drill_fails_and_the_next_one_still_runs(world, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump({"title": "no description, no method"}))
    fine = write(tmp_path, "fine", [activity("probe", "champion", PROBES, "champion")])
    records = run_drills(world.h, [library.read(broken), library.read(fine)])
    assert [r.verdict for r in records] == ["failed", "passed"]
    assert records[0].reason == "not a valid Chaos Toolkit experiment: experiment requires a description"
    assert Path(records[0].journal).is_file()


def interrupt() -> None:
    """An action that plays the user's Ctrl-C."""
    raise KeyboardInterrupt


def test_ctrl_c_reverts_the_faults_writes_the_journal_as_interrupted_and_stops(world, tmp_path):
    path = write(tmp_path, "interrupted", [INJECT, activity("action", "ctrl-c", __name__, "interrupt")])
    with pytest.raises(DrillInterrupted) as caught:
        run(world, path)
    record = caught.value.record
    assert caught.value.exit_code == 130 and record.verdict == "interrupted"
    assert world.faults.active() == [] and record.faults[0]["reverted_by"] == "lastmile"
    assert json.loads(Path(record.journal).read_text())["status"] == "interrupted"
