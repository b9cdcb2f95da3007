"""The run journal: ``<state_dir>/runs/<run-id>/journal.json``, rewritten atomically at every change.

Per stage it records status, start, end, inputs, outputs and error, so a run can be reproduced from
its journal and an interrupted run says so. A failed stage also records its diagnosis (cause and evidence,
:mod:`harness.domain.diagnosis`), as does the run's summary; journals written before diagnoses load as before.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.domain.diagnosis import Context, diagnose
from harness.domain.records import LogEvent
from harness.pipeline.stages import NAMES


@dataclass
class StageRecord:
    name: str
    status: str = "pending"  # pending | running | succeeded | skipped | failed | interrupted
    started: float | None = None
    ended: float | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    diagnosis: dict[str, str] | None = None
    """``{"cause", "evidence"}`` when the stage failed."""

    @property
    def seconds(self) -> float | None:
        return None if self.started is None or self.ended is None else self.ended - self.started


@dataclass
class RunRecord:
    run_id: str
    profile: str
    status: str = "running"  # running | succeeded | failed | interrupted | nothing-to-do
    started: float = field(default_factory=time.time)
    ended: float | None = None
    stages: dict[str, StageRecord] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        known = {f.name for f in fields(StageRecord)}
        stages = {n: StageRecord(**{k: v for k, v in s.items() if k in known})
                  for n, s in data.pop("stages", {}).items()}
        return cls(stages=stages, **data)


def new_run_id() -> str:
    """A run id: the local start time and four random hex digits (``20261127-141502-a3f9``)."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


class Journal:
    """Writes one run's record; ``on_change`` lets a live view redraw."""

    def __init__(self, runs_dir: Path, profile: str, on_change: Callable[[RunRecord], None] = lambda _: None,
                 emit: Callable[[LogEvent], None] = lambda _: None, run_id: str | None = None, **context: Any):
        """``emit`` receives an event at every stage change (the profile's LogSink); ``context`` (the profile's
        flavors and endpoints) is recorded in the summary from the start. ``run_id`` defaults to a new one."""
        run_id = run_id or new_run_id()
        self.path = runs_dir / run_id / "journal.json"
        self.record = RunRecord(run_id, profile, stages={n: StageRecord(n) for n in NAMES}, summary=dict(context))
        self._on_change = on_change
        self._emit = emit
        self.save()
        self.event("run.started", profile=profile)

    def event(self, name: str, level: str = "info", **fields: Any) -> None:
        """Send one event about this run to the log sink; a failing sink never fails the run."""
        try:
            self._emit(LogEvent(name, level, fields, subject=self.record.run_id, time=time.time()))
        except Exception as exc:  # the journal is the record; the sink is a copy for the platform's logs
            self.record.summary.setdefault("log_sink_errors", []).append(f"{type(exc).__name__}: {exc}"[:200])

    @contextmanager
    def stage(self, name: str, **inputs: Any) -> Iterator[StageRecord]:
        """Run a stage: the body fills ``outputs``; an exception marks it failed (or interrupted)."""
        rec = self.record.stages[name]
        rec.status, rec.started, rec.inputs = "running", time.time(), dict(inputs)
        self.save()
        self.event("stage.started", stage=name)
        try:
            yield rec
        except KeyboardInterrupt:
            rec.status, rec.error = "interrupted", "interrupted by the user (Ctrl-C)"
            raise
        except BaseException as exc:
            rec.status, rec.error = "failed", str(exc) or type(exc).__name__
            rec.diagnosis = diagnose(exc, Context(stage=name)).to_json()
            self.record.summary["diagnosis"] = {"stage": name, **rec.diagnosis}
            raise
        else:
            if rec.status == "running":
                rec.status = "succeeded"
        finally:
            rec.ended = time.time()
            self.save()
            failure = {"diagnosis": rec.diagnosis} if rec.status == "failed" else {}
            self.event(f"stage.{rec.status}", "error" if rec.status == "failed" else "info", stage=name,
                       seconds=round(rec.ended - rec.started, 3), error=(rec.error or "").partition("\n")[0][:300],
                       **failure)

    def skip(self, name: str, reason: str) -> None:
        rec = self.record.stages[name]
        rec.status, rec.error = "skipped", None
        rec.outputs["reason"] = reason
        self.save()

    def finish(self, status: str, **summary: Any) -> RunRecord:
        self.record.status, self.record.ended = status, time.time()
        self.record.summary.update(summary)
        self.save()
        self.event("run.finished", "error" if status in ("failed", "interrupted") else "info", status=status,
                   seconds=round(self.record.ended - self.record.started, 3))
        return self.record

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.record.to_json(), indent=2, default=str))
        os.replace(tmp, self.path)
        self._on_change(self.record)


def load(runs_dir: Path, run_id: str) -> RunRecord:
    path = runs_dir / run_id / "journal.json"
    return RunRecord.from_json(json.loads(path.read_text()))


def history(runs_dir: Path) -> list[RunRecord]:
    """All runs, newest first."""
    if not runs_dir.is_dir():
        return []
    runs = []
    for path in runs_dir.glob("*/journal.json"):
        try:
            runs.append(RunRecord.from_json(json.loads(path.read_text())))
        except (ValueError, TypeError):
            continue
    return sorted(runs, key=lambda r: r.started, reverse=True)


def last_good(runs_dir: Path, through: str = NAMES[-1]) -> RunRecord | None:
    """The newest run that succeeded at least as far as ``through``: a run stopped earlier (``--until``) did
    nothing after its last stage, so it is no base for what a run that goes further may skip."""
    needed = NAMES.index(through)
    return next((r for r in history(runs_dir) if r.status == "succeeded"
                 and NAMES.index(r.summary.get("until", NAMES[-1])) >= needed), None)
