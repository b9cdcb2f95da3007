"""Stages 1-6 with in-memory ports: the flow, the gate's effect, failures, diagnoses, the run lock and
interrupts."""

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
    MemoryDeployer,
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
REFERENCE = json.dumps({"rows": [{"sepal_length": 5.1}], "predictions": [0]})


class FakeTraining:
    """Plays the training job's contract: registers a version and writes the result JSON."""

    def __init__(self, store: MemoryObjectStore, models: MemoryModelRegistry, accuracy: list[float]):
        self.store, self.models, self.accuracy = store, models, accuracy

    def __call__(self, spec):
        args = dict(zip(spec.args[::2], spec.args[1::2], strict=True))
        name = args["--model-name"]
        run_id = f"run-{len(self.scores) + 1}"
        version = self.models.register(name, f"runs:/{run_id}/model", run_id, tags={"lastmile.reference": REFERENCE})
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
             "image_builder": BundleImageBuilder(registry), "log_sink": MemoryLogSink(), "deployer": MemoryDeployer()}
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


def test_a_job_still_running_when_the_wait_ends_is_canceled_and_the_stage_says_it_timed_out(world):
    h, ports = world
    Pipeline(h).run(FIVE)
    jobs = ports["job_runner"]
    jobs.behaviour = lambda spec: None  # the job hangs: the wait ends with it IN_PROGRESS, as on OCI

    with pytest.raises(StageFailed, match=r"training job CANCELED: timed out after \d+ s; the job run was canceled"):
        Pipeline(h).run(FORCED)
    newest = max((h.settings.state_dir / "runs").glob("*/journal.json"), key=lambda p: p.stat().st_mtime)
    training = load(h.settings.state_dir / "runs", newest.parent.name).stages["training"]
    assert jobs.runs["jobrun-2"].state.value == "CANCELED"
    assert training.diagnosis is not None and training.diagnosis["cause"] == "timeout/capacity"
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


# diagnoses -------------------------------------------------------------------------------------------------
def _only_journal(h) -> object:
    [path] = (h.settings.state_dir / "runs").glob("*/journal.json")
    return load(h.settings.state_dir / "runs", path.parent.name)


def test_a_failed_job_is_diagnosed_in_the_journal_the_summary_and_the_log_sink(world):
    h, ports = world
    ports["job_runner"].behaviour = lambda spec: (
        4, "training: MLflow at http://127.0.0.1:5555 did not answer (ConnectionError); is it up? run `lastmile up`\n")
    with pytest.raises(StageFailed):
        Pipeline(h).run(FIVE)
    record = _only_journal(h)
    expected = {"cause": "network reachability", "evidence": "http://127.0.0.1:5555"}
    assert record.stages["training"].diagnosis == expected
    assert record.summary["diagnosis"] == {"stage": "training", **expected}
    [failed] = [e for e in ports["log_sink"].events(record.run_id) if e.event == "stage.failed"]
    assert failed.fields["diagnosis"] == expected


def test_a_job_that_fails_in_its_code_is_model_code_with_the_log_line(world):
    h, ports = world
    ports["job_runner"].behaviour = lambda spec: (1, "loading data\nValueError: bad column\n")
    with pytest.raises(StageFailed):
        Pipeline(h).run(FIVE)
    assert _only_journal(h).stages["training"].diagnosis == {"cause": "model code",
                                                             "evidence": "ValueError: bad column"}


def test_a_failed_run_keeps_what_it_did_before_the_failure(world):
    h, ports = world
    ports["job_runner"].behaviour = lambda spec: (3, "training: dataset hash mismatch for s3://x: refusing to train\n")
    with pytest.raises(StageFailed):
        Pipeline(h).run(FIVE)
    summary = _only_journal(h).summary
    assert summary["commit"] == "c1" and set(summary["builds"]) == {"training", "serving"}
    assert summary["diagnosis"]["cause"] == "data integrity"


