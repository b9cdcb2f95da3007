"""Runs drills: Chaos Toolkit's engine for the experiment, then lastmile's conclusion.

For each drill: load it (``chaoslib.loader.load_experiment``), validate it, give it the profile
(``lastmile_config``, ``lastmile_profile`` in its configuration), run it with ``chaoslib.experiment.run_experiment``
with rollbacks always played; then revert every fault of the drill still active, check the invariants
(:mod:`harness.drills.invariants`), decide the verdict (:mod:`harness.drills.verdict`) and write the journal
(:mod:`harness.drills.journal`). Drills run one after another, each on its own: one that fails, or whose file is
invalid, does not stop the rest; Ctrl-C reverts the running drill's faults, writes its journal as interrupted and
raises :class:`DrillInterrupted`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ChaosException
from chaoslib.experiment import ensure_experiment_is_valid, run_experiment
from chaoslib.loader import load_experiment
from chaoslib.run import RunEventHandler
from chaoslib.types import Strategy

from harness.bootstrap import Harness
from harness.domain.errors import LastmileError
from harness.domain.promotion import CHAMPION
from harness.drills import invariants, leaks
from harness.drills import journal as journal_mod
from harness.drills.context import DrillContext, running, use_harness
from harness.drills.journal import DrillRecord
from harness.drills.library import Drill
from harness.drills.verdict import FAILED, INTERRUPTED, Verdict, decide

log = logging.getLogger("lastmile.drills")

Listener = Callable[[DrillRecord], None]


class DrillInterrupted(LastmileError):
    """Ctrl-C during a drill: its faults were reverted and its journal says ``interrupted``."""

    exit_code = 130

    def __init__(self, record: DrillRecord):
        super().__init__(f"drill {record.name} interrupted; its journal: {record.journal}")
        self.record = record


def chaos_settings(experiment: Mapping[str, Any]) -> dict[str, Any]:
    """chaoslib's settings for a drill: rollbacks always played; the drill's own hypothesis strategy."""
    hypothesis = (experiment.get("runtime") or {}).get("hypothesis", {}).get("strategy", "default")
    return {"runtime": {"rollbacks": {"strategy": "always"}, "hypothesis": {"strategy": hypothesis}}}


def run_drill(h: Harness, drill: Drill, *, config: Path | None = None, profile: str | None = None,
              on_change: Listener = lambda _: None) -> DrillRecord:
    """Run one drill on ``h`` and return its record (its journal written). ``config`` and ``profile`` go into
    the drill's configuration, so its journal says which profile it ran on."""
    record = DrillRecord.start(drill, h.settings.root)
    context, output = DrillContext(drill.name), _Capture()
    champion_required = champion_set(h)

    def phase(text: str) -> None:
        record.phase = text
        on_change(record)

    phase("loading")
    with use_harness(h), running(context), output:
        journal, problem = _execute(drill, config, profile, phase)
        phase("reverting faults")
        if not settle(h, context):
            journal = {**journal, "status": INTERRUPTED}
        found: dict[str, list[str]] = {}
        if journal.get("status") != INTERRUPTED:
            phase("checking invariants")
            texts = {"the drill's output": output.text(),
                     "the drill's Chaos Toolkit journal": json.dumps(journal, default=str)}
            try:
                found = invariants.check(h, output=texts, champion_required=champion_required)
            except KeyboardInterrupt:
                journal = {**journal, "status": INTERRUPTED}
    interrupted = journal.get("status") == INTERRUPTED
    verdict = Verdict(FAILED, problem) if problem and not interrupted else decide(journal, context.to_json(), found)
    _conclude(record, journal, context, found, verdict)
    journal_mod.write(h.settings.state_dir / "drills", record, journal, output.lines, _secret_values(h))
    on_change(record)
    if interrupted:
        raise DrillInterrupted(record)
    return record


def _execute(drill: Drill, config: Path | None, profile: str | None,
             phase: Callable[[str], None]) -> tuple[dict[str, Any], str]:
    """Chaos Toolkit's journal of the drill (``status: interrupted`` when Ctrl-C came outside its engine, which
    catches it itself), and why the file is not a valid drill ("" when it is)."""
    try:
        experiment, strategy = _load(drill, config, profile)
        return run_experiment(experiment, settings=chaos_settings(experiment), strategy=strategy,
                              event_handlers=[_Phases(phase)]), ""
    except _Invalid as exc:
        return {}, str(exc)
    except KeyboardInterrupt:
        return {"status": INTERRUPTED}, ""


class _Invalid(Exception):
    pass


