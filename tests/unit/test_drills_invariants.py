"""The invariants checked after every drill: each one catches its violation and passes a clean state."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.domain.records import ArtifactRef, DeploymentSpec, Reference
from harness.drills import invariants, leaks
from harness.drills.invariants import Proc, champion_serves, no_orphans, runs_finished
from harness.pipeline.delivery import ObservationFailed
from tests.unit.test_drills_actions import MODEL, make_world

SERVING = ArtifactRef("memory.invalid", "lastmile/serving", "sha256:" + "0" * 64)


@pytest.fixture
def world(tmp_path):
    return make_world(tmp_path)


class Answers:
    """Stands in for the stable endpoint: answers as recorded unless ``wrong``; records what it was asked."""

    def __init__(self, wrong: bool = False):
        self.wrong = wrong
        self.asked: list[tuple] = []

    def __call__(self, endpoint, reference: Reference, version: str) -> None:
        self.asked.append((endpoint, version, reference.predictions))
        if self.wrong:
            raise ObservationFailed(f"{endpoint} predicted [1] where model version {version} recorded [0]")


def deploy(world, version: str) -> None:
    model = world.models.get_version(MODEL, version)
    world.deployer.deploy(DeploymentSpec("lastmile", SERVING, model, Reference(({"x": 1.0},), (0,))))


def serves(world, answers, required=False):
    return champion_serves(world.models, MODEL, world.deployer, "lastmile", check_answers=answers, required=required)


# champion -------------------------------------------------------------------------------------------
def test_a_deployed_champion_that_answers_as_recorded_holds(world):
    deploy(world, "1")
    answers = Answers()
    assert serves(world, answers) == []
    assert answers.asked == [("http://memory.invalid/lastmile", "1", (0,))]


def test_a_deployed_champion_that_answers_otherwise_is_a_violation(world):
    deploy(world, "1")
    [violation] = serves(world, Answers(wrong=True))
    assert "@champion of lastmile-classifier (version 1) is deployed as revision 1" in violation
    assert "predicted [1]" in violation


def test_an_alias_pointing_at_a_missing_version_is_a_violation(world):
    world.models.aliases[MODEL]["previous"] = "9"
    [violation] = serves(world, Answers())
    assert violation.startswith("@previous of lastmile-classifier points at a version the registry does not have")


def test_a_champion_lost_during_the_drill_is_a_violation_only_when_it_was_set_before(world):
    world.models.delete_alias(MODEL, "champion")
    assert serves(world, Answers()) == []
    assert serves(world, Answers(), required=True) == [
        "@champion of lastmile-classifier points nowhere, though it was set before the drill"]


def test_the_endpoint_is_asked_only_when_the_deployment_serves_that_version(world):
    deploy(world, "2")
    answers = Answers(wrong=True)
    assert serves(world, answers) == []
    assert answers.asked == []


def test_a_deployed_previous_is_checked_too(world):
    world.models.set_alias(MODEL, "previous", "2")
    deploy(world, "2")
    [violation] = serves(world, Answers(wrong=True))
    assert violation.startswith("@previous of lastmile-classifier (version 2)")


# runs -----------------------------------------------------------------------------------------------
def write_run(runs: Path, run_id: str, status: str, stage_status: str = "succeeded") -> Path:
    path = runs / run_id / "journal.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"run_id": run_id, "status": status, "stages": {"training": {"status": stage_status}}}))
    return path


def test_finished_runs_hold(tmp_path):
    runs = tmp_path / ".lastmile" / "runs"
    write_run(runs, "r1", "succeeded")
    write_run(runs, "r2", "failed", "failed")
    assert runs_finished(runs) == []


def test_a_run_left_running_is_a_violation_naming_its_journal(tmp_path):
    runs = tmp_path / ".lastmile" / "runs"
    write_run(runs, "r1", "succeeded")
    write_run(runs, "r2", "running", "running")
    assert runs_finished(runs) == [".lastmile/runs/r2/journal.json: run r2 is left running (stage training)"]


def test_a_half_written_or_unreadable_journal_is_a_violation(tmp_path):
    runs = tmp_path / ".lastmile" / "runs"
    write_run(runs, "r1", "succeeded").with_suffix(".tmp").write_text("{")
    (runs / "r2").mkdir()
    (runs / "r2" / "journal.json").write_text('{"status": "runn')
    assert runs_finished(runs) == [".lastmile/runs/r1/journal.tmp: a half-written run journal",
                                   ".lastmile/runs/r2/journal.json: unreadable (JSONDecodeError)"]


# processes ------------------------------------------------------------------------------------------
def test_a_process_in_the_state_dir_outside_every_family_is_an_orphan(tmp_path):
    state = tmp_path / ".lastmile"
    processes = [Proc(101, str(state / "mlflow"), "mlflow server"), Proc(102, str(state / "jobs" / "j1"), "python train.py"),
                 Proc(103, str(tmp_path / "elsewhere"), "bash")]
    assert no_orphans(state, processes, families={101}) == [
        "pid 102 (python train.py) works in .lastmile/jobs/j1 but belongs to no stand-in"]


def test_processes_of_live_families_are_not_orphans(tmp_path):
    state = tmp_path / ".lastmile"
    assert no_orphans(state, [Proc(101, str(state / "mlflow"))], families={101}) == []


def test_this_process_is_never_listed_even_when_it_works_in_the_state_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert os.getpid() not in [p.pid for p in invariants.processes_under(tmp_path)]


# secrets --------------------------------------------------------------------------------------------
VALUES = {"secret:mlflow-password": "correct-horse-battery", "secret:short": "abc"}


def test_a_secret_value_in_a_file_is_a_violation_naming_the_file_and_the_reference(tmp_path):
    state = tmp_path / ".lastmile"
    (state / "logs").mkdir(parents=True)
    (state / "logs" / "mlflow.log").write_bytes(b"auth ok for lastmile:correct-horse-battery\n")
    (state / "logs" / "clean.log").write_text("nothing to see, abc\n")
    [violation] = leaks.find_leaks(VALUES, state)
    assert violation == ".lastmile/logs/mlflow.log holds the value of secret:mlflow-password"
    assert "correct-horse-battery" not in violation


def test_the_secret_store_itself_and_short_values_are_not_violations(tmp_path):
    state = tmp_path / ".lastmile"
    state.mkdir()
    (state / "secrets.json").write_text(json.dumps({"mlflow-password": "correct-horse-battery"}))
    assert leaks.find_leaks(VALUES, state, skip=[state / "secrets.json"]) == []


def test_a_secret_in_the_drills_output_is_a_violation(tmp_path):
    texts = {"the drill's output": "ERROR login failed with correct-horse-battery"}
    assert leaks.find_leaks(VALUES, tmp_path, texts=texts) == [
        "the drill's output holds the value of secret:mlflow-password"]


def test_files_over_the_limit_and_fifos_are_not_read(tmp_path, monkeypatch):
    monkeypatch.setattr(leaks, "MAX_BYTES", 16)
    (tmp_path / "big.bin").write_bytes(b"x" * 32 + b"correct-horse-battery")
    os.mkfifo(tmp_path / "pipe")  # reading it would block forever
    assert leaks.find_leaks(VALUES, tmp_path) == []


def test_secret_values_come_from_the_port_and_from_the_store_file(world):
    store = world.state_dir / "secrets.json"
    store.parent.mkdir(parents=True)
    store.write_text(json.dumps({"deployer-token": "generated-token-value"}))
    values = leaks.secret_values(world.h)
    assert values["secret:registry-password"] == "s3cret-registry-password"  # a config reference, via the port
    assert values["secret:deployer-token"] == "generated-token-value"  # generated by a stand-in, in the file


def test_redact_masks_every_value_in_nested_json():
    data = {"run": [{"output": "token=correct-horse-battery", "n": 3}], "correct-horse-battery": True}
    assert leaks.redact(data, VALUES.values()) == {"run": [{"output": "token=******", "n": 3}], "******": True}


# all together ---------------------------------------------------------------------------------------
def test_a_clean_world_violates_nothing(world):
    found = invariants.check(world.h, output={"the drill's output": "all good"}, champion_required=True)
    assert found == {"champion": [], "runs": [], "processes": [], "secrets": []}


def test_an_invariant_that_cannot_be_checked_does_not_hold(world, monkeypatch):
    def unreachable(name):
        raise ConnectionError("deployer did not answer")

    deploy(world, "1")
    monkeypatch.setattr(world.deployer, "status", unreachable)
    found = invariants.check(world.h, names=["champion"])
    assert found == {"champion": ["could not be checked: ConnectionError: deployer did not answer"]}


def test_an_unknown_invariant_is_refused_naming_the_known_ones(world):
    with pytest.raises(ValueError, match="no invariant health; the invariants are champion, runs, processes, secrets"):
        invariants.check(world.h, names=["health"])
