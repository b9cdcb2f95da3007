"""The DevOps stand-in's resources: projects, build pipelines and triggers registered by ``lastmile up`` (as
Terraform creates them in a tenancy), and the build runs the API creates.

Registration writes ``<state>/devops/config.json``, read by the server whenever it changes:

- :func:`register_pipeline`: a build pipeline of a project, with the local repository that stands for its GitHub
  repository (``source``), the build spec's path in it, the log its runs write to and its parameters (defaults
  of the build run arguments, e.g. ``OCIR_REGISTRY`` pointing at the registry stand-in);
- :func:`register_trigger`: a GitHub trigger of a pipeline: the branch, the include/exclude file filters, the Vault
  secret (OCID) holding the webhook's shared secret, and the build run arguments its runs get.

Build runs are kept as the API shows them (``BuildRun`` JSON) in ``<state>/devops/buildruns.json``; no secret value
is ever part of one.
"""

from __future__ import annotations

import copy
import hashlib
import threading
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

from .files import WatchedJson, read_json, write_json
from .objectstore import now_iso

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED")
STAGE_ID_PREFIX = "ocid1.devopsbuildpipelinestage.oc1..build"


def devops_dir(state: Path) -> Path:
    return state / "devops"


def config_file(state: Path) -> Path:
    return devops_dir(state) / "config.json"


def _update(state: Path, section: str, key: str, value: dict) -> None:
    path = config_file(state)
    config = read_json(path, {})
    config.setdefault(section, {})[key] = value
    write_json(path, config)


def register_pipeline(state: Path, pipeline_id: str, project_id: str, compartment_id: str, source: Path,
                      repository_url: str = "", log_id: str | None = None,
                      parameters: Mapping[str, str] | None = None, build_spec: str = "build_spec.yaml",
                      display_name: str = "lastmile-build") -> None:
    """A build pipeline (and its project) whose runs build commits of the git repository at ``source``."""
    _update(state, "projects", project_id, {"compartmentId": compartment_id, "name": project_id.rsplit(".", 1)[-1]})
    _update(state, "pipelines", pipeline_id, {
        "projectId": project_id, "compartmentId": compartment_id, "displayName": display_name,
        "source": str(Path(source).resolve()), "repositoryUrl": repository_url, "buildSpecFile": build_spec,
        "logId": log_id, "parameters": dict(parameters or {})})


def register_trigger(state: Path, trigger_id: str, pipeline_id: str, secret_id: str, include: Iterable[str] = (),
                     exclude: Iterable[str] = (), branch: str = "main",
                     arguments: Mapping[str, str] | None = None) -> None:
    """A GitHub push trigger of ``pipeline_id``; its webhook is ``POST /20210630/triggers/<trigger_id>/events``."""
    _update(state, "triggers", trigger_id, {
        "pipelineId": pipeline_id, "secretId": secret_id, "include": list(include), "exclude": list(exclude),
        "branch": branch, "arguments": dict(arguments or {})})


class DevOpsConfig:
    """The registered projects, pipelines and triggers, read again when the file changes."""

    def __init__(self, state: Path):
        self._file = WatchedJson(config_file(state), {})

    def get(self, section: str, key: str) -> dict | None:
        return self._file.get().get(section, {}).get(key)


def build_run_ocid() -> str:
    return "ocid1.devopsbuildrun.oc1..amaaaaaa" + uuid.uuid4().hex


def stage_id(pipeline_id: str) -> str:
    return STAGE_ID_PREFIX + hashlib.sha256(pipeline_id.encode()).hexdigest()[:24]


class BuildRuns:
    """Build runs by id, as ``BuildRun`` JSON; every change is saved. A run that was in progress when the server
    stopped is FAILED when it starts again (its runner is gone)."""

    def __init__(self, state: Path):
        self._path = devops_dir(state) / "buildruns.json"
        self._lock = threading.Lock()
        self._runs: dict[str, dict] = read_json(self._path, {})
        for run in self._runs.values():
            if run["lifecycleState"] not in TERMINAL:
                run["lifecycleState"], run["lifecycleDetails"] = "FAILED", "The build runner stopped with the stand-in"

    def create(self, pipeline_id: str, pipeline: dict, commit: dict, arguments: Mapping[str, str],
               display_name: str | None, source: dict) -> dict:
        now = now_iso()
        run = {
            "id": build_run_ocid(), "displayName": display_name or f"build-run-{now}",
            "compartmentId": pipeline["compartmentId"], "projectId": pipeline["projectId"],
            "buildPipelineId": pipeline_id, "buildRunSource": source,
            "buildRunArguments": {"items": [{"name": k, "value": v} for k, v in arguments.items()]},
            "timeCreated": now, "timeUpdated": now, "lifecycleState": "ACCEPTED", "lifecycleDetails": None,
            "buildRunProgress": {"timeStarted": None, "timeFinished": None, "buildPipelineStageRunProgress": {}},
            "commitInfo": commit, "buildOutputs": None, "freeformTags": {}, "definedTags": {}, "systemTags": {}}
        with self._lock:
            self._runs[run["id"]] = run
            self._save()
            return copy.deepcopy(run)

    def get(self, run_id: str) -> dict | None:
        with self._lock:
            run = self._runs.get(run_id)
            return copy.deepcopy(run) if run else None

    def listed(self) -> list[dict]:
        with self._lock:
            return [copy.deepcopy(r) for r in sorted(self._runs.values(), key=lambda r: r["timeCreated"],
                                                     reverse=True)]

    def update(self, run_id: str, **fields) -> dict:
        """Set top-level fields of a run (``timeUpdated`` too); a terminal run stays as it ended."""
        with self._lock:
            run = self._runs[run_id]
            if run["lifecycleState"] in TERMINAL and fields.get("lifecycleState") not in (None, *TERMINAL):
                return copy.deepcopy(run)
            run.update(copy.deepcopy(fields))
            run["timeUpdated"] = now_iso()
            self._save()
            return copy.deepcopy(run)

    def _save(self) -> None:
        write_json(self._path, self._runs)


def summary(run: dict) -> dict:
    """``BuildRunSummary`` of a ``BuildRun``."""
    fields = ("id", "compartmentId", "displayName", "projectId", "buildPipelineId", "buildRunSource",
              "buildRunArguments", "timeCreated", "timeUpdated", "lifecycleState", "lifecycleDetails", "commitInfo",
              "freeformTags", "definedTags", "systemTags")
    progress = run["buildRunProgress"]
    return {**{k: run.get(k) for k in fields}, "buildRunProgressSummary": {
        "timeStarted": progress["timeStarted"], "timeFinished": progress["timeFinished"]}}