# what moved ------------------------------------------------------------------------------------------------
def test_the_registry_stage_and_the_summary_name_champion_and_previous_after_the_move(world):
    h, _ = world
    Pipeline(h).run(FIVE)
    second = Pipeline(h).run(FORCED)
    assert {k: second.stages["registry"].outputs[k] for k in ("promoted", "champion", "previous")} == \
        {"promoted": True, "champion": "2", "previous": "1"}
    assert (second.summary["champion"], second.summary["previous"]) == ("2", "1")
    third = Pipeline(h).run(FORCED)  # 0.50: rejected, nothing moves
    assert {k: third.stages["registry"].outputs[k] for k in ("promoted", "champion", "previous")} == \
        {"promoted": False, "champion": "2", "previous": "1"}
    assert (third.summary["champion"], third.summary["previous"]) == ("2", "1")


def test_a_rolled_back_deployment_says_which_version_serves(world):
    from harness.domain.records import ArtifactRef, DeploymentSpec
    from harness.pipeline.delivery import reference_of
    from harness.pipeline.rollout import RolloutFailed

    h, ports = world
    first = Pipeline(h).run(FIVE)
    models, deployer, name = ports["model_registry"], ports["deployer"], h.settings.model.name
    serving = first.summary["builds"]["serving"]
    artifact = ArtifactRef(serving["registry"], serving["repository"], serving["digest"])
    champion = models.by_alias(name, "champion")
    deployer.deploy(DeploymentSpec(h.settings.project, artifact, champion, reference_of(champion)))
    deployer.broken.add((serving["digest"], "2"))
    with pytest.raises(RolloutFailed, match="model version 1"):
        Pipeline(h).run(RunOptions(force=True, until="deployment"))
    newest = max((h.settings.state_dir / "runs").glob("*/journal.json"), key=lambda p: p.stat().st_mtime)
    record = load(h.settings.state_dir / "runs", newest.parent.name)
    assert (record.summary["champion"], record.summary["serving_version"]) == ("2", "1")
    assert record.stages["deployment"].outputs["serving_version"] == "1"
    assert record.stages["deployment"].diagnosis["cause"] == "model code"


# the dataset -----------------------------------------------------------------------------------------------
def test_a_corrupted_dataset_is_replaced_and_the_journal_and_log_sink_say_so(world):
    h, ports = world
    first = Pipeline(h).run(FIVE)
    assert (first.stages["artifacts"].outputs["uploaded"], first.stages["artifacts"].outputs["note"]) == \
        (True, "first upload")
    store = ports["object_store"]
    [key] = [k for k in store.objects if k[1].startswith("datasets/")]
    store.objects[key] = store.objects[key].replace(b"5.1", b"9.9")  # behind the store's back
    second = Pipeline(h).run(FORCED)
    outputs = second.stages["artifacts"].outputs
    assert (outputs["uploaded"], outputs["replaced_corrupted"]) == (True, True)
    assert "no longer matched its sha256" in outputs["note"]
    [warning] = [e for e in ports["log_sink"].events(second.run_id) if e.event == "dataset.replaced"]
    assert warning.level == "warning" and warning.fields["uri"] == outputs["uri"]
    assert store.get(*key)  # intact again


def test_an_intact_dataset_is_left_alone(world):
    h, _ = world
    Pipeline(h).run(FIVE)
    outputs = Pipeline(h).run(FORCED).stages["artifacts"].outputs
    assert outputs["uploaded"] is False and "replaced_corrupted" not in outputs and "note" not in outputs


# the trigger -----------------------------------------------------------------------------------------------
def test_a_last_good_commit_gone_from_history_is_named_in_the_reason(world):
    h, ports = world
    Pipeline(h).run(FIVE)
    ports["source_trigger"].commits[:] = [("c9", ("training/train.py",))]  # history rewritten
    record = Pipeline(h).run(FIVE)
    assert record.stages["trigger"].outputs["reason"] == \
        "the last good commit c1 is no longer in history; building everything"


