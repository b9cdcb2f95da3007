"""The DevOps stand-in's build runner: one thread per build run, executing the build spec of the commit.

A run gets a clean checkout of its commit (``git archive`` of the pipeline's source repository, no ``.git``) in
``<state>/devops/workspaces/<run id>/source`` (``OCI_PRIMARY_SOURCE_DIR``), the build spec from it, and runs its
steps one after another with bash in their own process group: the environment holds OCI's build variables
(``OCI_BUILD_RUN_ID``, ``OCI_PRIMARY_SOURCE_DIR``, ``OCI_TRIGGER_COMMIT_HASH``...), ``env.variables``, the
pipeline's parameters overridden by the run's arguments, the ``vaultVariables`` read from the Vault stand-in's
secrets, and the exported variables set by earlier steps. A step past its ``timeoutInSeconds`` (or the build's) is
killed; a failed step runs its ``onFailure`` commands and fails the run. Every output line goes to the pipeline's
log in the Logging stand-in (subject = the build run id), with every secret value masked, as are exported values.

BINARY output artifacts are delivered: a JSON file with ``ref`` and ``digest`` (what ``bundle_push`` writes) as an
OCIR artifact (``imageUri``, ``deliveredArtifactHash``), any other file as a generic artifact with its SHA-256.
The Python the steps find first on PATH is the stand-in's own (the build runner image's).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from . import devops_spec
from .devops_store import BuildRuns, devops_dir, stage_id
from .logging_api import logging_dir
from .objectstore import now_iso

MASK = "***"
DUMP = """__lastmile_dump() { for __v in %s; do if [ -n "${!__v+x}" ]; then printf '%%s=%%s\\0' "$__v" "${!__v}"; fi; \
done > "$LASTMILE_EXPORTS"; }
trap __lastmile_dump EXIT
%s. "$LASTMILE_STEP"
"""


class StepFailed(Exception):
    """A step ended badly; the message is the run's ``lifecycleDetails``."""


class Canceled(Exception):
    pass


