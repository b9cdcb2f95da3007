"""Where a local JobRunner keeps its runs: ``<state_dir>/jobs/<run_id>/`` with ``run.json`` and ``job.log``.

Shared by the process runner (:mod:`adapters.shared.jobs`) and the container runner of the containers family, so
both keep their runs in the same place and shape: the drills (``job:current``), ``lastmile status`` and the
invariants read either without knowing which ran it. ``run.json`` is replaced atomically on every change, so
any process can read it; a runner says how a running job moves on by implementing :meth:`JobRecords._refresh`.
Environment values are never written here: they may hold credentials.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.domain.errors import NotFound
from harness.domain.records import JobRun, JobState


class JobRecords:
    """The run records and everything a runner answers from them alone (``get``, ``wait``, ``log_tail``,
    ``result``); subclasses set :attr:`state_dir` and :attr:`poll_s` and implement :meth:`_refresh`."""

    state_dir: Path
    poll_s: float = 0.1

    def get(self, run_id: str) -> JobRun:
        return job_run(self._refresh(self._load(run_id)))

    def wait(self, run_id: str, timeout_s: float | None = None) -> JobRun:
        """Poll until the run ends (its own time limit bounds this), or until ``timeout_s`` passes."""
        until = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            run = self.get(run_id)
            if run.state.terminal or (until is not None and time.monotonic() >= until):
                return run
            time.sleep(self.poll_s)

    def log_tail(self, run_id: str, lines: int = 20) -> str:
        record = self._load(run_id)
        if lines <= 0:
            return ""
        return "\n".join(read_text(Path(record["log_path"])).splitlines()[-lines:])

    def result(self, run_id: str) -> dict | None:
        """The last JSON object the job printed on a line of its own (its machine-readable result), if any."""
        self._load(run_id)
        for line in reversed(self.log_tail(run_id, 1_000_000).splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    value = json.loads(line)
                except ValueError:
                    continue
                if isinstance(value, dict):
                    return value
        return None

    # for the runners -----------------------------------------------------------------------------
    def _refresh(self, record: dict[str, Any]) -> dict[str, Any]:
        """Move a running job on to its end state once it ended or overran its time limit."""
        raise NotImplementedError

    def _new_record(self, run_id: str, name: str, artifact: str, args: list[str], timeout_s: float,
                    **extra: Any) -> dict[str, Any]:
        home = self._home(run_id)
        home.mkdir(parents=True)
        return {"run_id": run_id, "name": name, "artifact": artifact, "args": args, "timeout_s": timeout_s,
                "log_path": str(home / "job.log"), "states": [], "exit_code": None, "message": "", **extra}

    def _home(self, run_id: str) -> Path:
        return self.state_dir / "jobs" / run_id

    def _load(self, run_id: str) -> dict[str, Any]:
        path = self._home(run_id) / "run.json"
        if "/" in run_id or not path.is_file():
            raise NotFound(f"job run {run_id} not found")
        return json.loads(path.read_text())

    def _move(self, record: dict[str, Any], state: JobState, **changes: Any) -> JobRun:
        record.update(changes, state=state.value)
        record["states"].append(state.value)
        self._save(record)
        return job_run(record)

    def _save(self, record: dict[str, Any]) -> None:
        path = self._home(record["run_id"]) / "run.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
        os.replace(tmp, path)

    def _log(self, record: dict[str, Any], line: str) -> None:
        with open(record["log_path"], "a", encoding="utf-8") as log:
            log.write(f"[lastmile] {line}\n")


def job_run(record: Mapping[str, Any]) -> JobRun:
    return JobRun(run_id=record["run_id"], name=record["name"], state=JobState(record["state"]),
                  exit_code=record.get("exit_code"), log_path=record["log_path"], message=record.get("message", ""))


def read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