def test_nothing_to_do_after_a_failed_run_points_at_force(world):
    from harness.cli.views import why_nothing
    from harness.pipeline.journal import history

    h, ports = world
    Pipeline(h).run(FIVE)
    ports["job_runner"].behaviour = lambda spec: (1, "ValueError: boom\n")
    with pytest.raises(StageFailed):
        Pipeline(h).run(FORCED)
    pipeline = Pipeline(h)
    again = pipeline.run(FIVE)
    assert again.status == "nothing-to-do"
    runs = history(pipeline.runs_dir)
    failed = next(r for r in runs if r.status == "failed")
    assert why_nothing(again, runs) == f"(the last run, {failed.run_id}, failed: `lastmile run --force` runs it again)"


def test_nothing_to_do_after_a_good_run_says_force_runs_anyway(world):
    from harness.cli.views import why_nothing
    from harness.pipeline.journal import history

    h, _ = world
    Pipeline(h).run(FIVE)
    pipeline = Pipeline(h)
    again = pipeline.run(FIVE)
    assert why_nothing(again, history(pipeline.runs_dir)) == "(--force runs anyway)"


# the run lock ----------------------------------------------------------------------------------------------
def test_a_run_refuses_without_waiting_while_another_holds_the_lock_and_writes_no_journal(world):
    from harness.infra.locks import RunLock, RunLocked

    h, _ = world
    with RunLock(h.settings.state_dir / "run.lock").held("20260101-000000-beef"), \
            pytest.raises(RunLocked, match=r"run 20260101-000000-beef \(pid \d+, since [\d:]+\) holds .*run\.lock"):
        Pipeline(h).run(RunOptions(until="registry", wait=False))
    assert not list((h.settings.state_dir / "runs").glob("*/journal.json"))


def test_a_waiting_run_is_told_who_holds_the_lock_and_runs_once_it_is_free(world):
    import os

    from harness.infra.locks import RunLock

    h, _ = world
    other = RunLock(h.settings.state_dir / "run.lock", poll_s=0.01)
    other.acquire("20260101-000000-beef")
    told = []

    def on_wait(holder):
        told.append(holder)
        other.release()  # the other run ends while this one waits

    record = Pipeline(h, on_wait=on_wait).run(FIVE)
    assert record.status == "succeeded"
    assert [(t.run_id, t.pid) for t in told] == [("20260101-000000-beef", os.getpid())]


def test_the_lock_is_free_after_a_run_that_failed(world):
    from harness.infra.locks import RunLock

    h, ports = world
    ports["job_runner"].behaviour = lambda spec: (1, "ValueError: boom\n")
    with pytest.raises(StageFailed):
        Pipeline(h).run(FIVE)
    lock = RunLock(h.settings.state_dir / "run.lock")
    lock.acquire("next", wait=False)
    lock.release()


# the CLI's last lines --------------------------------------------------------------------------------------
def test_the_cli_error_names_the_cause_then_the_evidence_then_the_log(world):
    from harness.cli.views import error_lines

    h, ports = world
    ports["job_runner"].behaviour = lambda spec: (1, "loading data\nValueError: bad column\n")
    pipeline = Pipeline(h)
    with pytest.raises(StageFailed) as caught:
        pipeline.run(FIVE)
    lines = error_lines(caught.value, pipeline.last)
    assert lines[:2] == ["lastmile: error: [model code] training job FAILED: exited with code 1",
                         "evidence: ValueError: bad column"]
    assert lines[-1] == "ValueError: bad column"


def test_the_cli_error_of_an_error_outside_a_journal_is_diagnosed_too():
    from harness.cli.views import error_lines
    from harness.domain.errors import UnreachableError

    exc = UnreachableError("deployer at http://127.0.0.1:5070 did not answer (ConnectError)", hint="run `lastmile up`")
    assert error_lines(exc) == ["lastmile: error: [network reachability] deployer at http://127.0.0.1:5070 did "
                                "not answer (ConnectError); run `lastmile up`", "evidence: http://127.0.0.1:5070"]


