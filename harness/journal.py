"""The run journal: ``<state_dir>/runs/<run-id>/journal.json``, rewritten atomically at every change.

Per stage it records status, start, end, inputs, outputs and error, so a run can be reproduced from
its journal and an interrupted run says so.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

STAGES = ("trigger", "build", "artifacts", "training", "registry", "deployment", "observation")


@dataclass
class StageRecord:
    name: str
    status: str = "pending"  # pending | running | succeeded | skipped | failed | interrupted
    started: float | None = None
    ended: float | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

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
    def from_json(cls, data: dict[str, Any]) -> "RunRecord":
        stages = {n: StageRecord(**s) for n, s in data.pop("stages", {}).items()}
        return cls(stages=stages, **data)


class Journal:
    """Writes one run's record; ``on_change`` lets a live view redraw."""

    def __init__(self, runs_dir: Path, profile: str, stages: tuple[str, ...] = STAGES,
                 on_change: Callable[[RunRecord], None] = lambda _: None):
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
        self.path = runs_dir / run_id / "journal.json"
        self.record = RunRecord(run_id, profile, stages={n: StageRecord(n) for n in stages})
        self._on_change = on_change
        self.save()

    @contextmanager
    def stage(self, name: str, **inputs: Any) -> Iterator[StageRecord]:
        """Run a stage: the body fills ``outputs``; an exception marks it failed (or interrupted)."""
        rec = self.record.stages[name]
        rec.status, rec.started, rec.inputs = "running", time.time(), dict(inputs)
        self.save()
        try:
            yield rec
        except KeyboardInterrupt:
            rec.status, rec.error = "interrupted", "interrupted by the user (Ctrl-C)"
            raise
        except BaseException as exc:
            rec.status, rec.error = "failed", str(exc) or type(exc).__name__
            raise
        else:
            if rec.status == "running":
                rec.status = "succeeded"
        finally:
            rec.ended = time.time()
            self.save()

    def skip(self, name: str, reason: str) -> None:
        rec = self.record.stages[name]
        rec.status, rec.error = "skipped", None
        rec.outputs["reason"] = reason
        self.save()

    def finish(self, status: str, **summary: Any) -> RunRecord:
        self.record.status, self.record.ended = status, time.time()
        self.record.summary.update(summary)
        self.save()
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


def last_good(runs_dir: Path) -> RunRecord | None:
    return next((r for r in history(runs_dir) if r.status == "succeeded"), None)
