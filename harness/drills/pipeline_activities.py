"""The activities of the failure drills of stages 1-5 (trigger, build, artifacts, training, registry).

They sit beside the generic ones of :mod:`harness.drills.actions` and :mod:`harness.drills.probes`:

- :func:`note_baseline` comes first in a drill's method: when the drill's runs begin, where @champion and
  @previous point; the ``expect_*`` probes judge what happened since against it;
- :func:`run_fresh_pipeline` runs the pipeline as a new ``lastmile run`` would: on a harness built afresh (secrets
  resolved again), with ``LASTMILE_*`` overrides for that run alone (a short job timeout, other training
  parameters, a repository prefix of the drill's own);
- :func:`lastmile_commands` runs ``lastmile`` command lines in processes of their own, overlapping as two users'
  would; :func:`wait_for_job` and :func:`inject_dataset_fault` time a fault into the training stage.

An ``expect_*`` probe returns what it checked when it holds, and raises :class:`ExpectationFailed` (one clause per
broken expectation) when not: Chaos Toolkit records the activity as failed, and lastmile's verdict says why.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import secrets
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.bootstrap import Given, Harness
from harness.config.settings import env_overrides, settings_model
from harness.domain.errors import LastmileError
from harness.domain.promotion import CHAMPION, PREVIOUS
from harness.domain.records import JobState
from harness.drills import actions
from harness.drills.catalog import action, probe
from harness.drills.context import DrillContext, current, harness_for
from harness.infra.locks import RunLock
from harness.infra.processes import stop_group
from harness.pipeline import datasets
from harness.pipeline import journal as journal_mod
from harness.pipeline.journal import RunRecord
from harness.pipeline.runner import Pipeline, RunOptions
from harness.pipeline.stages import NAMES

log = logging.getLogger("lastmile.drills")

Configuration = Mapping[str, Any] | None
POLL_S = 0.1
TOKEN = "{token}"
"""In a :func:`run_fresh_pipeline` override, stands for a token of the running drill's own (the same all drill long)."""


class ExpectationFailed(Exception):
    """What a drill expected did not happen; the message says what did, one clause per expectation."""


@dataclass
class Notes:
    """What the drill noted: its baseline, its token, the results of its last ``lastmile_commands``."""

    started: float = field(default_factory=time.time)
    token: str = field(default_factory=lambda: secrets.token_hex(4))
    champion: str | None = None
    previous: str | None = None
    commands: list[dict[str, Any]] = field(default_factory=list)


_notes: weakref.WeakKeyDictionary[DrillContext, Notes] = weakref.WeakKeyDictionary()
_notes_lock = threading.Lock()


def notes() -> Notes:
    """The running drill's notes (made on first use)."""
    with _notes_lock:
        return _notes.setdefault(current(), Notes())


# actions -----------------------------------------------------------------------------------------------------
@probe
def note_baseline(configuration: Configuration = None) -> dict[str, Any]:
    """Note that the drill's runs begin now and where @champion and @previous point: the ``expect_*`` probes compare
    with this. Returns ``{"champion", "previous"}``."""
    h, n = harness_for(configuration), notes()
    n.started, n.commands = time.time(), []
    n.champion, n.previous = _aliases(h)
    return {"champion": n.champion, "previous": n.previous}


@action
def run_fresh_pipeline(force: bool = True, until: str = NAMES[-1], env: dict[str, Any] | None = None,
                       configuration: Configuration = None) -> dict[str, Any]:
    """Run the pipeline as a new ``lastmile run`` would: on a harness built afresh from the profile's settings (so
    secrets are resolved again), ``env`` overriding them for this run only, as ``LASTMILE_*`` variables would
    (``{"LASTMILE_PORTS__JOB_RUNNER__TIMEOUT_S": 10}``; ``{token}`` in a value is the drill's own token).
    Returns what ``run_pipeline`` returns; a failure of ours is a result too (diagnosed ``lastmile internal``)."""
    overrides = {name: str(value).replace(TOKEN, notes().token) for name, value in (env or {}).items()}
    h = fresh_harness(harness_for(configuration), overrides)
    context, seen = current(), list[RunRecord]()
    context.pipeline_started = time.time()
    recorded: dict[str, Any] = {"drill": context.drill} if context.drill else {}
    if overrides:
        recorded["overrides"] = sorted(overrides)
    try:
        record, error = Pipeline(h, on_change=seen.append).run(
            RunOptions(force=force, until=until, context=recorded)), None
    except Exception as exc:
        if not seen:
            raise
        if not isinstance(exc, LastmileError):
            log.warning("the pipeline raised %s, which is not lastmile's", type(exc).__name__, exc_info=True)
        record, error = seen[-1], str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    summary = actions.summarize(record)
    summary["error"] = error or summary["error"]
    log.info("pipeline run %s: %s", summary["run_id"], summary["status"])
    return summary


