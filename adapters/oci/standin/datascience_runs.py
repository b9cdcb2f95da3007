"""Data Science job runs carried out: each run gets a thread that pulls the job's image (a lastmile bundle) from the
OCIR stand-in by digest and runs it with the shared process runner (:mod:`adapters.shared.jobs`), so the run lives
in ``<lastmile state dir>/jobs/<job run OCID>/`` like a local run and the ``job:current`` process faults find it.
The thread follows the process, walks the run through OCI's states with OCI's lifecycle details, and copies each
line of the job's output into the run's log in the Logging stand-in.

What a run executes: the job's image's entrypoint module (or ``entrypoint: ["python", "-m", MODULE]``) with the
container's ``cmd`` followed by the split ``commandLineArguments`` (the run's override wins over the job's), in an
environment of the job's and then the run's environment variables, plus the variables OCI sets in a job run
(``JOB_RUN_OCID``, ``JOB_OCID``, ``PROJECT_OCID``, ``JOB_RUN_COMPARTMENT_OCID``). ``maximumRuntimeInMinutes`` is
enforced: a run past it is stopped and FAILED "Job run timed out". The registry is the image's host, over plain
HTTP on loopback only, logged in as ``registry_username`` with the password kept in the stand-in's own Vault under
``registry_password_secret``.
"""

from __future__ import annotations

import base64
import shlex
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from adapters.shared.distribution import DistributionRegistry
from adapters.shared.jobs import SubprocessJobRunner
from harness.domain.records import ArtifactRef, JobRun, JobSpec, JobState, Secret

from . import datascience as ds
from . import logging_api
from .files import read_json
from .objectstore import now_iso
from .vault import secrets_file

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
NO_LIMIT_S = 7 * 24 * 3600.0
ENTRY_TYPE = "com.oraclecloud.datascience.jobrun"
DETAILS = {
    "ACCEPTED": "Job run accepted",
    "IN_PROGRESS": "Job run artifact execution in progress",
    "SUCCEEDED": "Job run artifact execution succeeded",
    "CANCELING": "Job run cancellation in progress",
    "CANCELED": "Job run canceled",
    "TIMED_OUT": "Job run timed out",
}


@dataclass(frozen=True)
class RunSettings:
    """Where runs live and how they pull: ``jobs_dir`` is the lastmile state dir (runs in its ``jobs/``);
    ``minute_s`` is how long a minute of ``maximumRuntimeInMinutes`` lasts (60; tests shorten it)."""

    state: Path
    jobs_dir: Path
    registry_username: str = ""
    registry_password_secret: str = ""
    minute_s: float = 60.0
    poll_s: float = 0.1
    grace_s: float = 3.0


def lifecycle(run: JobRun) -> tuple[str, str]:
    """OCI's ``(lifecycleState, lifecycleDetails)`` for a run of the process runner."""
    if run.state is JobState.FAILED:
        if run.message.startswith("timed out"):
            return "FAILED", DETAILS["TIMED_OUT"]
        if run.message.startswith("could not pull"):
            return "FAILED", f"Job run bootstrap failure: the container image could not be pulled ({run.message})"
        if run.exit_code is not None and run.exit_code < 0:  # a signal: a container's 128 + N, as OCI reports it
            return "FAILED", (f"Job run artifact execution failed with exit code {128 - run.exit_code} "
                              f"(ended by signal {-run.exit_code})")
        if run.exit_code is not None:
            return "FAILED", f"Job run artifact execution failed with exit code {run.exit_code}"
        return "FAILED", f"Job run artifact execution failed: {run.message}"
    return run.state.value, DETAILS.get(run.state.value, "")


