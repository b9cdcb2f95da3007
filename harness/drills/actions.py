"""The actions of lastmile's Chaos Toolkit extension: faults, pipeline runs, stand-ins and alias moves.

A drill calls them as python providers, e.g.::

    - type: action
      name: kill-mlflow
      provider: {type: python, module: harness.drills.actions, func: inject,
                 arguments: {kind: process, target: mlflow, action: kill}}

Each takes JSON-able keyword arguments and the ``configuration`` chaoslib passes, and returns JSON. Faults go
through the profile's FaultInjector port only, and each one is remembered in the drill's context
(:mod:`harness.drills.context`) so that the runner can check its evidence and revert it if the rollbacks did not.
A pipeline that fails is a result (``status: failed``), never an exception: the hypothesis decides.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.domain.errors import LastmileError
from harness.domain.promotion import promote as promote_alias
from harness.domain.promotion import rollback as rollback_alias
from harness.domain.records import FaultSpec
from harness.drills.catalog import action
from harness.drills.context import current, forget, harness_for
from harness.pipeline import journal as journal_mod
from harness.pipeline.journal import RunRecord
from harness.pipeline.runner import Pipeline, RunOptions
from harness.pipeline.stages import NAMES, through

log = logging.getLogger("lastmile.drills")

Configuration = Mapping[str, Any] | None
POLL_S = 0.2


@action
def inject(kind: str, target: str, action: str, params: dict | None = None, label: str = "",
           configuration: Configuration = None) -> dict[str, Any]:
    """Inject one fault through the FaultInjector port (kinds and actions: harness.domain.faults.ACTIONS);
    ``label`` names it for a later ``revert`` or ``fault_took_effect``. Returns ``{"fault_id", "detail"}``."""
    h = harness_for(configuration)
    handle = h.fault_injector.inject(FaultSpec(kind, target, action, dict(params or {})))
    current().remember(handle, label)
    log.info("injected %s %s on %s: %s", kind, action, target, handle.id)
    return {"fault_id": handle.id, "detail": handle.detail}


@action
def revert(fault_id: str | None = None, configuration: Configuration = None) -> list[dict[str, Any]]:
    """Revert one fault (by id or label) or, without ``fault_id``, every fault this drill injected and has not
    reverted yet. Returns each fault's evidence: ``[{"fault_id", "took_effect", "detail"}]``."""
    h, context = harness_for(configuration), current()
    if fault_id is None:
        ids = [f.handle.id for f in context.unsettled()]
    else:
        known = context.find(fault_id)
        ids = [known.handle.id if known else fault_id]
    out = []
    for one in ids:
        evidence = h.fault_injector.revert(one)
        context.settled(one, evidence, "drill")
        out.append({"fault_id": one, "took_effect": evidence.took_effect, "detail": evidence.detail})
    return out


@action
def revert_all(configuration: Configuration = None) -> list[dict[str, Any]]:
    """Revert every active fault of the profile, this drill's or not (what ``lastmile drill revert`` does)."""
    h, context = harness_for(configuration), current()
    out = []
    for handle in h.fault_injector.active():
        evidence = h.fault_injector.revert(handle.id)
        context.settled(handle.id, evidence, "drill")
        out.append({"fault_id": handle.id, "took_effect": evidence.took_effect, "detail": evidence.detail})
    return out


@action
def run_pipeline(force: bool = True, until: str = NAMES[-1], configuration: Configuration = None) -> dict[str, Any]:
    """Run the pipeline through ``until``. Returns ``{"status", "run_id", "failed_stage", "error", "diagnosis"}``;
    a failed stage is reported there (with its diagnosis when the journal has one), not raised."""
    h = harness_for(configuration)
    seen: list[RunRecord] = []
    context = current()
    drill, context.pipeline_started = context.drill, time.time()
    pipeline = Pipeline(h, on_change=seen.append)
    try:
        record = pipeline.run(RunOptions(force=force, until=until, context={"drill": drill} if drill else {}))
        error = None
    except LastmileError as exc:
        if not seen:
            raise
        record, error = seen[-1], str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    summary = summarize(record)
    summary["error"] = error or summary["error"]
    log.info("pipeline run %s: %s", summary["run_id"], summary["status"])
    return summary