def fresh_harness(h: Harness, env: Mapping[str, str]) -> Harness:
    """A harness on ``h``'s settings with ``env``'s ``LASTMILE_*`` overrides, its ports built anew (the ports ``h``
    was given, e.g. tests' fakes, are kept)."""
    strangers = sorted(name for name in env if not name.startswith("LASTMILE_"))
    if strangers:
        raise ValueError(f"overrides are LASTMILE_* variables, not {', '.join(strangers)}")
    data = h.settings.model_dump()
    for dotted, value in env_overrides(env).items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {dotted}: {part} is not a section")
        node[leaf] = value
    try:
        settings = settings_model().model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"overrides {', '.join(sorted(env))}: {where}: {first['msg']}") from None
    return Harness(settings, getattr(h, "_given", Given()))


@action
def wait_for_job(timeout_s: float = 120.0, configuration: Configuration = None) -> dict[str, Any]:
    """Wait until the pipeline run this drill started last has a training job that runs (IN_PROGRESS: on OCI
    Data Science a run is ACCEPTED while its image is pulled, and has no process yet), or one that already
    ended, or has ended without one. Returns ``{"run_id", "job_run", "status"}``; raises ``TimeoutError`` after
    ``timeout_s``."""
    h = harness_for(configuration)
    since = current().pipeline_started or notes().started
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = _newest(h, since)
        if run is not None:
            job = run.stages["training"].outputs.get("job_run") if "training" in run.stages else None
            if (job and h.job_runner.get(job).state is not JobState.ACCEPTED) or (not job and run.status != "running"):
                return {"run_id": run.run_id, "job_run": job, "status": run.status}
        time.sleep(POLL_S)
    raise TimeoutError(f"no pipeline run submitted a training job within {timeout_s:g} s")


@action
def inject_dataset_fault(action: str = "corrupt", dataset: str = "iris", label: str = "",
                         configuration: Configuration = None) -> dict[str, Any]:
    """A data fault (``corrupt`` or ``delete``) on the stored copy of a shipped dataset,
    ``object:<data bucket>/datasets/<name>/<sha256>.csv``, through ``inject``. Returns its result and ``target``."""
    h = harness_for(configuration)
    target = f"object:{h.settings.buckets.data}/{datasets.key_for(dataset, datasets.DATASETS[dataset]())}"
    return {**actions.inject("data", target, action, label=label, configuration=configuration), "target": target}


@action
def lastmile_commands(commands: list[str], overlap: bool = True, timeout_s: float = 300.0,
                      configuration: Configuration = None) -> list[dict[str, Any]]:
    """Run ``lastmile`` command lines (``"run --force --json"``), each in a process of its own as at users'
    terminals: with ``overlap`` each starts once one of those before holds the run lock (or all have ended), else
    once the one before ended; any still running after ``timeout_s`` is stopped. Returns, per command,
    ``{"command", "exit_code", "seconds", "waited", "stderr", "run_id", "status"}`` (``waited``: it said it
    waited for the run lock); ``expect_commands`` checks them."""
    h = harness_for(configuration)
    env = {**os.environ, "COLUMNS": "400", "LASTMILE_STATE_DIR": str(h.settings.state_dir),
           "LASTMILE_PROFILE": h.settings.profile}
    config = (configuration or {}).get("lastmile_config")
    env["LASTMILE_CONFIG"] = str(config or h.settings.root / "lastmile.yaml")
    lock, deadline = RunLock(h.settings.state_dir / "run.lock"), time.monotonic() + timeout_s
    def ours_hold_the_lock() -> bool:
        holder = lock.holder()
        return holder is not None and holder.pid in {c.proc.pid for c in started if not c.ended()}

    with tempfile.TemporaryDirectory(prefix="lastmile-drill-") as scratch:
        started: list[_Command] = []
        try:
            for index, line in enumerate(commands):
                if started:
                    _wait_until(lambda: (overlap and ours_hold_the_lock()) or all(c.ended() for c in started),
                                deadline)
                started.append(_Command(line, Path(scratch) / str(index), h.settings.root, env))
            _wait_until(lambda: all(c.ended() for c in started), deadline)
        finally:
            results = [command.finish() for command in started]
    notes().commands = results
    return results