class _Runner(SubprocessJobRunner):
    """The process runner with the command replaced, for an ``entrypoint`` given in the job or for a drill."""

    def __init__(self, *args, program: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.program = program

    def command(self, module: str, args) -> list[str]:
        return self.program if self.program is not None else super().command(module, args)


class Executor:
    """Starts a thread per accepted run. ``update(run_id, **fields)`` is how it changes a run's record (the
    service's lock and persistence); ``canceled(run_id)`` tells it a cancel was asked for."""

    def __init__(self, settings: RunSettings, update, canceled):
        self.settings, self.update, self.canceled = settings, update, canceled

    def start(self, run: dict, job: dict, env: dict[str, str], resume: bool = False) -> None:
        """Carry ``run`` out in a thread of its own; ``resume``: follow a run a previous stand-in process started
        (its process lives on; output it wrote meanwhile stays in its ``job.log`` only)."""
        thread = threading.Thread(target=self._drive, args=(run, job, env, resume), daemon=True,
                                  name=f"jobrun-{run['id'][-8:]}")
        thread.start()

    def _drive(self, run: dict, job: dict, env: dict[str, str], resume: bool) -> None:
        try:
            if resume:
                self._resume(run)
            else:
                self._run(run, job, env)
        except Exception as exc:  # a bug of ours must still end the run, not leave it IN_PROGRESS for ever
            self.update(run["id"], lifecycleState="FAILED", timeFinished=now_iso(),
                        lifecycleDetails=f"Job run failed: internal error of the stand-in ({type(exc).__name__})")
            raise

    def _resume(self, run: dict) -> None:
        home = self.settings.jobs_dir / "jobs" / run["id"]
        if not (home / "run.json").is_file():
            self._end(run["id"], "FAILED", "Job run bootstrap failure: the service restarted before the run started")
            return
        runner = _Runner(None, self.settings.jobs_dir, poll_s=self.settings.poll_s, grace_s=self.settings.grace_s)
        log = home / "job.log"
        self._follow(runner, run, _LogCopy(self.settings, run, log, log.stat().st_size if log.is_file() else 0))

    def _run(self, run: dict, job: dict, env: dict[str, str]) -> None:
        run_id = run["id"]
        environment = run.get("jobEnvironmentConfigurationOverrideDetails") or job["jobEnvironmentConfigurationDetails"]
        host, repository, digest = ds.image_reference(environment)
        if host not in LOOPBACK_HOSTS and not host.startswith(("127.0.0.1:", "localhost:", "[::1]:")):
            self._end(run_id, "FAILED", f"Job run bootstrap failure: the container image could not be pulled "
                                        f"(the stand-in pulls from registries on 127.0.0.1 only, not {host})")
            return
        if self.canceled(run_id):
            self._end(run_id, "CANCELED", DETAILS["CANCELED"])
            return
        arguments = _arguments(run, job, environment)
        runner = _Runner(self._registry(host), self.settings.jobs_dir, program=self._program(environment, arguments),
                         poll_s=self.settings.poll_s, grace_s=self.settings.grace_s)
        spec = JobSpec(name=run.get("displayName") or run_id, artifact=ArtifactRef(host, repository, digest),
                       args=tuple(arguments), env=_environment(run, job, env),
                       timeout_s=self._timeout(run, job))
        runner.submit(spec, run_id=run_id)
        self._follow(runner, run, _LogCopy(self.settings, run, self.settings.jobs_dir / "jobs" / run_id / "job.log"))

    def _follow(self, runner: SubprocessJobRunner, run: dict, log: _LogCopy) -> None:
        """Poll the process until it ends (or cancel it once asked to), copying its output, moving the states."""
        run_id = run["id"]
        while True:
            if self.canceled(run_id):
                self.update(run_id, lifecycleState="CANCELING", lifecycleDetails=DETAILS["CANCELING"])
                ended = runner.cancel(run_id)
            else:
                ended = runner.get(run_id)
            log.copy(final=ended.state.terminal)
            if ended.state is JobState.IN_PROGRESS and run.get("timeStarted") is None:
                run["timeStarted"] = now_iso()
                self.update(run_id, lifecycleState="IN_PROGRESS", lifecycleDetails=DETAILS["IN_PROGRESS"],
                            timeStarted=run["timeStarted"])
            if ended.state.terminal:
                self._end(run_id, *lifecycle(ended))
                return
            time.sleep(self.settings.poll_s)

    def _end(self, run_id: str, state: str, details: str) -> None:
        self.update(run_id, lifecycleState=state, lifecycleDetails=details, timeFinished=now_iso())

    def _registry(self, host: str) -> DistributionRegistry:
        return DistributionRegistry(f"http://{host}", self.settings.registry_username, Secret(self._password()),
                                    f"the stand-in's Vault secret {self.settings.registry_password_secret!r}")

    def _password(self) -> str:
        """The registry password: the newest version of the Vault secret named in the settings ('' for none)."""
        name = self.settings.registry_password_secret
        records = read_json(secrets_file(self.settings.state), {"secrets": []})["secrets"]
        record = next((r for r in records if r["name"] == name and r["versions"]), None) if name else None
        return base64.b64decode(record["versions"][-1]["content"]).decode() if record else ""

    def _program(self, environment: dict, arguments: list[str]) -> list[str] | None:
        """The drill's command, or the job's entrypoint as this Python's, or None (the bundle's entrypoint)."""
        drills = ds.read_drills(self.settings.state)
        if drills.get("fail_exit_code"):
            code = int(drills["fail_exit_code"])
            return [sys.executable, "-c", f"import sys; print('lastmile drill: this job run fails with exit code "
                                          f"{code}', file=sys.stderr); sys.exit({code})"]
        if drills.get("hang"):
            return [sys.executable, "-c", "import time; print('lastmile drill: this job run hangs', flush=True); "
                                          "time.sleep(86400)"]
        entrypoint = environment.get("entrypoint") or []
        if len(entrypoint) >= 3 and Path(entrypoint[0]).name.startswith("python") and entrypoint[1] == "-m":
            return [sys.executable, "-m", *entrypoint[2:], *arguments]
        return None

    def _timeout(self, run: dict, job: dict) -> float:
        minutes = (run.get("jobConfigurationOverrideDetails") or {}).get("maximumRuntimeInMinutes") \
            or (job.get("jobConfigurationDetails") or {}).get("maximumRuntimeInMinutes")
        return minutes * self.settings.minute_s if minutes else NO_LIMIT_S


def _arguments(run: dict, job: dict, environment: dict) -> list[str]:
    override = run.get("jobConfigurationOverrideDetails") or {}
    configuration = job.get("jobConfigurationDetails") or {}
    line = override.get("commandLineArguments") or configuration.get("commandLineArguments") or ""
    return [*(environment.get("cmd") or []), *shlex.split(line)]


def _environment(run: dict, job: dict, env: dict[str, str]) -> dict[str, str]:
    return {**env, "JOB_RUN_OCID": run["id"], "JOB_OCID": job["id"], "PROJECT_OCID": run["projectId"],
            "JOB_RUN_COMPARTMENT_OCID": run["compartmentId"]}


class _LogCopy:
    """Copies the job's output, line by line as it is written, into the run's log (``logDetails``)."""

    def __init__(self, settings: RunSettings, run: dict, path: Path, offset: int = 0):
        self.settings, self.run, self.path, self.offset, self.partial = settings, run, path, offset, b""

    def copy(self, final: bool = False) -> None:
        """Copy the complete lines written since the last call (and, when ``final``, an unterminated last one)."""
        details = self.run.get("logDetails")
        if not details:
            return
        try:
            with self.path.open("rb") as source:
                source.seek(self.offset)
                chunk = source.read()
        except FileNotFoundError:
            return
        self.offset += len(chunk)
        *lines, self.partial = (self.partial + chunk).split(b"\n")
        if final and self.partial:
            lines, self.partial = [*lines, self.partial], b""
        logging_api.append_lines(self.settings.state, details["logId"], details["logGroupId"],
                                 self.run["compartmentId"], [line.decode("utf-8", "replace") for line in lines],
                                 source=self.run["id"], subject=self.run["id"], entry_type=ENTRY_TYPE)
