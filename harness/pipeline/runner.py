"""The seven stages, through the ports only: the same code runs on every profile.

trigger -> build -> artifacts -> training -> registry -> deployment -> observation
(:mod:`harness.pipeline.stages`). Each stage writes its inputs and outputs to the run journal and an event to the
profile's log sink; the first failure ends the run with that stage FAILED, diagnosed, and nothing promoted.
One run at a time per state directory: a run holds ``<state_dir>/run.lock`` from before it reads the last good
run until its journal is finished (:mod:`harness.infra.locks`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from harness.bootstrap import Harness
from harness.domain.diagnosis import Diagnosis, diagnose, diagnose_job
from harness.domain.errors import LastmileError, NotFound
from harness.domain.gate import decide
from harness.domain.promotion import CHAMPION, PREVIOUS, promote
from harness.domain.records import ArtifactRef, JobSpec, JobState
from harness.domain.trigger import BuildPlan, nothing_to_do, plan_builds
from harness.infra.locks import Holder, RunLock
from harness.pipeline import datasets
from harness.pipeline import journal as journal_mod
from harness.pipeline.delivery import deploy_stage, observe_stage
from harness.pipeline.journal import Journal, RunRecord, new_run_id
from harness.pipeline.rollout import RolloutFailed
from harness.pipeline.stages import NAMES, through

BUILDS = ("training", "serving")


LOG_TAIL_SHOWN, LOG_TAIL_READ = 15, 40
"""Lines of a failed job's log shown in its error, and read to diagnose it (a traceback runs long)."""


class StageFailed(LastmileError):
    """A stage ended in failure; the journal holds the details. ``diagnosis`` is set where the stage knew more
    than its message says (a job's exit code and log)."""

    def __init__(self, message: str, diagnosis: Diagnosis | None = None):
        super().__init__(message)
        self.diagnosis = diagnosis


@dataclass(frozen=True)
class RunOptions:
    force: bool = False
    until: str = NAMES[-1]
    """The last stage to run; the ones after it are skipped ("not requested")."""
    context: dict[str, Any] = field(default_factory=dict)
    """Recorded in the journal's summary from the start, beside the flavor of each port."""
    wait: bool = True
    """When another run holds the state directory's run lock: wait for it (True) or raise ``RunLocked``."""


def flavors(h: Harness) -> dict[str, str]:
    """Each port's flavor in this profile."""
    ports = h.settings.ports
    return {port: getattr(ports, port).flavor for port in type(ports).model_fields}


def endpoints(h: Harness) -> dict[str, str]:
    """Where each port goes in this profile (an endpoint or a file; none for in-process ones)."""
    ports = h.settings.ports
    found = {}
    for port in type(ports).model_fields:
        try:
            found[port] = getattr(ports, port).where(h)
        except LastmileError:  # a stand-in not up: the run says so when it needs the port
            found[port] = "a stand-in that is not up"
    return {port: where for port, where in found.items() if where}


