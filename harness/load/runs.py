"""One load run from start to result: its folder (``<state_dir>/loads/<id>/``), the rows its requests carry, the
deployment's view before and after, the gates, and result.json with lastmile's report beside it."""

from __future__ import annotations

import importlib
import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from harness.bootstrap import Harness
from harness.domain.errors import LastmileError, UserError
from harness.domain.promotion import CHAMPION
from harness.load import payloads, replicas, results
from harness.load.engine import LocustRun
from harness.load.scenario import Scenario
from harness.pipeline import datasets
from harness.pipeline import journal as journal_mod
from harness.pipeline.delivery import reference_of

log = logging.getLogger("lastmile.load")


def new_folder(state_dir: Path, name: str) -> tuple[str, Path]:
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{name}-{uuid.uuid4().hex[:4]}"
    folder = state_dir / "loads" / run_id
    folder.mkdir(parents=True)
    return run_id, folder


def rows(h: Harness | None, source: str) -> tuple[list[dict[str, float]], str]:
    """Feature rows for the requests and where they came from: the champion's reference rows (``reference``), or
    the training data set: the last good run's, else the one the training stage seeds (iris)."""
    if source == "reference":
        if h is None:
            raise UserError("payloads.rows: reference needs the profile's model registry", exit_code=2)
        champion = h.model_registry.by_alias(h.settings.model.name, CHAMPION)
        if champion is None:
            raise UserError(f"model {h.settings.model.name} has no @{CHAMPION}", hint="run `lastmile run` first")
        return [dict(r) for r in reference_of(champion).rows], f"@{CHAMPION} {champion.version} reference rows"
    if h is not None:
        last = journal_mod.last_good(h.settings.state_dir / "runs")
        uri = ((last.summary.get("dataset") or {}).get("uri") or "") if last else ""
        if uri.startswith("s3://"):
            bucket, key = uri.removeprefix("s3://").split("/", 1)
            try:
                return payloads.rows_of_csv(h.object_store.get(bucket, key)), uri
            except LastmileError as exc:
                log.warning("the last good run's data set %s: %s; using the default data set", uri, exc)
    return payloads.rows_of_csv(datasets.iris_csv()), "the default training data set (iris)"


class DeploymentView:
    """The deployment's replicas before and after a run, for result.json (nothing when there is no deployment)."""

    def __init__(self, h: Harness | None):
        self.h = h
        self.start: dict[str, dict[str, Any]] = {}

    def _snapshot(self) -> dict[str, dict[str, Any]]:
        if self.h is None:
            return {}
        try:
            return replicas.snapshot(self.h.deployer, self.h.settings.project)
        except LastmileError as exc:
            log.warning("replica metrics: %s", exc)
            return {}

    def begin(self) -> None:
        self.start = self._snapshot()

    def end(self) -> dict[str, Any]:
        """``replicas`` and ``served_by`` of result.json."""
        if self.h is None:
            return {"replicas": [], "served_by": None}
        compared = replicas.compare(self.start, self._snapshot())
        try:
            served = replicas.served_by(self.h.deployer, self.h.settings.project, self.h.settings.model.name,
                                        compared)
        except LastmileError as exc:
            log.warning("deployment status: %s", exc)
            served = None
        return {"replicas": compared, "served_by": served}


def finish(run: LocustRun, run_id: str, view: DeploymentView, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Judge the gates, add the deployment's view, write result.json and report.html; the result."""
    result = run.result(run_id)
    result.update(view.end())
    result["gates"] = results.judge(run.scenario.gates, result["totals"])
    result["passed"] = bool(result["totals"]["requests"]) and all(g["passed"] for g in result["gates"])
    result.update(extra or {})
    result["report_note"] = write_report(result, run.folder)
    if not (run.folder / "report.html").exists():
        result["artifacts"].pop("report_html", None)
    (run.folder / "result.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def write_report(result: dict[str, Any], folder: Path) -> str:
    """report.html by ``harness.load.report.render`` when that module exists; what happened, in a few words."""
    try:
        report = importlib.import_module("harness.load.report")
    except ModuleNotFoundError:
        return "harness.load.report is not there yet: no report.html"
    try:
        (folder / "report.html").write_text(report.render(result))
    except Exception as exc:  # a broken report must not lose the run's result
        log.exception("report.html")
        return f"report.html failed: {type(exc).__name__}: {exc}"
    return "report.html written"


def start(scenario: Scenario, target: str, h: Harness | None, state_dir: Path, workers: int = 0
          ) -> tuple[str, LocustRun, DeploymentView, str]:
    """Build the requests, take the deployment's first view and start Locust; ``(id, run, view, rows source)``."""
    found, source = rows(h, scenario.payloads.rows)
    run_id, folder = new_folder(state_dir, scenario.name or "load")
    view = DeploymentView(h)
    view.begin()
    run = LocustRun(scenario, target, folder, payloads.kinds(scenario.payloads, found), workers).start()
    return run_id, run, view, source
