"""JobRunner ``container``: a job run is a container of the training image, run by digest with the spec's arguments.

Runs are kept exactly as the process runner keeps them (:mod:`adapters.shared.jobrecords`): ``run.json`` and
``job.log`` under ``<state_dir>/jobs/<run_id>/``, OCI Data Science job-run states, the time limit enforced by
whoever looks at the run next, so any process can follow a run. The container:

- runs ``<registry>/<repo>@sha256:...`` (pulled with the registry login when the engine lacks it) with the image's
  own ENTRYPOINT and USER, and the spec's args as its command;
- shares the host's network (``network_mode="host"``), so the job reaches the stand-ins at 127.0.0.1 through the
  fault proxy as a process job does;
- gets the runner's environment (:func:`adapters.shared.jobenv.job_environment`) and the spec's through the
  engine's API, never on a command line; names only are logged. The engine keeps them in the container's config
  until the container is removed, which happens as soon as the run ends and its output is copied to ``job.log``;
- runs under ``docker-init`` (``init=True``), which passes the stop signal on to the job: a cancel is a SIGTERM,
  then a SIGKILL after ``grace_s``, as for a process job;
- is named ``lastmile-<run_id>`` and labelled ``lastmile.job-run`` and ``lastmile.state-dir``.

``run.json`` also holds ``pid`` and ``created`` of the job's own process (docker-init's child, the leader of its
process group) when the engine shares this machine's process table, so the ``job:current`` process faults find
a container job as they find a process job; ``container_id`` is there for faults that go through the engine.
"""

from __future__ import annotations

import fcntl
import shlex
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from adapters.shared.jobrecords import JobRecords, job_run, read_text
from harness.domain.errors import LastmileError, NotFound, UserError
from harness.domain.records import ArtifactRef, JobRun, JobSpec, JobState

from .builder import RegistryLogin
from .engine import STATE_DIR_LABEL, docker_client, engine_errors, state_dir_label

RUN_LABEL = "lastmile.job-run"
ENDED = ("exited", "dead")
_PID_WAIT_S = 2.0