class BuildRunner:
    """Runs build runs in threads; ``secret`` reads a Vault secret's current value by OCID (None when unknown),
    ``hang`` and ``fail`` say whether a drill asked the next run to hang or fail."""

    def __init__(self, state: Path, runs: BuildRuns, secret: Callable[[str], bytes | None],
                 take_fault: Callable[[str], bool]):
        self.state, self.runs, self.secret, self.take_fault = state, runs, secret, take_fault
        self._cancels: dict[str, threading.Event] = {}

    def start(self, run: dict, pipeline: dict, arguments: dict[str, str]) -> None:
        event = self._cancels.setdefault(run["id"], threading.Event())
        threading.Thread(target=self._run, args=(run, pipeline, arguments, event), daemon=True,
                         name=f"build-{run['id'][-8:]}").start()

    def cancel(self, run_id: str, reason: str) -> dict:
        run = self.runs.update(run_id, lifecycleState="CANCELING", lifecycleDetails=f"Canceling: {reason}")
        self._cancels.setdefault(run_id, threading.Event()).set()
        return run

    # --- one run -------------------------------------------------------------------------------------------------
    def _run(self, run: dict, pipeline: dict, arguments: dict[str, str], canceled: threading.Event) -> None:
        run_id = run["id"]
        workspace = devops_dir(self.state) / "workspaces" / run_id
        log = _Log(self.state, pipeline.get("logId"), pipeline_id=run["buildPipelineId"], run_id=run_id)
        stage = {"stageDisplayName": "Managed build", "buildPipelineStageType": "BUILD",
                 "buildPipelineStageId": stage_id(run["buildPipelineId"]), "timeStarted": now_iso(),
                 "timeFinished": None, "status": "IN_PROGRESS", "buildSpecFile": pipeline["buildSpecFile"],
                 "stageExecutionTimeoutInSeconds": None, "primaryBuildSource": "primary", "steps": [],
                 "exportedVariables": {"items": []}}
        progress = {"timeStarted": now_iso(), "timeFinished": None,
                    "buildPipelineStageRunProgress": {stage["buildPipelineStageId"]: stage}}
        self.runs.update(run_id, lifecycleState="IN_PROGRESS", buildRunProgress=progress)
        state, details, outputs = "FAILED", None, None
        try:
            source = _checkout(Path(pipeline["source"]), run["commitInfo"]["commitHash"], workspace / "source")
            spec = _read_spec(source, pipeline["buildSpecFile"])
            stage["stageExecutionTimeoutInSeconds"] = spec.timeout_s
            stage["steps"] = [{"name": s.name, "state": "WAITING", "timeStarted": None, "timeFinished": None}
                              for s in spec.steps]
            self.runs.update(run_id, buildRunProgress=progress)
            secrets = self._vault(spec)
            log.masked = [v for v in secrets.values() if v]
            env = _environment(run, pipeline, arguments, spec, source, workspace) | secrets
            if self.take_fault("fail"):
                raise StepFailed("Build run failed: the build runner was made to fail (drill)")
            if self.take_fault("hang"):
                log.write("the build runner hangs (drill)")
                canceled.wait(spec.timeout_s)
                raise Canceled() if canceled.is_set() else StepFailed(f"Build timed out after {spec.timeout_s}s")
            exported = self._steps(spec, env, source, workspace, stage, progress, run_id, log, canceled)
            variables = [{"name": k, "value": _mask(v, log.masked)} for k, v in exported.items()]
            stage["exportedVariables"] = {"items": variables}
            outputs = {"exportedVariables": {"items": variables},
                       "deliveredArtifacts": {"items": _deliver(spec, env, source)},
                       "artifactOverrideParameters": None, "vulnerabilityAuditSummaryCollection": None}
            state = "SUCCEEDED"
        except Canceled:
            state, details = "CANCELED", "Build run canceled"
        except (StepFailed, devops_spec.SpecError) as exc:
            details = str(exc)
        except Exception as exc:  # a bug of ours still ends the run, as OCI's would with an internal error
            details = f"Internal error of the build runner: {type(exc).__name__}: {exc}"
        finally:
            shutil.rmtree(workspace, ignore_errors=True)
        if canceled.is_set() and state != "SUCCEEDED":
            state, details = "CANCELED", "Build run canceled"
        log.write(f"build run {state.lower()}" + (f": {details}" if details else ""))
        stage["status"], stage["timeFinished"] = state, now_iso()
        progress["timeFinished"] = stage["timeFinished"]
        self.runs.update(run_id, lifecycleState=state, lifecycleDetails=details, buildRunProgress=progress,
                         buildOutputs=outputs)

    def _vault(self, spec: devops_spec.BuildSpec) -> dict[str, str]:
        values = {}
        for name, ocid in spec.vault_variables.items():
            value = self.secret(ocid)
            if value is None:
                raise StepFailed(f"Unable to read the vault secret {ocid} for the variable {name}")
            values[name] = value.decode()
        return values

    def _steps(self, spec, env, source, workspace, stage, progress, run_id, log, canceled) -> dict[str, str]:
        deadline = time.monotonic() + spec.timeout_s
        exported: dict[str, str] = {}
        for index, step in enumerate(spec.steps):
            record = stage["steps"][index]
            record.update(state="IN_PROGRESS", timeStarted=now_iso())
            self.runs.update(run_id, buildRunProgress=progress)
            log.write(f"step {step.name!r} started")
            try:
                exported |= _command(step, env | exported, spec.exported_variables, source, workspace, log, canceled,
                                     min(step.timeout_s, deadline - time.monotonic()))
            except StepFailed:
                record.update(state="FAILED", timeFinished=now_iso())
                for fallback in step.on_failure:
                    try:
                        _command(fallback, env | exported, (), source, workspace, log, canceled,
                                 min(fallback.timeout_s, max(deadline - time.monotonic(), 1)))
                    except StepFailed as exc:
                        log.write(f"onFailure command of {step.name!r} failed: {exc}")
                raise
            record.update(state="SUCCEEDED", timeFinished=now_iso())
            self.runs.update(run_id, buildRunProgress=progress)
        return exported


