"""JobRunner as local subprocesses: each run pulls its bundle by digest and runs its entrypoint module.

Shared by the local ``subprocess`` flavor and the OCI API stand-in's Data Science job runs (which pass their own
run ids, the job run OCIDs, and may replace the command for a drill), so that both keep their runs in the same
place and the ``job:current`` process faults find either.

A run lives in ``<state_dir>/jobs/<run_id>/``: ``work/`` (the pulled bundle, the only code on the job's path),
``job.log`` (stdout and stderr), ``run.json`` (the state, readable from any process) and ``exit_code``, written
by a small ``sh`` wrapper when the job ends, so a run finishes correctly even if the submitter is gone.
The time limit is enforced by whoever looks at the run next (``get``, ``wait``); OCI Data Science enforces
its own. Environment values are never written anywhere: they may hold credentials.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil

from harness.domain.errors import LastmileError, UserError
from harness.domain.records import JobRun, JobSpec, JobState
from harness.infra.bundle import extract_bundle, fetch_bundle
from harness.infra.processes import same_process, stop_group

from .jobrecords import JobRecords, job_run

PASSTHROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")
"""The only variables the job inherits from the harness's own environment."""

# "$0" is the exit-code file; the job's command line follows as "$@". The no-op trap keeps the shell alive
# through the group's SIGTERM long enough to reap the job (a handler, unlike an ignore, is not inherited).
_WRAPPER = 'trap : TERM INT; "$@"; code=$?; echo "$code" > "$0.tmp" && mv "$0.tmp" "$0"; exit "$code"'


class SubprocessJobRunner(JobRecords):
    """JobRunner whose runs are process groups under ``<state_dir>/jobs/<run_id>/``; ``env`` reaches every job
    (after :data:`PASSTHROUGH_ENV`, before the spec's own), ``max_timeout_s`` caps a spec's time limit."""

    def __init__(self, registry, state_dir: Path, python: str = sys.executable, env: Mapping[str, str] | None = None,
                 max_timeout_s: float | None = None, poll_s: float = 0.1, grace_s: float = 5.0):
        self.registry = registry
        self.state_dir = Path(state_dir)
        self.python = python
        self.env = dict(env or {})
        self.max_timeout_s = max_timeout_s
        self.poll_s = poll_s
        self.grace_s = grace_s
        self._procs: dict[str, subprocess.Popen] = {}

    # the port ------------------------------------------------------------------------------------
    def submit(self, spec: JobSpec, run_id: str | None = None) -> JobRun:
        """Accept the run, pull its bundle into a clean work dir and start it; returns the ACCEPTED snapshot.
        ``run_id`` (no ``/``) names the run; a new ``jobrun-...`` id when not given."""
        run_id = run_id or f"jobrun-{uuid.uuid4().hex[:12]}"
        if "/" in run_id:
            raise UserError(f"job run id {run_id!r} may not contain '/'")
        timeout = min(spec.timeout_s, self.max_timeout_s) if self.max_timeout_s else spec.timeout_s
        record = self._new_record(run_id, spec.name, str(spec.artifact), list(spec.args), timeout)
        home = self._home(run_id)
        accepted = self._move(record, JobState.ACCEPTED)
        try:
            bundle = fetch_bundle(self.registry, spec.artifact)
            if not bundle.entrypoint:
                raise UserError(f"{spec.artifact} names no entrypoint module")
            extract_bundle(bundle.archive, home / "work")
        except LastmileError as exc:
            self._log(record, f"could not pull {spec.artifact}: {exc}")
            self._move(record, JobState.FAILED, message=f"could not pull bundle: {exc}")
            return accepted
        self._start(record, spec, bundle.entrypoint)
        return accepted

    def cancel(self, run_id: str) -> JobRun:
        """Stop a running job (CANCELING, then CANCELED); a finished run is returned unchanged."""
        record = self._refresh(self._load(run_id))
        if JobState(record["state"]).terminal:
            return job_run(record)
        self._move(record, JobState.CANCELING)
        self._kill(record)
        self._log(record, "canceled; process group stopped")
        return self._move(record, JobState.CANCELED, message="canceled")

    def command(self, module: str, args: tuple[str, ...] | list[str]) -> list[str]:
        """The job's command line: the bundle's entrypoint module run by :attr:`python` (a subclass may replace
        it, e.g. for a drill)."""
        return [self.python, "-m", module, *args]

    # internals -----------------------------------------------------------------------------------
    def _start(self, record: dict[str, Any], spec: JobSpec, module: str) -> None:
        home = self._home(record["run_id"])
        work = home / "work"
        env = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
        env.update(self.env)
        env.update(spec.env)
        # The pulled bundle is the only code on the path: the job never imports the harness's checkout.
        env.update(PYTHONPATH=str(work), PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1")
        self._log(record, f"run {record['run_id']} of {spec.name}: {spec.artifact}")
        program = self.command(module, spec.args)
        self._log(record, " ".join(["python", *program[1:]]))
        self._log(record, f"environment names: {', '.join(sorted(env))}")
        command = ["/bin/sh", "-c", _WRAPPER, str(home / "exit_code"), *program]
        with open(record["log_path"], "ab") as log:
            proc = subprocess.Popen(command, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self._procs[record["run_id"]] = proc
        started = time.time()
        self._move(record, JobState.IN_PROGRESS, pid=proc.pid, entrypoint=module, started_at=started,
                   deadline=started + record["timeout_s"], created=_create_time(proc.pid))

    def _refresh(self, record: dict[str, Any]) -> dict[str, Any]:
        """Move a running job on to its end state once it exited or overran its time limit."""
        if JobState(record["state"]) is not JobState.IN_PROGRESS:
            return record
        ended = self._exit_status(record)
        if ended is not None:
            code, message = ended
            state = JobState.SUCCEEDED if code == 0 else JobState.FAILED
            self._move(record, state, exit_code=code, message=message, ended_at=time.time())
        elif time.time() > record["deadline"]:
            self._kill(record)
            message = f"timed out after {record['timeout_s']:g} s"
            self._log(record, f"{message}; process group stopped")
            self._move(record, JobState.FAILED, message=message, ended_at=time.time())
        return record

    def _exit_status(self, record: dict[str, Any]) -> tuple[int | None, str] | None:
        """``(exit code, message)`` once the job ended, else None."""
        proc = self._procs.get(record["run_id"])
        if proc is not None and proc.poll() is None:
            return None
        exit_file = self._home(record["run_id"]) / "exit_code"
        if exit_file.is_file():
            code = int(exit_file.read_text().strip())
            return code, "" if code == 0 else f"exited with code {code}"
        if proc is not None:
            return proc.returncode, f"ended by signal {-proc.returncode}" if proc.returncode < 0 else \
                f"exited with code {proc.returncode}"
        if same_process(record["pid"], record["created"], tolerance=1.0):
            return None
        return None, "the job process ended without leaving an exit code"

    def _kill(self, record: dict[str, Any]) -> None:
        """SIGTERM the job's process group, then SIGKILL whatever is left after the grace period."""
        pid, proc = record.get("pid"), self._procs.get(record["run_id"])
        if pid is None:
            return
        stop_group(pid, self.grace_s, reap=proc.poll if proc is not None else None)
        if proc is not None:
            proc.wait(timeout=self.grace_s)


def _create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None
