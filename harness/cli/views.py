"""Rich views of runs: the live stage table, the run listings, and the lines that end a failed run."""

from __future__ import annotations

import time
from typing import Any

from rich.markup import escape
from rich.table import Table

from harness.domain.diagnosis import diagnose
from harness.domain.errors import LastmileError
from harness.domain.records import LogEvent
from harness.pipeline.journal import RunRecord

_STYLE = {"succeeded": "green", "running": "yellow", "failed": "red", "interrupted": "red",
          "skipped": "dim", "pending": "dim", "nothing-to-do": "cyan"}

_KEY_OUTPUTS = {
    "trigger": ("commit", "reason"),
    "build": ("training", "serving"),
    "artifacts": ("uri",),
    "training": ("state", "model_version", "metrics"),
    "registry": ("reason",),
    "deployment": ("revision", "model_version", "ready", "endpoint"),
    "observation": ("model_version", "total"),
}


def stage_table(run: RunRecord) -> Table:
    table = Table(title=f"run {run.run_id} ({run.profile}): [{_STYLE.get(run.status, '')}]{run.status}[/]")
    for column in ("stage", "status", "seconds", "details"):
        table.add_column(column, overflow="fold")
    for stage in run.stages.values():
        seconds = stage.seconds if stage.seconds is not None else (
            time.time() - stage.started if stage.started else None)
        if stage.error:
            cause = f"[{stage.diagnosis['cause']}] " if stage.diagnosis else ""
            details = cause + stage.error.splitlines()[0]
        else:
            details = _details(stage.name, stage.outputs)
        table.add_row(stage.name, f"[{_STYLE.get(stage.status, '')}]{stage.status}[/]",
                      "" if seconds is None else f"{seconds:.1f}", escape(details))
    return table


def runs_table(runs: list[RunRecord]) -> Table:
    table = Table(title="runs (newest first)")
    for column in ("run", "profile", "status", "started", "seconds", "commit", "model version"):
        table.add_column(column)
    for run in runs:
        seconds = f"{run.ended - run.started:.1f}" if run.ended else ""
        table.add_row(run.run_id, run.profile, f"[{_STYLE.get(run.status, '')}]{run.status}[/]",
                      time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.started)), seconds,
                      str(run.summary.get("commit", ""))[:12], str(run.summary.get("model_version", "")))
    return table


def _details(stage: str, outputs: dict[str, Any]) -> str:
    parts = []
    for key in _KEY_OUTPUTS.get(stage, ()):
        if key not in outputs:
            continue
        value = outputs[key]
        if isinstance(value, dict) and "digest" in value:
            value = value["digest"][:19] + (" (rebuilt)" if value.get("rebuilt") else " (cached)")
        elif key == "total" and isinstance(value, dict):
            value = f"{value['health']}, error rate {value['error_rate']:.1%}"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items())
        elif key == "commit":
            value = str(value)[:12]
        parts.append(f"{key}: {value}")
    return "; ".join(parts)


def events_table(run_id: str, events: list[LogEvent]) -> Table:
    table = Table(title=f"events of run {run_id} (the profile's log sink)")
    for column in ("time", "level", "event", "details"):
        table.add_column(column, overflow="fold")
    for e in events:
        details = ", ".join(f"{k}={v}" for k, v in e.fields.items() if v not in ("", None))
        table.add_row(time.strftime("%H:%M:%S", time.localtime(e.time)), e.level, e.event, escape(details))
    return table


def error_lines(exc: LastmileError, run: RunRecord | None = None) -> list[str]:
    """How ``lastmile run`` ends on an error: ``lastmile: error: [<cause>] <message>``, the evidence, then the
    rest of the message (a failed job's log tail). The run's journal holds the diagnosis when a stage failed;
    otherwise the error is diagnosed here."""
    recorded = run.summary.get("diagnosis") if run is not None else None
    diagnosis = recorded if isinstance(recorded, dict) else diagnose(exc).to_json()
    text = exc.line() if hasattr(exc, "line") else str(exc)
    first, *rest = text.splitlines() or [type(exc).__name__]
    return [f"lastmile: error: [{diagnosis['cause']}] {first}", f"evidence: {diagnosis['evidence']}", *rest]


def why_nothing(run: RunRecord, runs: list[RunRecord]) -> str:
    """Why a run found nothing to do although the one before it did not succeed: the last run that did
    something (``runs`` newest first, ``run`` among them or not) failed or was interrupted, and only
    ``--force`` runs it again, since nothing changed since the last good commit."""
    before = [r for r in runs if r.run_id != run.run_id and r.started <= run.started]
    last = next((r for r in before if r.status != "nothing-to-do"), None)
    if last is not None and last.status in ("failed", "interrupted"):
        return f"(the last run, {last.run_id}, {last.status}: `lastmile run --force` runs it again)"
    return "(--force runs anyway)"