# the training job's environment ------------------------------------------------------------------------------
def test_jobs_get_mlflow_client_limits_that_fail_a_dead_server_in_seconds(tmp_path):
    from urllib3.util.retry import Retry

    from adapters.local.flavors import job_environment
    from harness.domain.records import SecretRef
    from tests.fakes import MemorySecretStore

    settings = load_settings(ROOT / "lastmile.yaml", "local", environ={
        "LASTMILE_STATE_DIR": str(tmp_path), "LASTMILE_PORTS__MODEL_REGISTRY__TRACKING_URI": "http://127.0.0.1:5555",
        "LASTMILE_PORTS__OBJECT_STORE__ENDPOINT": "http://127.0.0.1:9900"})
    secrets = MemorySecretStore({SecretRef.parse(ref): "x" for ref in (
        "secret:mlflow-password", "secret:s3-access-key-id", "secret:s3-secret-access-key")})
    env = job_environment(Harness(settings, Given(secret_store=secrets)))
    retries = int(env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"])
    factor = int(env["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"])  # MLflow parses both as int
    timeout = int(env["MLFLOW_HTTP_REQUEST_TIMEOUT"])

    def backoff(retries: int, factor: int, jitter: float = 1.0) -> float:
        """The sleeps of urllib3's Retry (as MLflow builds it) before giving up, with the most jitter."""
        retry, total = Retry(total=retries, connect=retries, backoff_factor=factor), 0.0
        for _ in range(retries):
            retry = retry.increment(method="GET", url="/", error=ConnectionError())
            total += retry.get_backoff_time() + jitter
        return total

    refused = backoff(retries, factor)
    assert refused <= 5, f"a refused connection is retried for {refused:g} s"
    assert (retries + 1) * timeout + refused <= 40, "a server that never answers ties the job up too long"
    assert timeout >= 10 and retries >= 2, "a busy server gets time and a second chance"
    assert backoff(7, 2) >= 200, "MLflow's defaults (7 retries, factor 2), for comparison"


@pytest.mark.parametrize(("profile", "tracking_uri", "proxied"), [
    ("containers", None, True), ("containers", "http://127.0.0.1:5555", False), ("local", None, False)])
def test_clients_download_through_mlflow_only_when_its_stand_in_is_a_container(tmp_path, profile, tracking_uri,
                                                                               proxied):
    """A containerised MLflow hands out presigned URLs naming the S3 stand-in's network alias, which no client on
    the host resolves; everywhere else the presigned downloads stay (they reach the store directly)."""
    from adapters.local.flavors import job_environment
    from adapters.shared.jobenv import mlflow_client_settings
    from harness.domain.records import SecretRef
    from tests.fakes import MemorySecretStore

    environ = {"LASTMILE_STATE_DIR": str(tmp_path), "LASTMILE_PORTS__OBJECT_STORE__ENDPOINT": "http://127.0.0.1:9900",
               "LASTMILE_PORTS__MODEL_REGISTRY__TRACKING_URI": tracking_uri or "http://127.0.0.1:5555"}
    settings = load_settings(ROOT / "lastmile.yaml", profile, environ=environ)
    if tracking_uri is None:  # the stand-in's (the endpoint is looked up in the running stand-ins' state)
        settings = settings.model_copy(update={"ports": settings.ports.model_copy(update={
            "model_registry": settings.ports.model_registry.model_copy(update={"tracking_uri": None})})})
    secrets = MemorySecretStore({SecretRef.parse(ref): "x" for ref in (
        "secret:mlflow-password", "secret:s3-access-key-id", "secret:s3-secret-access-key")})
    h = Harness(settings, Given(secret_store=secrets))
    assert (mlflow_client_settings(h).get("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD") == "false") is proxied
    if tracking_uri:
        assert ("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD" in job_environment(h)) is proxied