class _Command:
    """One ``lastmile`` command line in a process (and session) of its own, its output in files."""

    def __init__(self, line: str, scratch: Path, cwd: Path, env: Mapping[str, str]):
        self.line, self.began = line, time.monotonic()
        self.seconds: float | None = None
        self.out, self.err = scratch.with_suffix(".out"), scratch.with_suffix(".err")
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *shlex.split(line)], cwd=cwd,
                                         env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         start_new_session=True)

    def ended(self) -> bool:
        """Whether the process has ended (noting when, the first time it is seen ended)."""
        if self.seconds is None and self.proc.poll() is not None:
            self.seconds = round(time.monotonic() - self.began, 1)
        return self.seconds is not None

    def finish(self) -> dict[str, Any]:
        """Its result; a process still running (past the deadline) and its session are stopped first."""
        if not self.ended():
            stop_group(self.proc.pid, 5.0, reap=self.proc.poll)
            self.proc.wait()
            self.ended()
        return command_result(self.line, self.proc.returncode, self.seconds or 0.0,
                              self.out.read_text(errors="replace"), self.err.read_text(errors="replace"))


def command_result(line: str, code: int, seconds: float, stdout: str, stderr: str) -> dict[str, Any]:
    """What :func:`lastmile_commands` reports of one finished command (``--json`` output gives its run)."""
    try:
        journal = json.loads(stdout) if stdout.lstrip().startswith("{") else {}
    except ValueError:
        journal = {}
    text = " ".join(stderr.split())
    return {"command": line, "exit_code": code, "seconds": seconds, "waited": "lastmile: waiting for" in text,
            "stderr": text[-600:], "run_id": journal.get("run_id"), "status": journal.get("status")}


def _wait_until(condition: Callable[[], bool], deadline: float) -> None:
    """Poll ``condition`` until it holds or ``deadline`` (``time.monotonic()``) passes."""
    while not condition() and time.monotonic() < deadline:
        time.sleep(POLL_S)


# probes ------------------------------------------------------------------------------------------------------
@probe
def dataset_intact(dataset: str = "iris", configuration: Configuration = None) -> bool:
    """True when object storage holds the shipped dataset under its sha256 with exactly its bytes."""
    h = harness_for(configuration)
    data = datasets.DATASETS[dataset]()
    bucket, key = h.settings.buckets.data, datasets.key_for(dataset, data)
    uri = f"s3://{bucket}/{key}"
    try:
        stored = h.object_store.get(bucket, key)
    except LastmileError as exc:
        log.warning("dataset %s: %s", uri, exc)
        return False
    if stored != data:
        log.warning("dataset %s: %d stored bytes differ from the shipped %d", uri, len(stored), len(data))
    return stored == data


@probe
def champion_files_intact(configuration: Configuration = None) -> bool:
    """True when @champion's files, downloaded through the registry, match the digests recorded at registration."""
    h = harness_for(configuration)
    champion, _ = _aliases(h)
    if champion is None:
        log.warning("no @champion")
        return False
    problems = h.model_registry.verify(h.settings.model.name, champion)
    for problem in problems:
        log.warning("%s", problem)
    return not problems