def summarize(record: RunRecord | None) -> dict[str, Any]:
    """A run as drills see it: status, id, the failed stage, its error's first line and its diagnosis."""
    if record is None:
        return {"status": None, "run_id": None, "failed_stage": None, "error": None, "diagnosis": None}
    stages = record.to_json()["stages"]
    failed = next((name for name, stage in stages.items() if stage["status"] == "failed"), None)
    stage = stages.get(failed, {}) if failed else {}
    error = (stage.get("error") or "").splitlines()[0] if stage.get("error") else None
    diagnosis = stage.get("diagnosis") or record.summary.get("diagnosis")
    return {"status": record.status, "run_id": record.run_id, "failed_stage": failed, "error": error,
            "diagnosis": diagnosis}


@action
def wait_for_stage(stage: str, timeout_s: float = 300.0, configuration: Configuration = None) -> dict[str, Any]:
    """Wait until the pipeline run this drill started last (with a background ``run_pipeline``; without one, a
    run started from now on) has started ``stage``, or has ended before it. Returns ``{"run_id", "stage",
    "status"}``; raises ``TimeoutError`` after ``timeout_s``."""
    through(stage)  # a ValueError naming the stages, before any waiting
    h, since = harness_for(configuration), current().pipeline_started or time.time()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = _newest_since(h.settings.state_dir / "runs", since)
        if run is not None:
            status = run.stages[stage].status if stage in run.stages else "pending"
            if status != "pending" or run.status != "running":
                return {"run_id": run.run_id, "stage": stage, "status": status}
        time.sleep(POLL_S)
    raise TimeoutError(f"no pipeline run reached stage {stage} within {timeout_s:g} s")


@action
def wait_for_run(timeout_s: float = 600.0, configuration: Configuration = None) -> dict[str, Any]:
    """Wait until the pipeline run this drill started last (with a background ``run_pipeline``; without one, a
    run started from now on) has ended; returns it as ``last_run`` does. Raises ``TimeoutError`` after
    ``timeout_s``."""
    h, since = harness_for(configuration), current().pipeline_started or time.time()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = _newest_since(h.settings.state_dir / "runs", since)
        if run is not None and run.status != "running":
            return summarize(run)
        time.sleep(POLL_S)
    raise TimeoutError(f"no pipeline run ended within {timeout_s:g} s")


def _newest_since(runs_dir: Path, since: float) -> RunRecord | None:
    runs = journal_mod.history(runs_dir)
    return runs[0] if runs and runs[0].started >= since else None


@action
def standins(action: str, configuration: Configuration = None) -> dict[str, Any]:
    """``up``: start (or reuse) the profile's stand-ins; ``down``: stop them all. Returns each one's state."""
    h = harness_for(configuration)
    if action == "up":
        statuses = h.supervisor.up(h.standins())
        result: dict[str, Any] = {"action": "up", "standins": {s.name: s.state for s in statuses}}
    elif action == "down":
        result = {"action": "down", "stopped": h.supervisor.down()}
    else:
        raise ValueError(f"standins: action {action!r} is not one of up, down")
    forget()  # stand-ins may come back on other ports: ports built from the old endpoints must not be reused
    return result


@action
def promote(version: str, configuration: Configuration = None) -> dict[str, Any]:
    """Make model ``version`` the @champion (the old one becomes @previous), as ``lastmile model promote``."""
    h = harness_for(configuration)
    move = promote_alias(h.model_registry, h.settings.model.name, str(version))
    return {"champion": move.champion, "previous": move.previous}


@action
def rollback_model(configuration: Configuration = None) -> dict[str, Any]:
    """Swap @champion back to @previous, as ``lastmile model rollback``."""
    h = harness_for(configuration)
    move = rollback_alias(h.model_registry, h.settings.model.name)
    return {"champion": move.champion, "previous": move.previous}