def _load(drill: Drill, config: Path | None, profile: str | None) -> tuple[dict[str, Any], Strategy]:
    """The drill's experiment, validated, with the profile in its configuration, and its hypothesis strategy."""
    try:
        experiment = load_experiment(str(drill.path), {})
        if not isinstance(experiment, dict):
            raise ValueError("the file holds no mapping")
        experiment.setdefault("configuration", {}).update(
            {k: str(v) for k, v in (("lastmile_config", config), ("lastmile_profile", profile)) if v})
        ensure_experiment_is_valid(experiment)
        return experiment, Strategy.from_string(chaos_settings(experiment)["runtime"]["hypothesis"]["strategy"])
    except (ChaosException, ValueError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _Invalid(f"not a valid Chaos Toolkit experiment: {why}") from None


def run_drills(h: Harness, drills: Sequence[Drill], *, config: Path | None = None, profile: str | None = None,
               on_change: Listener = lambda _: None) -> list[DrillRecord]:
    """Run ``drills`` one after another; a drill that fails does not stop the rest, Ctrl-C does."""
    return [run_drill(h, d, config=config, profile=profile, on_change=on_change) for d in drills]


def settle(h: Harness, context: DrillContext) -> bool:
    """Revert every fault of the drill whose revert was not recorded, keeping its evidence; False when Ctrl-C
    stopped it (the faults left are listed by ``lastmile drill revert``)."""
    injector = h.fault_injector
    try:
        try:
            active = {f.id for f in injector.active()}
        except Exception:
            active = {f.handle.id for f in context.unsettled()}
        for fault in context.unsettled():
            try:
                evidence = injector.revert(fault.handle.id)
            except Exception as exc:
                fault.evidence_error = f"revert failed: {type(exc).__name__}: {exc}"
                log.error("fault %s could not be reverted", fault.handle.id, exc_info=True)
                continue
            context.settled(fault.handle.id, evidence, "lastmile" if fault.handle.id in active else "elsewhere")
    except KeyboardInterrupt:
        return False
    return True


def champion_set(h: Harness) -> bool:
    """Whether @champion is set now (the invariant then requires it after the drill); False when unknown."""
    try:
        return h.model_registry.by_alias(h.settings.model.name, CHAMPION) is not None
    except Exception:
        return False


def _conclude(record: DrillRecord, journal: Mapping[str, Any], context: DrillContext,
              found: dict[str, list[str]], verdict: Verdict) -> None:
    record.status, record.deviated = journal.get("status"), bool(journal.get("deviated"))
    record.faults, record.invariants = context.to_json(), found
    record.verdict, record.reason = verdict.name, verdict.reason
    record.phase = ""
    record.ended = time.time()


def _secret_values(h: Harness) -> list[str]:
    try:
        return list(leaks.secret_values(h).values())
    except Exception:
        log.warning("the secret values could not be read to mask them in the journal", exc_info=True)
        return []


class _Phases(RunEventHandler):
    """Tells the live view what Chaos Toolkit is doing."""

    def __init__(self, tell: Callable[[str], None]):
        self.tell = tell

    def start_hypothesis_before(self, experiment: Any) -> None:
        self.tell("steady state, before")

    def start_method(self, experiment: Any) -> None:
        self.tell("method")

    def start_hypothesis_after(self, experiment: Any) -> None:
        self.tell("steady state, after")

    def start_rollbacks(self, experiment: Any) -> None:
        self.tell("rollbacks")

    def start_activity(self, activity: Any) -> None:
        self.tell(f"{activity.get('type', 'activity')}: {activity.get('name', '?')}")


class _Capture(logging.Handler):
    """The drill's output: Chaos Toolkit's log and lastmile's drill log (info and up), plus warnings from any
    other logger, with tracebacks. Chaos Toolkit's log stops propagating meanwhile, so it does not reach the
    terminal under the live view."""

    LOGGERS = ("chaostoolkit", "lastmile.drills")

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []
        self._saved: list[tuple[logging.Logger, int, bool]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.extend(self.format(record).splitlines())
        except Exception:
            self.handleError(record)

    def text(self) -> str:
        return "\n".join(self.lines)

    def __enter__(self) -> _Capture:
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            self._saved.append((logger, logger.level, logger.propagate))
            logger.setLevel(logging.INFO)
            logger.propagate = False
            logger.addHandler(self)
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self)
        for logger, level, propagate in self._saved:
            logger.removeHandler(self)
            logger.setLevel(level)
            logger.propagate = propagate
        self._saved.clear()