@probe
def expect_run(status: str | list[str] | None = None, failed_stage: str | None = None,
               causes: str | list[str] | None = None, says: str | list[str] | None = None,
               evidence: str | list[str] | None = None, stage_seconds: dict[str, dict[str, float]] | None = None,
               outputs: dict[str, Any] | None = None, configuration: Configuration = None) -> dict[str, Any]:
    """Check the newest run since the baseline: ``status`` (one or any of several); when it failed, its failed stage
    (``failed_stage``), its diagnosis's cause (one of ``causes``), texts its error must hold (``says``, in any
    line) and its evidence (``evidence``); ``stage_seconds`` (``{"training": {"max": 30}}``); stage outputs by
    dotted path (``{"build.serving.pushed": false}``). Returns the run's summary."""
    h = harness_for(configuration)
    run = _newest(h, notes().started)
    if run is None:
        raise ExpectationFailed("no pipeline run started since the drill's baseline")
    summary, wrong = actions.summarize(run), []
    if status is not None and run.status not in _listed(status):
        wrong.append(f"status {run.status}, not {' or '.join(_listed(status))}")
    if run.status == "failed":
        wrong += _failure_problems(run, summary, failed_stage, causes, says, evidence)
    for stage, bounds in (stage_seconds or {}).items():
        taken = run.stages[stage].seconds
        if taken is None or not bounds.get("min", 0) <= taken <= bounds.get("max", float("inf")):
            wrong.append(f"stage {stage} took {'no time' if taken is None else f'{taken:.1f} s'}, outside {bounds}")
    data = {name: stage.outputs for name, stage in run.stages.items()}
    for path, want in (outputs or {}).items():
        got = _dig(data, path)
        if got != want:
            wrong.append(f"{path} is {json.dumps(got)}, not {json.dumps(want)}")
    _judge(f"run {run.run_id}", wrong)
    return summary


def _failure_problems(run: RunRecord, summary: dict[str, Any], failed_stage: str | None,
                      causes: str | list[str] | None, says: str | list[str] | None,
                      evidence: str | list[str] | None) -> list[str]:
    wrong = []
    if failed_stage is not None and summary["failed_stage"] != failed_stage:
        wrong.append(f"failed at {summary['failed_stage']}, not {failed_stage}")
    diagnosis = summary["diagnosis"] or {}
    if causes is not None and diagnosis.get("cause") not in _listed(causes):
        wrong.append(f"diagnosed {diagnosis.get('cause')!r} ({diagnosis.get('evidence')}), not "
                     f"{' or '.join(map(repr, _listed(causes)))}")
    error = run.stages[summary["failed_stage"]].error if summary["failed_stage"] else ""
    wrong += [f"its error does not say {text!r}: {(error or '').splitlines()[:1]}" for text in _listed(says)
              if text not in (error or "")]
    wrong += [f"its evidence {diagnosis.get('evidence')!r} does not name {text!r}" for text in _listed(evidence)
              if text not in str(diagnosis.get("evidence", ""))]
    return wrong


@probe
def expect_aliases(configuration: Configuration = None) -> dict[str, Any]:
    """@champion and @previous are where the drill's runs put them: from the baseline, each run since that promoted
    a version moved @champion to it and @previous to the champion before it (so @previous never skips a
    version); no other run moved them. Returns ``{"champion", "previous"}``."""
    h, n = harness_for(configuration), notes()
    expected, wrong = alias_walk(_since(h, n.started), (n.champion, n.previous))
    now = _aliases(h)
    if now != expected:
        wrong.append(f"the registry has @champion={now[0]} @previous={now[1]}, where the runs since the baseline "
                     f"(@champion={n.champion} @previous={n.previous}) put @champion={expected[0]} "
                     f"@previous={expected[1]}")
    _judge("aliases", wrong)
    return {"champion": now[0], "previous": now[1]}


def alias_walk(runs: list[RunRecord], start: tuple[str | None, str | None]
               ) -> tuple[tuple[str | None, str | None], list[str]]:
    """Where ``runs`` (oldest first) leave (@champion, @previous) from ``start``, and where a run's own record
    says otherwise."""
    (champion, previous), wrong = start, []
    for run in runs:
        stage = run.stages.get("registry")
        if stage is None or not stage.outputs.get("promoted"):
            continue
        said = (str(stage.outputs.get("champion")), stage.outputs.get("previous"))
        if champion != said[0] and said[1] != champion:
            wrong.append(f"run {run.run_id} promoted {said[0]} with @previous={said[1]}, skipping @champion "
                         f"{champion}")
        champion, previous = (said[0], champion) if champion != said[0] else (champion, previous)
    return (champion, previous), wrong