class ContainerJobRunner(JobRecords):
    """JobRunner whose runs are containers; ``env`` reaches every job (before the spec's own), ``login`` pulls
    images the engine lacks, ``max_timeout_s`` caps a spec's time limit."""

    def __init__(self, state_dir: Path, login: RegistryLogin | None = None, env: Mapping[str, str] | None = None,
                 max_timeout_s: float | None = None, poll_s: float = 0.2, grace_s: float = 5.0, client: Any = None):
        self.state_dir = Path(state_dir)
        self.login = login
        self.env = dict(env or {})
        self.max_timeout_s = max_timeout_s
        self.poll_s = poll_s
        self.grace_s = grace_s
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = docker_client()
        return self._client

    # the port ------------------------------------------------------------------------------------
    def submit(self, spec: JobSpec, run_id: str | None = None) -> JobRun:
        """Accept the run, pull its image when the engine lacks it and start its container; returns the ACCEPTED
        snapshot. ``run_id`` (no ``/``) names the run; a new ``jobrun-...`` id when not given."""
        run_id = run_id or f"jobrun-{uuid.uuid4().hex[:12]}"
        if "/" in run_id:
            raise UserError(f"job run id {run_id!r} may not contain '/'")
        if not spec.artifact.digest.startswith("sha256:"):
            raise UserError(f"{spec.artifact}: container jobs run images by digest, not by tag")
        timeout = min(spec.timeout_s, self.max_timeout_s) if self.max_timeout_s else spec.timeout_s
        record = self._new_record(run_id, spec.name, str(spec.artifact), list(spec.args), timeout,
                                  runner="container", container=f"lastmile-{run_id}")
        accepted = self._move(record, JobState.ACCEPTED)
        try:
            self._ensure_image(spec.artifact)
        except LastmileError as exc:
            self._log(record, f"could not pull {spec.artifact}: {exc}")
            self._move(record, JobState.FAILED, message=f"could not pull image: {exc}")
            return accepted
        self._start(record, spec)
        return accepted

    def cancel(self, run_id: str) -> JobRun:
        """Stop a running job (CANCELING, then CANCELED: SIGTERM, SIGKILL after the grace period, output kept,
        container removed); a finished run is returned unchanged."""
        record = self._refresh(self._load(run_id))
        if JobState(record["state"]).terminal:
            return job_run(record)
        with self._exclusive(run_id):
            record = self._load(run_id)
            if JobState(record["state"]).terminal:
                return job_run(record)
            self._move(record, JobState.CANCELING)
            self._end_container(record, stop=True)
            self._log(record, "canceled; container stopped and removed")
            return self._move(record, JobState.CANCELED, message="canceled", ended_at=time.time())

    def log_tail(self, run_id: str, lines: int = 20) -> str:
        """The last lines of the run's log: lastmile's notes and, once the run ended, the container's output; while
        it runs, the output so far, read from the engine."""
        record = self._load(run_id)
        if lines <= 0:
            return ""
        text = read_text(Path(record["log_path"]))
        if record["state"] in (JobState.IN_PROGRESS, JobState.CANCELING) and record.get("container_id"):
            live = self._live_output(record["container_id"], lines)
            text = text + live if live is not None else read_text(Path(record["log_path"]))
        return "\n".join(text.splitlines()[-lines:])

    # internals -----------------------------------------------------------------------------------
    def _ensure_image(self, artifact: ArtifactRef) -> None:
        ref = str(artifact)
        try:
            with engine_errors(f"looking up {ref}"):
                self.client.images.get(ref)
            return
        except NotFound:
            pass
        auth = self.login.auth_config() if self.login else None
        with engine_errors(f"pulling {ref}"):
            for chunk in self.client.api.pull(f"{artifact.registry}/{artifact.repository}", tag=artifact.digest,
                                              auth_config=auth, stream=True, decode=True):
                if "error" in chunk:
                    raise LastmileError(f"pulling {ref}: {str(chunk['error']).strip()}")
            self.client.images.get(ref)

    def _start(self, record: dict[str, Any], spec: JobSpec) -> None:
        run_id, name = record["run_id"], record["container"]
        env = {**self.env, **spec.env}
        self._log(record, f"run {run_id} of {spec.name}: {spec.artifact}")
        self._log(record, f"container {name}: <image entrypoint> {shlex.join(spec.args)}")
        self._log(record, f"environment names: {', '.join(sorted(env))}")
        labels = {RUN_LABEL: run_id, STATE_DIR_LABEL: state_dir_label(self.state_dir)}
        container = None
        try:
            with self._exclusive(run_id):
                if self._load(run_id)["state"] != JobState.ACCEPTED:
                    return  # canceled while its image was pulled
                with engine_errors(f"starting container {name}"):
                    container = self.client.containers.create(
                        str(spec.artifact), command=list(spec.args), name=name, environment=env,
                        network_mode="host", labels=labels, init=True, detach=True, stdin_open=False, tty=False)
                    container.start()
                started = time.time()
                pid, created = self._job_process(container)
                self._move(record, JobState.IN_PROGRESS, container_id=container.id, started_at=started,
                           deadline=started + record["timeout_s"], pid=pid, created=created)
        except LastmileError as exc:
            self._log(record, f"could not start the container: {exc}")
            if container is not None:
                self._remove(container)
            self._move(record, JobState.FAILED, message=f"could not start the container: {exc}")

    def _refresh(self, record: dict[str, Any]) -> dict[str, Any]:
        """Move a running job on to its end state once its container ended, vanished or overran the time limit."""
        if JobState(record["state"]) is not JobState.IN_PROGRESS:
            return record
        status = self._status(record["container_id"])
        overdue = time.time() > record["deadline"]
        if status is not None and status.get("Status") not in ENDED and not overdue:
            return record
        with self._exclusive(record["run_id"]):
            record = self._load(record["run_id"])
            if JobState(record["state"]) is not JobState.IN_PROGRESS:
                return record  # another process moved it on meanwhile
            status = self._status(record["container_id"])
            if status is None:
                self._log(record, "the job's container is gone: it was removed outside lastmile before it ended, "
                                  "and its output went with it")
                self._move(record, JobState.FAILED, message="the job's container was removed before it ended",
                           ended_at=time.time())
            elif status.get("Status") in ENDED:
                code = int(status.get("ExitCode", -1))
                self._end_container(record, stop=False)
                self._move(record, JobState.SUCCEEDED if code == 0 else JobState.FAILED, exit_code=code,
                           message=_exit_message(code, status), ended_at=time.time())
            else:
                message = f"timed out after {record['timeout_s']:g} s"
                self._end_container(record, stop=True)
                self._log(record, f"{message}; container stopped and removed")
                self._move(record, JobState.FAILED, message=message, ended_at=time.time())
        return record

    def _status(self, container_id: str) -> dict[str, Any] | None:
        """The container's ``State`` as the engine reports it; None once the container is gone."""
        try:
            with engine_errors(f"inspecting container {container_id[:12]}"):
                return self.client.api.inspect_container(container_id)["State"]
        except NotFound:
            return None

    def _end_container(self, record: dict[str, Any], stop: bool) -> None:
        """Stop the container when asked, append its whole output to ``job.log`` and remove it."""
        container_id = record.get("container_id")
        if not container_id:
            return
        try:
            with engine_errors(f"container {container_id[:12]}"):
                container = self.client.containers.get(container_id)
        except NotFound:
            self._log(record, "the job's container was already gone; its output went with it")
            return
        if stop:
            with engine_errors(f"stopping container {container_id[:12]}"):
                container.stop(timeout=int(self.grace_s))
        try:
            with engine_errors(f"reading the output of container {container_id[:12]}"):
                output = container.logs(stdout=True, stderr=True)
            with open(record["log_path"], "ab") as log:
                log.write(output)
        except LastmileError as exc:
            self._log(record, f"the container's output could not be read: {exc}")
        self._remove(container)

    def _remove(self, container: Any) -> None:
        try:
            with engine_errors(f"removing container {container.id[:12]}"):
                container.remove(force=True, v=True)
        except NotFound:
            pass

    def _live_output(self, container_id: str, lines: int) -> str | None:
        """The last ``lines`` lines the running container printed; None once it is gone."""
        try:
            with engine_errors(f"reading the output of container {container_id[:12]}"):
                return self.client.api.logs(container_id, stdout=True, stderr=True, tail=lines).decode(
                    "utf-8", errors="replace")
        except NotFound:
            return None

    def _job_process(self, container: Any) -> tuple[int | None, float | None]:
        """The job's own process, docker-init's child, as this machine sees it: ``(pid, create time)``, or
        ``(None, None)`` when the engine runs elsewhere (a VM) and its processes are not ours to see."""
        with engine_errors(f"inspecting container {container.id[:12]}"):
            container.reload()
        attrs = container.attrs
        argv = [attrs.get("Path", ""), *(attrs.get("Args") or [])]
        until = time.monotonic() + _PID_WAIT_S
        try:
            init = psutil.Process(int(attrs["State"]["Pid"]))
            if init.cmdline()[-len(argv):] != argv:
                return None, None  # a process of this machine that happens to have the pid the engine reported
            while True:
                children = [child for child in init.children() if child.cmdline() == argv]
                if children:
                    return children[0].pid, children[0].create_time()
                if time.monotonic() >= until:
                    return None, None
                time.sleep(0.02)
        except (psutil.Error, KeyError, ValueError):
            return None, None

    @contextmanager
    def _exclusive(self, run_id: str) -> Iterator[None]:
        """One process at a time moves a run on (an advisory lock beside its record), so two lookers do not both
        copy the output or both stop the container."""
        with open(self._home(run_id) / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield


def _exit_message(code: int, state: Mapping[str, Any]) -> str:
    if code == 0:
        return ""
    if state.get("OOMKilled"):
        return f"exited with code {code}: killed for memory (OOM)"
    if code > 128:  # worded as the process runner and OCI say it, which the diagnosis reads (SIGKILL: capacity)
        return f"exited with code {code} (ended by signal {code - 128})"
    return f"exited with code {code}"
