"""The activities of the stage 1-5 drills on a harness of fakes: fresh runs with overrides, the baseline and the
expectations judged against it, the alias walk, command results, data faults on the dataset."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from harness.domain.records import ArtifactRef, JobSpec
from harness.drills import pipeline_activities as pa
from harness.drills.catalog import activities
from harness.drills.context import DrillContext, running, use_harness
from harness.pipeline import datasets
from harness.pipeline.journal import RunRecord, StageRecord
from harness.pipeline.stages import NAMES
from tests.unit.test_drills_actions import MODEL, ROOT, World, make_world


@pytest.fixture
def world(tmp_path):
    w = make_world(tmp_path)
    with use_harness(w.h), running(DrillContext("a-drill")):
        pa.note_baseline()
        yield w


def write_run(w: World, run_id: str, status: str, stages: dict[str, dict], started: float | None = None,
              ended: float | None = None) -> RunRecord:
    """A run journal as the pipeline writes it; ``stages`` maps a stage to StageRecord fields."""
    started = time.time() if started is None else started
    record = RunRecord(run_id, "local", status, started, ended if ended is not None else started + 1,
                       {name: StageRecord(name, **stages.get(name, {})) for name in NAMES})
    path = w.state_dir / "runs" / run_id / "journal.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record.to_json()))
    return record


def failed_at(stage: str, error: str, cause: str, evidence: str, seconds: float = 1.0, **outputs) -> dict:
    return {stage: {"status": "failed", "started": 100.0, "ended": 100.0 + seconds, "error": error,
                    "diagnosis": {"cause": cause, "evidence": evidence}, "outputs": outputs}}


def promoted(champion: str, previous: str | None) -> dict:
    return {"registry": {"status": "succeeded", "outputs": {"promoted": True, "champion": champion,
                                                           "previous": previous}}}


# fresh runs ---------------------------------------------------------------------------------------------------
def test_a_fresh_harness_takes_the_overrides_and_keeps_the_given_ports(world):
    fresh = pa.fresh_harness(world.h, {"LASTMILE_PORTS__JOB_RUNNER__TIMEOUT_S": "10",
                                       "LASTMILE_MODEL__PARAMS__MAX_DEPTH": "1"})
    assert fresh is not world.h
    assert fresh.settings.ports.job_runner.timeout_s == 10 and fresh.settings.model.params.max_depth == 1
    assert world.h.settings.ports.job_runner.timeout_s == 600  # the drill's own harness is left as it was
    assert fresh.model_registry is world.models and fresh.settings.state_dir == world.state_dir


def test_overrides_that_are_not_lastmiles_or_not_valid_are_refused_naming_them(world):
    with pytest.raises(ValueError, match="LASTMILE_\\* variables, not PATH"):
        pa.fresh_harness(world.h, {"PATH": "/bin"})
    with pytest.raises(ValueError, match=r"LASTMILE_MODEL__PARAMS__MAX_DEPTH: model\.params\.max_depth"):
        pa.fresh_harness(world.h, {"LASTMILE_MODEL__PARAMS__MAX_DEPTH": "0"})


def test_a_fresh_run_is_summarized_and_its_journal_names_the_overrides_not_their_values(world):
    result = pa.run_fresh_pipeline(until="trigger", env={"LASTMILE_MODEL__FLOOR": "0.5"})
    assert result["status"] == "succeeded" and result["failed_stage"] is None
    journal = json.loads((world.state_dir / "runs" / result["run_id"] / "journal.json").read_text())
    assert journal["summary"]["drill"] == "a-drill" and journal["summary"]["overrides"] == ["LASTMILE_MODEL__FLOOR"]
    assert pa.expect_run(status="succeeded")["run_id"] == result["run_id"]


def test_a_failure_that_is_not_lastmiles_is_a_result_diagnosed_internal(world):
    def broken(since):
        raise RuntimeError("the trigger broke")

    world.trigger.changes = broken
    result = pa.run_fresh_pipeline(until="trigger")
    assert result["status"] == "failed" and result["failed_stage"] == "trigger"
    assert result["diagnosis"]["cause"] == "lastmile internal"
    with pytest.raises(pa.ExpectationFailed, match="diagnosed 'lastmile internal'"):
        pa.expect_run(status="failed", causes="network reachability")


def test_the_token_is_the_drills_own_all_drill_long():
    with running(DrillContext("one")):
        first = pa.notes().token
        assert pa.notes().token == first
    with running(DrillContext("two")):
        assert pa.notes().token != first


# expectations on the run -------------------------------------------------------------------------------------
def test_expect_run_passes_a_run_that_failed_as_expected(world):
    write_run(world, "r1", "failed", failed_at("build", "registry at http://127.0.0.1:5055 did not answer",
                                              "network reachability", "http://127.0.0.1:5055", seconds=0.2))
    summary = pa.expect_run(status="failed", failed_stage="build", causes=["network reachability"],
                            says="did not answer", evidence="http://127.0.0.1:", stage_seconds={"build": {"max": 20}})
    assert summary["run_id"] == "r1"


def test_expect_run_lists_every_broken_expectation(world):
    write_run(world, "r1", "failed", failed_at("registry", "API request failed", "lastmile internal",
                                              "MlflowException: ...", seconds=247.0))
    with pytest.raises(pa.ExpectationFailed) as caught:
        pa.expect_run(status="failed", failed_stage="build", causes=["network reachability", "timeout/capacity"],
                      says=["did not answer"], evidence="http://", stage_seconds={"registry": {"max": 60}})
    text = str(caught.value)
    assert text.startswith("run r1: failed at registry, not build; diagnosed 'lastmile internal'")
    assert "does not say 'did not answer'" in text and "does not name 'http://'" in text
    assert "stage registry took 247.0 s, outside {'max': 60}" in text


def test_expect_run_reads_outputs_by_dotted_path(world):
    write_run(world, "r1", "succeeded", {"build": {"status": "succeeded", "outputs": {
        "training": {"pushed": False}, "serving": {"pushed": True}}}})
    pa.expect_run(status="succeeded", outputs={"build.training.pushed": False, "build.serving.pushed": True})
    with pytest.raises(pa.ExpectationFailed, match=r"build.serving.pushed is true, not false"):
        pa.expect_run(outputs={"build.serving.pushed": False})
    with pytest.raises(pa.ExpectationFailed, match="status succeeded, not failed"):
        pa.expect_run(status="failed")


def test_expect_run_ignores_runs_from_before_the_baseline(world):
    write_run(world, "old", "succeeded", {}, started=time.time() - 60)
    with pytest.raises(pa.ExpectationFailed, match="no pipeline run started since the drill's baseline"):
        pa.expect_run(status="succeeded")


# aliases -----------------------------------------------------------------------------------------------------
def test_the_alias_walk_follows_each_promotion_and_catches_a_skipped_previous():
    runs = [RunRecord(f"r{i}", "local", stages={"registry": StageRecord("registry", **stage)})
            for i, stage in enumerate([promoted("2", "1")["registry"], {"status": "failed"},
                                       promoted("3", "2")["registry"], promoted("3", "2")["registry"]])]
    assert pa.alias_walk(runs, ("1", None)) == (("3", "2"), [])
    skipping = [RunRecord("r9", "local", stages={"registry": StageRecord("registry", **promoted("4", "2")["registry"])})]
    expected, wrong = pa.alias_walk(skipping, ("3", "2"))
    assert expected == ("4", "3") and wrong == ["run r9 promoted 4 with @previous=2, skipping @champion 3"]


def test_expect_aliases_holds_when_nothing_ran_and_nothing_moved(world):
    assert pa.expect_aliases() == {"champion": "1", "previous": None}


def test_expect_aliases_follows_a_run_that_promoted(world):
    write_run(world, "r1", "succeeded", promoted("2", "1"))
    world.models.set_alias(MODEL, "previous", "1")
    world.models.set_alias(MODEL, "champion", "2")
    assert pa.expect_aliases() == {"champion": "2", "previous": "1"}


def test_expect_aliases_catches_a_half_moved_pair(world):
    write_run(world, "r1", "failed", failed_at("registry", "set alias failed", "network reachability", "http://x"))
    world.models.set_alias(MODEL, "previous", "1")  # @previous moved, @champion did not
    with pytest.raises(pa.ExpectationFailed, match="the registry has @champion=1 @previous=1, where the runs"):
        pa.expect_aliases()


def test_expect_serialized_runs_catches_an_overlap_and_a_missing_run(world):
    now = time.time()
    write_run(world, "r1", "succeeded", {}, started=now, ended=now + 10)
    write_run(world, "r2", "succeeded", {}, started=now + 11, ended=now + 20)
    assert pa.expect_serialized_runs(2) == ["r1", "r2"]
    write_run(world, "r3", "succeeded", {}, started=now + 15, ended=now + 25)
    with pytest.raises(pa.ExpectationFailed, match="3 runs since the baseline, not 2; run r3 started before run r2"):
        pa.expect_serialized_runs(2)


def test_expect_rejected_reads_the_gates_tag(world):
    world.models.tag_version(MODEL, "2", "lastmile.gate", "rejected: accuracy 0.6 is worse than the champion's 0.9")
    write_run(world, "r1", "succeeded", {"training": {"status": "succeeded", "outputs": {"model_version": "2"}},
                                         "registry": {"status": "succeeded", "outputs": {"promoted": False}}})
    assert pa.expect_rejected(says="worse than the champion's")["version"] == "2"
    with pytest.raises(pa.ExpectationFailed, match=r"version 2: tagged lastmile\.gate="):
        pa.expect_rejected(says="below the floor")


# commands ----------------------------------------------------------------------------------------------------
def test_a_command_result_reads_its_journal_and_whether_it_waited():
    stdout = json.dumps({"run_id": "r2", "status": "succeeded", "stages": {}})
    stderr = "lastmile: waiting for run r1 (pid 1, since 10:00:00)\nto finish (one run at a time per state directory)\n"
    result = pa.command_result("run --force --json", 0, 12.5, stdout, stderr)
    assert result["run_id"] == "r2" and result["status"] == "succeeded" and result["waited"] is True
    assert "to finish (one run" in result["stderr"]  # lines joined, so a wrapped message still matches
    refused = pa.command_result("run --no-wait", 1, 0.8, "", "lastmile: error: run r1 holds run.lock\n")
    assert refused["run_id"] is None and refused["waited"] is False


def test_expect_commands_checks_each_command_in_order(world):
    pa.notes().commands = [pa.command_result("run", 0, 1.0, json.dumps({"run_id": "r1", "status": "nothing-to-do"}),
                                             "nothing to do: no change (`lastmile run --force` runs it again)")]
    pa.expect_commands([{"exit_code": 0, "status": "nothing-to-do", "says": ["--force"]}])
    with pytest.raises(pa.ExpectationFailed, match="`lastmile run`: exit_code 0, not 1; `lastmile run` did not say"):
        pa.expect_commands([{"exit_code": 1, "says": "waiting"}])
    with pytest.raises(pa.ExpectationFailed, match="1 commands ran, 2 expected"):
        pa.expect_commands([{}, {}])


# data and waits ----------------------------------------------------------------------------------------------
def test_a_dataset_fault_targets_the_stored_dataset(world):
    result = pa.inject_dataset_fault("corrupt", label="bad-data")
    key = datasets.key_for("iris", datasets.iris_csv())
    assert result["target"] == f"object:lastmile-data/{key}"
    [handle] = world.faults.active()
    assert (handle.spec.kind, handle.spec.action, handle.spec.target) == ("data", "corrupt", result["target"])


def test_dataset_intact_checks_the_stored_bytes(world):
    store = world.h.object_store
    assert pa.dataset_intact() is False  # not stored yet
    store.ensure_bucket("lastmile-data")
    datasets.seed(store, "lastmile-data")
    assert pa.dataset_intact() is True
    store.objects[("lastmile-data", datasets.key_for("iris", datasets.iris_csv()))] = b"not iris"
    assert pa.dataset_intact() is False


def test_wait_for_job_returns_once_the_run_records_its_job_or_ends_without_one(world):
    job = world.h.job_runner.submit(JobSpec("train", ArtifactRef("127.0.0.1:5000", "lastmile/training", "sha256:0")))
    write_run(world, "r1", "running", {"training": {"status": "running", "outputs": {"job_run": job.run_id}}})
    assert pa.wait_for_job(timeout_s=1) == {"run_id": "r1", "job_run": job.run_id, "status": "running"}
    write_run(world, "r2", "failed", failed_at("build", "no registry", "network reachability", "http://x"),
              started=time.time() + 1)
    assert pa.wait_for_job(timeout_s=1)["job_run"] is None


def test_wait_for_job_times_out_when_no_run_comes(world):
    with pytest.raises(TimeoutError, match=r"no pipeline run submitted a training job within 0\.2 s"):
        pa.wait_for_job(timeout_s=0.2)


def test_the_activities_are_registered_with_configuration_and_a_docstring():
    found = activities()
    ours = {name: a for name, a in found.items() if a.module == pa.__name__}
    assert set(ours) == {"note_baseline", "run_fresh_pipeline", "wait_for_job", "inject_dataset_fault",
                         "lastmile_commands", "dataset_intact", "champion_files_intact", "expect_run",
                         "expect_aliases", "expect_serialized_runs", "expect_rejected", "expect_commands"}
    assert all(a.doc for a in ours.values())


DRILLS = {"trigger": ["concurrent-runs", "plain-run-after-failure"],
          "build": ["registry-down", "registry-blob-upload-500", "registry-password-rotated"],
          "artifacts": ["object-store-latency", "object-store-slowdown"],
          "training": ["dataset-corrupted", "job-killed", "job-hung", "mlflow-connection-reset"],
          "registry": ["mlflow-killed-mid-training", "set-alias-500", "worse-challenger"]}


@pytest.mark.parametrize("stage,name", [(stage, name) for stage, names in DRILLS.items() for name in names])
def test_each_drill_of_stages_1_to_5_names_its_stage_first_and_activities_that_exist(stage, name):
    drill = yaml.safe_load((ROOT / "scenarios" / "drills" / f"{stage}-{name}.yaml").read_text())
    found = activities()
    assert drill["tags"][0] == stage
    for block in [*drill["steady-state-hypothesis"]["probes"], *drill["method"], *drill.get("rollbacks", [])]:
        provider = block["provider"]
        assert provider["func"] in found and found[provider["func"]].module == provider["module"], block["name"]
    assert drill["method"][0]["name"] == "note-the-baseline"