def _checkout(repository: Path, commit: str, dest: Path) -> Path:
    if not re.fullmatch(r"[0-9a-fA-F]{7,64}", commit or ""):
        raise StepFailed(f"commitHash {commit!r} is not a commit hash")
    dest.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen(["git", "-C", str(repository), "archive", "--format=tar", commit],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as git:
        assert git.stdout is not None
        try:
            with tarfile.open(fileobj=git.stdout, mode="r|") as tar:
                tar.extractall(dest, filter="data")
        except tarfile.ReadError:
            pass
        error = git.stderr.read().decode(errors="replace").strip() if git.stderr else ""
    if git.returncode != 0:
        raise StepFailed(f"Unable to check out commit {commit} of the build source: {error.splitlines()[-1:]}")
    return dest


def _read_spec(source: Path, name: str) -> devops_spec.BuildSpec:
    path = source / name
    if not path.is_file():
        raise StepFailed(f"Build spec {name} not found in the primary build source")
    return devops_spec.parse(path.read_text())


def _environment(run, pipeline, arguments, spec, source: Path, workspace: Path) -> dict[str, str]:
    runner_bin = str(Path(sys.executable).parent)
    env = {"PATH": runner_bin + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
           "HOME": str(workspace / "home"), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
           "OCI_BUILD_RUN_ID": run["id"], "OCI_PIPELINE_ID": run["buildPipelineId"],
           "OCI_STAGE_ID": stage_id(run["buildPipelineId"]), "OCI_PRIMARY_SOURCE_DIR": str(source),
           "OCI_WORKSPACE_DIR": str(workspace), "OCI_TRIGGER_COMMIT_HASH": run["commitInfo"]["commitHash"],
           "OCI_TRIGGER_SOURCE_BRANCH_NAME": run["commitInfo"].get("repositoryBranch") or "",
           "OCI_TRIGGER_SOURCE_URL": run["commitInfo"].get("repositoryUrl") or ""}
    (workspace / "home").mkdir(parents=True, exist_ok=True)
    return env | spec.variables | pipeline.get("parameters", {}) | arguments


def _command(step: devops_spec.Command, env: dict[str, str], exported_names, source: Path, workspace: Path,
             log, canceled: threading.Event, timeout_s: float) -> dict[str, str]:
    """Run one command in bash; the exported variables it left set."""
    token = uuid.uuid4().hex[:8]
    script, exports = workspace / f"step-{token}.sh", workspace / f"step-{token}.exports"
    script.write_text(step.command)
    wrapper = DUMP % (" ".join(exported_names) or "__none", "set -e\n")
    process = subprocess.Popen([step.shell if step.shell == "bash" else "bash", "-c", wrapper], cwd=source,
                               env=env | {"LASTMILE_STEP": str(script), "LASTMILE_EXPORTS": str(exports)},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    reader = threading.Thread(target=_pump, args=(process, log), daemon=True)
    reader.start()
    deadline = time.monotonic() + max(timeout_s, 0)
    while process.poll() is None:
        if canceled.is_set() or time.monotonic() >= deadline:
            _kill(process)
            reader.join(5)
            if canceled.is_set():
                raise Canceled()
            raise StepFailed(f"Step {step.name or 'onFailure'!r} timed out after {round(timeout_s)} seconds")
        time.sleep(0.05)
    reader.join(5)
    if process.returncode != 0:
        raise StepFailed(f"Step {step.name or 'onFailure'!r} failed with exit code {process.returncode}")
    found = {}
    raw = exports.read_bytes() if exports.exists() else b""
    exports.unlink(missing_ok=True)  # exported values may hold a secret: not left on disk past the step
    for item in raw.split(b"\0"):
        name, sep, value = item.decode(errors="replace").partition("=")
        if sep:
            found[name] = value
    return found


def _pump(process: subprocess.Popen, log) -> None:
    assert process.stdout is not None
    for raw in process.stdout:
        log.write(raw.decode(errors="replace").rstrip("\n"))


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(5)


def _deliver(spec: devops_spec.BuildSpec, env: dict[str, str], source: Path) -> list[dict]:
    delivered = []
    for artifact in spec.output_artifacts:
        if artifact.type != "BINARY":
            raise StepFailed(f"Output artifact {artifact.name}: the stand-in delivers BINARY artifacts only")
        location = Path(re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), artifact.location))
        path = location if location.is_absolute() else source / location
        if not path.is_file():
            raise StepFailed(f"Output artifact {artifact.name} not found at {artifact.location}")
        data = path.read_bytes()
        try:
            pushed = json.loads(data)
        except ValueError:
            pushed = None
        if isinstance(pushed, dict) and pushed.get("ref") and pushed.get("digest"):
            delivered.append({"deployArtifactId": None, "outputArtifactName": artifact.name, "artifactType": "OCIR",
                              "deliveredArtifactHash": pushed["digest"], "imageUri": pushed["ref"]})
        else:
            delivered.append({"deployArtifactId": None, "outputArtifactName": artifact.name,
                              "artifactType": "GENERIC_ARTIFACT", "artifactRepositoryId": None,
                              "deliveredArtifactId": None, "path": artifact.location,
                              "version": "sha256:" + hashlib.sha256(data).hexdigest()})
    return delivered


def _mask(text: str, secrets: list[str]) -> str:
    for value in secrets:
        text = text.replace(value, MASK)
    return text


class _Log:
    """The run's lines in the Logging stand-in's store (what PutLogs writes), secrets masked."""

    def __init__(self, state: Path, log_id: str | None, pipeline_id: str, run_id: str):
        self.path = logging_dir(state) / f"{log_id}.jsonl" if log_id else None
        self.pipeline_id, self.run_id = pipeline_id, run_id
        self.masked: list[str] = []
        self._lock = threading.Lock()

    def write(self, message: str) -> None:
        if self.path is None:
            return
        moment = datetime.now(UTC).isoformat(timespec="milliseconds")
        text = _mask(message, self.masked)
        data = json.dumps({"message": text, "buildRunId": self.run_id, "event": "devops.build.log",
                           "level": "info", "fields": {"line": text}, "subject": self.run_id})
        line = {"id": uuid.uuid4().hex, "data": data, "time": moment, "source": self.pipeline_id,
                "type": "com.oraclecloud.devops.buildrun.log", "subject": self.run_id, "specversion": "1.0",
                "ingestedtime": moment}
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as out:
                out.write(json.dumps(line) + "\n")