class Pipeline:
    """The seven stages over one harness's ports. ``on_change`` sees the record at every journal change;
    ``on_wait`` is called once with the holder when the run has to wait for another run's lock."""

    def __init__(self, harness: Harness, on_change: Callable[[RunRecord], None] = lambda _: None,
                 on_wait: Callable[[Holder | None], None] = lambda _: None):
        self.h = harness
        self.settings = harness.settings
        self.runs_dir = self.settings.state_dir / "runs"
        self.on_change = on_change
        self.on_wait = on_wait
        self.last: RunRecord | None = None
        """The record of the latest run this pipeline started (also when that run raised)."""

    def run(self, options: RunOptions = RunOptions()) -> RunRecord:
        """Run the stages up to ``options.until`` under the run lock; the finished journal record."""
        wanted = through(options.until)
        run_id = new_run_id()
        lock = RunLock(self.settings.state_dir / "run.lock")
        with lock.held(run_id, wait=options.wait, on_wait=self.on_wait):
            return self._locked(run_id, options, wanted)

    def _locked(self, run_id: str, options: RunOptions, wanted: tuple[str, ...]) -> RunRecord:
        journal = Journal(self.runs_dir, self.settings.profile, on_change=self.on_change, emit=self.h.log_sink.emit,
                          run_id=run_id, ports=flavors(self.h), endpoints=endpoints(self.h), **options.context)
        self.last = journal.record
        previous = journal_mod.last_good(self.runs_dir, options.until)
        summary: dict[str, Any] = {}
        try:
            plan, summary["commit"] = self._trigger(journal, previous, options.force)
            if nothing_to_do(plan):
                for name in NAMES[1:]:
                    journal.skip(name, "nothing to do")
                return journal.finish("nothing-to-do", commit=summary["commit"], reason=plan.reason,
                                      builds=previous.summary.get("builds", {}) if previous else {})
            self._rest(journal, plan, previous, wanted, summary)
        except KeyboardInterrupt:
            journal.finish("interrupted", **summary)
            raise
        except BaseException as exc:
            if "diagnosis" not in journal.record.summary:
                journal.record.summary["diagnosis"] = {"stage": None, **diagnose(exc).to_json()}
            journal.finish("failed", **summary)
            raise
        for name in NAMES:
            if name not in wanted:
                journal.skip(name, f"not requested (the run stopped after {options.until})")
        return journal.finish("succeeded", until=options.until, **summary)

    def _rest(self, journal: Journal, plan: BuildPlan, previous: RunRecord | None, wanted: tuple[str, ...],
              summary: dict[str, Any]) -> None:
        """Stages 2 to 7, as far as ``wanted`` goes, adding what they did to ``summary`` as they go (a failed
        run's journal then still says what moved before the failure)."""
        commit = summary["commit"]
        if "build" not in wanted:
            return
        summary["builds"] = builds = self._build(journal, plan, previous)
        if "artifacts" not in wanted:
            return
        summary["dataset"] = dataset = self._artifacts(journal)
        if "training" not in wanted:
            return
        trained = self._training(journal, commit, builds["training"], dataset)
        summary["model_version"] = trained["model_version"]
        if "registry" not in wanted:
            return
        outcome = self._registry(journal, trained)
        summary.update(promoted=outcome["promoted"], champion=outcome["champion"], previous=outcome["previous"])
        if "deployment" not in wanted:
            return
        try:
            deployed = deploy_stage(self.h, journal, builds["serving"])
        except RolloutFailed:
            summary.update(self._serving_after_rollback(journal))
            raise
        summary.update(endpoint=deployed["endpoint"], revision=deployed["revision"],
                       deployed_version=deployed["model_version"])
        if "observation" in wanted:
            summary["sample"] = observe_stage(self.h, journal, deployed)["sample"]

    def _serving_after_rollback(self, journal: Journal) -> dict[str, Any]:
        """What serves once a rollout was rolled back, recorded on the deployment stage too; {} when the
        deployer cannot say."""
        try:
            status = self.h.deployer.status(self.settings.project)
        except LastmileError:
            return {}
        revision = status.revision
        serving = {"serving_version": revision.model_version if revision else None,
                   "serving_revision": revision.number if revision else None}
        journal.record.stages["deployment"].outputs.update(serving)
        journal.save()
        return serving

    # stages --------------------------------------------------------------------------------------
    def _trigger(self, journal: Journal, previous: RunRecord | None, force: bool) -> tuple[BuildPlan, str]:
        since = previous.summary.get("commit") if previous else None
        with journal.stage("trigger", since=since, force=force) as rec:
            changes = self.h.source_trigger.changes(since)
            plan = plan_builds(changes, self.settings.ports.source_trigger, force=force, since=since)
            rec.outputs.update(commit=changes.head, base=changes.base, changed=len(changes.paths),
                               training=plan.training, serving=plan.serving, reason=plan.reason)
            return plan, changes.head

    def _build(self, journal: Journal, plan: BuildPlan, previous: RunRecord | None) -> dict[str, dict[str, Any]]:
        before = previous.summary.get("builds", {}) if previous else {}
        with journal.stage("build", training=plan.training, serving=plan.serving) as rec:
            builds: dict[str, dict[str, Any]] = {}
            for name in BUILDS:
                if getattr(plan, name) or name not in before:
                    ref = self.h.image_builder.build(name, self.settings.root / name)
                    builds[name] = {"artifact": str(ref.artifact), "registry": ref.artifact.registry,
                                    "repository": ref.artifact.repository, "digest": ref.artifact.digest,
                                    "pushed": ref.pushed, "rebuilt": True}
                    if ref.run_id:
                        builds[name]["build_run"] = ref.run_id
                else:
                    builds[name] = {**before[name], "pushed": False, "rebuilt": False}
            rec.outputs.update(builds)
            return builds

    def _artifacts(self, journal: Journal) -> dict[str, Any]:
        bucket = self.settings.buckets.data
        with journal.stage("artifacts", bucket=bucket, dataset="iris") as rec:
            seeded = datasets.seed(self.h.object_store, bucket)
            ref = seeded.ref
            dataset = {"uri": ref.uri, "sha256": ref.sha256, "size": ref.size, "uploaded": seeded.uploaded}
            if seeded.replaced_corrupted:
                dataset["replaced_corrupted"] = True
            if seeded.note:
                dataset["note"] = seeded.note
            rec.outputs.update(dataset)
            if seeded.replaced_corrupted:
                journal.event("dataset.replaced", "warning", stage="artifacts", uri=ref.uri, note=seeded.note)
            return dataset

    def _training(self, journal: Journal, commit: str, build: dict[str, Any], dataset: dict[str, Any]) -> dict:
        model = self.settings.model
        result_key = f"results/{journal.record.run_id}/training.json"
        args = ("--data-uri", dataset["uri"], "--data-sha256", dataset["sha256"],
                "--model-name", model.name, "--experiment", model.experiment,
                "--git-commit", commit, "--build-digest", build["digest"],
                "--champion-alias", "champion",
                "--result-uri", f"s3://{self.settings.buckets.data}/{result_key}", *model.params.args())
        artifact = ArtifactRef(build["registry"], build["repository"], build["digest"])
        spec = JobSpec(name="train", artifact=artifact, args=args, timeout_s=self.settings.ports.job_runner.timeout_s)
        with journal.stage("training", artifact=str(artifact), args=list(args)) as rec:
            # Asking the registry first fails fast, naming the endpoint, before a job is started.
            before = self.h.model_registry.by_alias(model.name, "champion")
            rec.inputs["champion_before"] = before.version if before else None
            job = self.h.job_runner.submit(spec)
            rec.outputs.update(job_run=job.run_id, log=job.log_path)
            journal.save()
            try:
                job = self.h.job_runner.wait(job.run_id, spec.timeout_s)
            except KeyboardInterrupt:
                self.h.job_runner.cancel(job.run_id)
                raise
            if not job.state.terminal:  # a runner whose service keeps the run going (OCI) is told to stop it
                job = replace(self.h.job_runner.cancel(job.run_id),
                              message=f"timed out after {spec.timeout_s:g} s; the job run was canceled")
            rec.outputs.update(state=job.state.value, exit_code=job.exit_code)
            if job.state is not JobState.SUCCEEDED:
                tail = self.h.job_runner.log_tail(job.run_id, LOG_TAIL_READ)
                shown = "\n".join(tail.splitlines()[-LOG_TAIL_SHOWN:])
                raise StageFailed(f"training job {job.state.value}: {job.message}\n{shown}",
                                  diagnosis=diagnose_job(job, tail))
            try:
                result = json.loads(self.h.object_store.get(self.settings.buckets.data, result_key))
            except NotFound:
                raise StageFailed(f"training job succeeded but wrote no result to {result_key}") from None
            rec.outputs.update(mlflow_run_id=result["run_id"], model_version=result["model_version"],
                               metrics=result["metrics"], champion=result.get("champion"))
            return result

    def _registry(self, journal: Journal, trained: dict) -> dict[str, Any]:
        model = self.settings.model
        version = str(trained["model_version"])
        champion = trained.get("champion") or {}
        with journal.stage("registry", model=model.name, version=version) as rec:
            decision = decide(trained["metrics"][model.metric], champion.get("metrics", {}).get(model.metric),
                              metric=model.metric, tolerance=model.tolerance, floor=model.floor)
            registry = self.h.model_registry
            if decision.promote:
                move = promote(registry, model.name, version)
                registry.tag_version(model.name, version, "lastmile.gate", f"promoted: {decision.reason}")
                outcome = {"promoted": True, "champion": move.champion, "previous": move.previous}
            else:
                registry.tag_version(model.name, version, "lastmile.gate", f"rejected: {decision.reason}")
                current, before = registry.by_alias(model.name, CHAMPION), registry.by_alias(model.name, PREVIOUS)
                outcome = {"promoted": False, "champion": current.version if current else None,
                           "previous": before.version if before else None}
            rec.outputs.update(outcome, reason=decision.reason)
            return outcome