@probe
def expect_serialized_runs(count: int, configuration: Configuration = None) -> list[str]:
    """Exactly ``count`` runs started since the baseline, every one succeeded, one at a time: each started after
    the one before had ended (its journal finished). Returns their ids, oldest first."""
    runs = _since(harness_for(configuration), notes().started)
    wrong = [] if len(runs) == count else [f"{len(runs)} runs since the baseline, not {count}"]
    wrong += [f"run {r.run_id} {r.status}" for r in runs if r.status != "succeeded"]
    for before, after in itertools.pairwise(runs):
        if before.ended is None or after.started < before.ended:
            wrong.append(f"run {after.run_id} started before run {before.run_id} had ended")
    _judge("runs", wrong)
    return [r.run_id for r in runs]


@probe
def expect_rejected(says: str | None = None, configuration: Configuration = None) -> dict[str, Any]:
    """The newest run since the baseline rejected its model version at the gate, and the version is tagged with
    the reason (``lastmile.gate``: ``rejected: ...``, holding ``says`` when given). Returns ``{"version", "tag"}``."""
    h = harness_for(configuration)
    run = _newest(h, notes().started)
    if run is None:
        raise ExpectationFailed("no pipeline run started since the drill's baseline")
    outputs = run.stages["registry"].outputs
    version = run.stages["training"].outputs.get("model_version")
    if run.stages["registry"].status != "succeeded" or outputs.get("promoted") is not False or version is None:
        raise ExpectationFailed(f"run {run.run_id}: registry {run.stages['registry'].status}, "
                                f"promoted {outputs.get('promoted')}, version {version}")
    tag = h.model_registry.get_version(h.settings.model.name, str(version)).tags.get("lastmile.gate", "")
    wrong = [] if tag.startswith("rejected: ") and (says or "") in tag else [f"tagged lastmile.gate={tag!r}"]
    _judge(f"version {version}", wrong)
    return {"version": str(version), "tag": tag}


@probe
def expect_commands(expected: list[dict[str, Any]], configuration: Configuration = None) -> list[dict[str, Any]]:
    """Check the drill's last ``lastmile_commands``, one expectation per command in order: ``exit_code``,
    ``status`` (its journal's, None for none), ``waited`` (it said it waited for the run lock), ``says`` (texts
    its stderr must hold). Returns the results."""
    results, wrong = notes().commands, []
    if len(results) != len(expected):
        raise ExpectationFailed(f"{len(results)} commands ran, {len(expected)} expected")
    for result, want in zip(results, expected, strict=True):
        for key in ("exit_code", "status", "waited"):
            if key in want and result[key] != want[key]:
                wrong.append(f"`lastmile {result['command']}`: {key} {result[key]!r}, not {want[key]!r}")
        wrong += [f"`lastmile {result['command']}` did not say {text!r}: {result['stderr'][-300:]!r}"
                  for text in _listed(want.get("says")) if text not in result["stderr"]]
    _judge("commands", wrong)
    return results


# helpers -----------------------------------------------------------------------------------------------------
def _aliases(h: Harness) -> tuple[str | None, str | None]:
    name = h.settings.model.name
    pointed = [h.model_registry.by_alias(name, alias) for alias in (CHAMPION, PREVIOUS)]
    return pointed[0].version if pointed[0] else None, pointed[1].version if pointed[1] else None


def _since(h: Harness, since: float) -> list[RunRecord]:
    """The runs started since ``since``, oldest first."""
    return [r for r in reversed(journal_mod.history(h.settings.state_dir / "runs")) if r.started >= since]


def _newest(h: Harness, since: float) -> RunRecord | None:
    runs = _since(h, since)
    return runs[-1] if runs else None


def _listed(value: str | list[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def _dig(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return None
        data = data[part]
    return data


def _judge(subject: str, wrong: list[str]) -> None:
    if wrong:
        raise ExpectationFailed(f"{subject}: " + "; ".join(wrong))

