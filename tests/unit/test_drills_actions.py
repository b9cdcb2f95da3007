"""The drills' probes and actions on a harness of fakes: faults remembered and reverted, pipeline results, aliases."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.bootstrap import Given, Harness
from harness.config.settings import load_settings
from harness.domain.records import FaultSpec, SecretRef
from harness.drills import actions, probes
from harness.drills.catalog import activities
from harness.drills.context import DrillContext, forget, harness_for, running, use_harness
from harness.pipeline.journal import RunRecord, StageRecord
from tests.fakes import (
    MemoryDeployer,
    MemoryFaultInjector,
    MemoryJobRunner,
    MemoryLogSink,
    MemoryModelRegistry,
    MemoryObjectStore,
    MemorySecretStore,
    MemorySourceTrigger,
)

ROOT = Path(__file__).resolve().parents[2]
MODEL = "lastmile-classifier"
REFERENCE = json.dumps({"rows": [{"x": 1.0}], "predictions": [0]})


@dataclass
class World:
    """A harness of fakes on a state dir in ``tmp_path``, and the fakes themselves to arrange and assert on."""

    h: Harness
    models: MemoryModelRegistry
    deployer: MemoryDeployer
    faults: MemoryFaultInjector
    secrets: MemorySecretStore
    logs: MemoryLogSink
    trigger: MemorySourceTrigger

    @property
    def state_dir(self) -> Path:
        return self.h.settings.state_dir


def make_world(tmp_path: Path, champion: bool = True) -> World:
    """The shared world of the drill tests: @champion is version 1 (with reference predictions) and @previous
    is unset, nothing is deployed, no fault is active, one secret is stored."""
    settings = load_settings(ROOT / "lastmile.yaml", "local", environ={"LASTMILE_STATE_DIR": str(tmp_path / "state")})
    models = MemoryModelRegistry()
    for _ in range(2):
        models.register(MODEL, "runs:/r/model", tags={"lastmile.reference": REFERENCE})
    if champion:
        models.set_alias(MODEL, "champion", "1")
    secrets = MemorySecretStore({SecretRef("secret", "registry-password"): "s3cret-registry-password"})
    deployer, faults, logs = MemoryDeployer(), MemoryFaultInjector(), MemoryLogSink()
    trigger = MemorySourceTrigger([("c1", ["training/train.py"])])
    given = Given(model_registry=models, deployer=deployer, fault_injector=faults, secret_store=secrets,
                  log_sink=logs, object_store=MemoryObjectStore(), source_trigger=trigger,
                  job_runner=MemoryJobRunner(lambda spec: None))  # its jobs hang: they stay IN_PROGRESS
    return World(Harness(settings, given), models, deployer, faults, secrets, logs, trigger)


@pytest.fixture
def world(tmp_path):
    w = make_world(tmp_path)
    with use_harness(w.h), running(DrillContext("a-drill")):
        yield w


def test_inject_remembers_the_fault_and_revert_without_an_id_reverts_the_drills_own(world):
    other = world.faults.inject(FaultSpec("process", "mlflow", "pause"))  # not this drill's
    first = actions.inject("process", "mlflow", "kill")
    second = actions.inject("network", "object_store", "latency", {"latency": 500}, label="slow-s3")
    assert [f.id for f in world.faults.active()] == [other.id, first["fault_id"], second["fault_id"]]
    reverted = actions.revert()
    assert [r["fault_id"] for r in reverted] == [first["fault_id"], second["fault_id"]]
    assert [f.id for f in world.faults.active()] == [other.id]


def test_revert_by_label_records_the_evidence_it_returned(world):
    fault_id = actions.inject("process", "mlflow", "kill", label="mlflow-down")["fault_id"]
    world.faults.met[fault_id] = "pid 123 killed"
    [result] = actions.revert("mlflow-down")
    assert result == {"fault_id": fault_id, "took_effect": True, "detail": "pid 123 killed"}
    assert probes.fault_took_effect("mlflow-down") is True


def test_fault_took_effect_is_false_for_a_fault_that_met_nothing_and_for_a_drill_without_faults(world):
    assert probes.fault_took_effect() is False
    actions.inject("process", "mlflow", "kill")
    assert probes.fault_took_effect() is False


def test_revert_all_reverts_faults_of_other_drills_too(world):
    world.faults.inject(FaultSpec("process", "mlflow", "pause"))
    actions.inject("process", "registry", "kill")
    assert len(actions.revert_all()) == 2
    assert world.faults.active() == [] and probes.active_faults() == 0


def test_a_pipeline_that_succeeds_is_summarized(world):
    result = actions.run_pipeline(force=True, until="trigger")
    assert result["status"] == "succeeded" and result["run_id"] and result["failed_stage"] is None
    assert probes.last_run()["run_id"] == result["run_id"]
    assert probes.log_events("run.finished", subject=result["run_id"]) == 1


def test_a_failed_stage_is_a_result_not_an_exception(world):
    world.trigger.commits.clear()
    result = actions.run_pipeline(until="trigger")
    assert result["status"] == "failed" and result["failed_stage"] == "trigger"
    assert result["error"] == "the source has no commits yet"
    assert "cause" in result["diagnosis"]  # the journal's diagnosis of the failed stage, passed through


def test_a_pipeline_run_inside_a_drill_says_so_in_its_journal(world):
    run_id = actions.run_pipeline(until="trigger")["run_id"]
    journal = json.loads((world.state_dir / "runs" / run_id / "journal.json").read_text())
    assert journal["summary"]["drill"] == "a-drill"


def test_waits_follow_the_run_the_drill_started(world):
    run_id = actions.run_pipeline(until="trigger")["run_id"]
    assert actions.wait_for_stage("trigger", timeout_s=1) == {"run_id": run_id, "stage": "trigger",
                                                              "status": "succeeded"}
    assert actions.wait_for_run(timeout_s=1)["run_id"] == run_id


def test_waiting_for_a_run_that_never_comes_times_out(world):
    with pytest.raises(TimeoutError, match=r"no pipeline run reached stage training within 0\.3 s"):
        actions.wait_for_stage("training", timeout_s=0.3)
    with pytest.raises(ValueError, match="no stage 'train'"):
        actions.wait_for_stage("train")


def test_the_diagnosis_of_the_failed_stage_is_passed_through():
    stage = StageRecord("training", status="failed", error="job FAILED\ntail",
                        diagnosis={"cause": "mlflow unreachable", "evidence": ["refused"]})
    summary = actions.summarize(RunRecord("r1", "local", status="failed", stages={"training": stage}))
    assert summary == {"status": "failed", "run_id": "r1", "failed_stage": "training", "error": "job FAILED",
                       "diagnosis": {"cause": "mlflow unreachable", "evidence": ["refused"]}}


def test_last_run_without_runs_is_all_none(world):
    assert set(probes.last_run().values()) == {None}


def test_promote_and_rollback_move_the_aliases(world):
    assert actions.promote("2") == {"champion": "2", "previous": "1"}
    assert (probes.champion(), probes.previous()) == ("2", "1")
    assert actions.rollback_model() == {"champion": "1", "previous": "2"}


def test_deployment_probes_read_the_deployer(world):
    assert probes.deployment() == {"revision": None, "model_version": None, "ready": 0, "desired": 1}
    assert probes.deployment_ready() is False
    assert probes.endpoint_reproduces_champion() is False  # nothing deployed serves @champion


def test_standins_refuses_an_unknown_action(world):
    with pytest.raises(ValueError, match="not one of up, down"):
        actions.standins("sideways")


def test_harness_for_builds_once_per_config_and_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("LASTMILE_STATE_DIR", str(tmp_path))
    configuration = {"lastmile_config": str(ROOT / "lastmile.yaml"), "lastmile_profile": "oci"}
    try:
        first = harness_for(configuration)
        assert first is harness_for(configuration)
        assert first.settings.profile == "oci" and first.settings.state_dir == tmp_path
        world = make_world(tmp_path)
        with use_harness(world.h):
            assert harness_for(configuration) is world.h
    finally:
        forget()


def test_every_registered_activity_takes_configuration_and_is_found_where_a_drill_names_it():
    found = activities()
    required = {"inject", "revert", "revert_all", "run_pipeline", "standins", "promote", "rollback_model",
                "champion", "previous", "standins_healthy", "endpoint_reproduces_champion", "deployment",
                "last_run", "fault_took_effect"}
    assert required <= set(found)
    for name, activity in found.items():
        module = __import__(activity.module, fromlist=[name])
        func = getattr(module, activity.func)
        assert "configuration" in inspect.signature(func).parameters, name
        assert activity.doc, f"{name} has no docstring"
    assert found["inject"].provider(kind="process") == {"type": "python", "module": "harness.drills.actions",
                                                        "func": "inject", "arguments": {"kind": "process"}}
