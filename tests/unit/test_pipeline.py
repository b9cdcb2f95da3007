"""Stages 1-5 with in-memory ports: the flow, the gate's effect, failures and interrupts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest

from adapters.local.bundle_builder import BundleImageBuilder
from harness.bootstrap import Given, Harness
from harness.config.settings import load_settings
from harness.pipeline.journal import load
from harness.pipeline.runner import Pipeline, RunOptions, StageFailed
from tests.fakes import (
    MemoryJobRunner,
    MemoryLogSink,
    MemoryModelRegistry,
    MemoryObjectStore,
    MemoryRegistry,
    MemorySourceTrigger,
)

FIVE = RunOptions(until="registry")
FORCED = RunOptions(force=True, until="registry")

ROOT = Path(__file__).resolve().parents[2]


class FakeTraining:
    """Plays the training job's contract: registers a version and writes the result JSON."""

    def __init__(self, store: MemoryObjectStore, models: MemoryModelRegistry, accuracy: list[float]):
        self.store, self.models, self.accuracy = store, models, accuracy

    def __call__(self, spec):
        args = dict(zip(spec.args[::2], spec.args[1::2], strict=True))
        name = args["--model-name"]
        run_id = f"run-{len(self.scores) + 1}"
        version = self.models.register(name, f"runs:/{run_id}/model", run_id)
        champion = self.models.by_alias(name, args["--champion-alias"])
        result = {"run_id": run_id, "model_version": version.version,
                  "metrics": {"accuracy": self.accuracy.pop(0)},
                  "champion": {"version": champion.version, "metrics": {"accuracy": self.scores[champion.version]}}
                  if champion else None}
        self.scores[version.version] = result["metrics"]["accuracy"]
        bucket, key = args["--result-uri"].removeprefix("s3://").split("/", 1)
        self.store.put(bucket, key, json.dumps(result).encode())
        return 0, "trained\n"

    scores: ClassVar[dict[str, float]] = {}


@pytest.fixture
def world(tmp_path):
    settings = load_settings(ROOT / "lastmile.yaml", "local", environ={"LASTMILE_STATE_DIR": str(tmp_path)})
    store, models, registry = MemoryObjectStore(), MemoryModelRegistry(), MemoryRegistry()
    store.ensure_bucket(settings.buckets.data)
    trigger = MemorySourceTrigger([("c1", ["training/train.py", "serving/app.py", "README.md"])])
    training = FakeTraining(store, models, accuracy=[0.90, 0.95, 0.50])
    training.scores = {}
    jobs = MemoryJobRunner(training)
    ports = {"object_store": store, "model_registry": models, "source_trigger": trigger, "job_runner": jobs,
             "image_builder": BundleImageBuilder(registry), "log_sink": MemoryLogSink()}
    return Harness(settings, Given(**ports)), ports


def test_first_run_promotes_and_second_has_nothing_to_do(world):
    h, ports = world
    first = Pipeline(h).run(FIVE)
    assert first.status == "succeeded"
    assert ports["model_registry"].by_alias(h.settings.model.name, "champion").version == "1"
    assert first.stages["trigger"].outputs["reason"] == "first run"
    assert first.stages["artifacts"].outputs["uri"].startswith("s3://lastmile-data/datasets/iris/")
    second = Pipeline(h).run(FIVE)
    assert second.status == "nothing-to-do"
    assert {s.status for n, s in second.stages.items() if n != "trigger"} == {"skipped"}
    assert len(ports["job_runner"].runs) == 1


def test_change_under_training_rebuilds_training_only(world):
    h, ports = world
    first = Pipeline(h).run(FIVE)
    ports["source_trigger"].commits.append(("c2", ("training/train.py", "docs/notes.md")))
    second = Pipeline(h).run(FIVE)
    assert second.status == "succeeded"
    assert second.stages["build"].outputs["training"]["rebuilt"] is True
    assert second.stages["build"].outputs["serving"]["rebuilt"] is False
    assert second.summary["builds"]["serving"]["digest"] == first.summary["builds"]["serving"]["digest"]
    assert ports["model_registry"].by_alias(h.settings.model.name, "champion").version == "2"
    assert ports["model_registry"].by_alias(h.settings.model.name, "previous").version == "1"


def test_worse_challenger_stays_registered_with_the_reason(world):
    h, ports = world
    Pipeline(h).run(FIVE)
    Pipeline(h).run(FORCED)
    third = Pipeline(h).run(FORCED)
    models, name = ports["model_registry"], h.settings.model.name
    assert third.summary["promoted"] is False
    assert models.by_alias(name, "champion").version == "2"
    assert models.get_version(name, "3").tags["lastmile.gate"].startswith("rejected: accuracy 0.5000 is below")


def test_failing_job_fails_stage_four_and_promotes_nothing(world):
    h, ports = world
    ports["job_runner"].behaviour = lambda spec: (1, "loading data\nValueError: bad column\n")
    with pytest.raises(StageFailed, match="training job FAILED") as caught:
        Pipeline(h).run(FIVE)
    assert "ValueError: bad column" in str(caught.value)
    [run_id] = [p.parent.name for p in (h.settings.state_dir / "runs").glob("*/journal.json")]
    record = load(h.settings.state_dir / "runs", run_id)
    assert (record.status, record.stages["training"].status, record.stages["registry"].status) == \
        ("failed", "failed", "pending")
    assert ports["model_registry"].by_alias(h.settings.model.name, "champion") is None


def test_interrupt_cancels_the_job_and_moves_no_alias(world):
    h, ports = world
    Pipeline(h).run(FIVE)
    jobs = ports["job_runner"]
    jobs.behaviour = lambda spec: None  # the job hangs

    def interrupted_wait(run_id, timeout_s=None):
        raise KeyboardInterrupt

    jobs.wait = interrupted_wait
    with pytest.raises(KeyboardInterrupt):
        Pipeline(h).run(FORCED)
    newest = max((h.settings.state_dir / "runs").glob("*/journal.json"), key=lambda p: p.stat().st_mtime)
    record = load(h.settings.state_dir / "runs", newest.parent.name)
    assert (record.status, record.stages["training"].status) == ("interrupted", "interrupted")
    assert jobs.runs["jobrun-2"].state.value == "CANCELED"
    assert ports["model_registry"].by_alias(h.settings.model.name, "champion").version == "1"


def test_every_stage_change_reaches_the_log_sink_under_the_run_id(world):
    h, ports = world
    record = Pipeline(h).run(FIVE)
    events = list(ports["log_sink"].events(record.run_id))
    names = [(e.event, e.fields.get("stage")) for e in events]
    assert names[0] == ("run.started", None) and names[-1] == ("run.finished", None)
    for stage in ("trigger", "build", "artifacts", "training", "registry"):
        assert ("stage.started", stage) in names and ("stage.succeeded", stage) in names
    assert events[-1].fields["status"] == "succeeded"
    assert {e.subject for e in events} == {record.run_id}


def test_a_run_stopped_after_a_stage_skips_the_rest_and_says_why(world):
    h, _ = world
    record = Pipeline(h).run(RunOptions(until="artifacts"))
    assert record.status == "succeeded"
    assert [s.status for s in record.stages.values()] == ["succeeded"] * 3 + ["skipped"] * 4
    assert "not requested" in record.stages["training"].outputs["reason"]


def test_an_unknown_last_stage_is_refused_before_anything_runs(world):
    h, _ = world
    with pytest.raises(ValueError, match="no stage 'deploy'"):
        Pipeline(h).run(RunOptions(until="deploy"))
    assert not (h.settings.state_dir / "runs").exists()
