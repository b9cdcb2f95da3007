"""Drill activities for deployment, observation and the stand-ins' lifecycle: load in the background, rollouts
through the harness's rollout policy, the slowest replica, drifted traffic and an inventory of what is stored.

Load is Locust in processes of its own (:mod:`harness.load.background`), bounded by its rate, duration and request
budget, working in ``<state_dir>/loads/<id>/``: :func:`stop_load` (the drills' rollbacks call it) stops it, it
stops itself when its duration ends, and one that outlived its drill would break the ``processes`` invariant. What a drill did (its
loads, rollouts, drifted traffic, first inventory) is kept per drill, so the probes judge that drill's own.

Probes whose question only has an answer once the method has run (did the drill's rollouts roll back, did its
load fail requests, does observation name what the drill changed) are true before the method, when the drill has
done nothing yet, and say so in the log; after the method they judge what it did.
"""

from __future__ import annotations

import atexit
import csv
import io
import json
import logging
import re
import shutil
import threading
import time
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness.bootstrap import Harness
from harness.domain.diagnosis import Context, diagnose
from harness.domain.errors import NotFound, UserError
from harness.domain.promotion import CHAMPION
from harness.domain.records import ArtifactRef, DeploymentSpec, ModelVersion, Reference
from harness.drills.actions import inject
from harness.drills.catalog import action, probe
from harness.drills.context import DrillContext, current, harness_for
from harness.load import background
from harness.pipeline import drift
from harness.pipeline import journal as journal_mod
from harness.pipeline.delivery import policy_of, reference_of
from harness.pipeline.observation import observe, sampled_rows, slowest
from harness.pipeline.rollout import RolloutFailed, roll_out

log = logging.getLogger("lastmile.drills")

Configuration = Mapping[str, Any] | None
MAX_RATE, MAX_DURATION_S = 200.0, 300.0
STOP_GRACE_S = 10.0
POLL_S = 0.25
BROKEN_PREDICTION = "no-such-class"


@dataclass
class _Load:
    label: str
    handle: background.BackgroundLoad | None
    folder: Path
    rate: float
    figures: dict[str, Any] | None = None


@dataclass
class _Did:
    """What one drill did, for its probes to judge."""

    loads: dict[str, _Load] = field(default_factory=dict)
    rollouts: list[dict[str, Any]] = field(default_factory=list)
    set_aside: list[tuple[Path, Path]] = field(default_factory=list)  # (model copy, where it waits)
    drifted: list[tuple[float, float, str]] = field(default_factory=list)  # (from, to, feature)
    inventory: dict[str, list[str]] | None = None


_lock = threading.RLock()
_did: weakref.WeakKeyDictionary[DrillContext, _Did] = weakref.WeakKeyDictionary()
_every_load: list[_Load] = []  # the loads this process started and has not stopped: stopped at its exit
_exit_hook: list[object] = []


def _drill() -> _Did:
    with _lock:
        return _did.setdefault(current(), _Did())


# load ------------------------------------------------------------------------------------------------------
@action
def start_load(rate: float = 50.0, duration_s: float = 60.0, label: str = "load", timeout_s: float = 5.0,
               warmup_s: float = 2.0, configuration: Configuration = None) -> dict[str, Any]:
    """Start load on the stable endpoint's ``/invocations`` with Locust in processes of its own
    (:mod:`harness.load.background`): ``rate`` requests a second, each one @champion reference row, for at
    most ``duration_s``; returns once its first answers are counted and ``warmup_s`` more passed. ``stop_load``
    ends it and reads its figures."""
    if not 0 < rate <= MAX_RATE or not 0 < duration_s <= MAX_DURATION_S:
        raise UserError(f"start_load: rate must be in (0, {MAX_RATE:g}] and duration_s in (0, {MAX_DURATION_S:g}]")
    h, did = harness_for(configuration), _drill()
    if label in did.loads and did.loads[label].handle is not None and did.loads[label].figures is None:
        raise UserError(f"start_load: load {label!r} is running already; stop it first")
    endpoint = h.deployer.status(h.settings.project).endpoint
    if not endpoint:
        raise UserError("start_load: the deployment reports no endpoint", hint="deploy first (`lastmile run`)")
    rows = [dict(_champion_reference(h).rows[0])]
    handle = background.start(rate, endpoint, h.settings.state_dir, rows, duration_s=duration_s,
                              timeout_s=timeout_s, name=f"{current().drill or 'drill'}-{label}")
    load = _Load(label, handle, handle.folder, rate)
    with _lock:
        did.loads[label] = load
        if not _exit_hook:
            _exit_hook.append(atexit.register(_stop_every_load))
        _every_load.append(load)
    started = handle.wait_started()
    time.sleep(warmup_s)
    if not started or not handle.running():
        log_tail = (handle.folder / "locust.log").read_text()[-500:] if (handle.folder / "locust.log").exists() else ""
        _stop(load)
        raise UserError(f"start_load: Locust answered nothing within its start: {log_tail}")
    log.info("load %s: %g req/s on %s/invocations for at most %g s (pids %s)", label, rate, endpoint, duration_s,
             handle.pids)
    return {"label": label, "pids": handle.pids, "url": endpoint + "/invocations", "rate": rate,
            "duration_s": duration_s, "folder": str(handle.folder)}


@action
def stop_load(label: str | None = None, configuration: Configuration = None) -> list[dict[str, Any]]:
    """Stop the drill's load ``label`` (every one without it) and read its figures: sent, ok, failed, error
    ratio, answered per second, latency, error kinds. A load stopped before returns its figures again."""
    did = _drill()
    loads = [did.loads[label]] if label in did.loads else [] if label else list(did.loads.values())
    if label and not loads:
        raise UserError(f"stop_load: this drill started no load {label!r}")
    return [_stop(load) for load in loads]


def _stop(load: _Load) -> dict[str, Any]:
    with _lock:
        if load.figures is not None:
            return load.figures
        assert load.handle is not None
        try:
            result = load.handle.stop()
        except Exception as exc:  # the figures say the load broke; the drill goes on to its rollbacks
            log.exception("load %s", load.label)
            result, why = None, f"{type(exc).__name__}: {exc}"
        else:
            why = ""
        load.figures = figures(load.label, load.rate, result, why)
        if load in _every_load:
            _every_load.remove(load)
        log.info("load %s: %s (results in %s)", load.label,
                 json.dumps({k: v for k, v in load.figures.items() if k != "failures"}), load.folder)
        return load.figures


def figures(label: str, rate: float, result: Mapping[str, Any] | None, why: str = "") -> dict[str, Any]:
    """A load's figures as drills judge them, from its result (:mod:`harness.load.background`; None: it has none)."""
    if result is None or not result.get("totals"):
        return {"label": label, "rate": rate, "error": f"no results: {why}"}
    t = result["totals"]
    sent, failed, elapsed = t["requests"], t["failures"], result["elapsed_s"]
    return {"label": label, "rate": rate, "sent": sent, "ok": sent - failed, "failed": failed,
            "error_ratio": round(failed / sent, 5) if sent else None,
            "ok_per_s": round((sent - failed) / elapsed, 2) if elapsed else 0.0, "elapsed_s": elapsed,
            "stopped_by": result.get("stopped_by"), "error_kinds": result.get("error_kinds", {}),
            "latency_ms": {"p50": t["p50_ms"], "p95": t["p95_ms"], "p99": t["p99_ms"], "max": t["max_ms"]},
            "failures": [{"t": f["t"], "at": f["at"], "kind": f["kind"]} for f in result.get("failures_seen", [])][:10]}


def judge_load(figures_: Mapping[str, Any], max_error_ratio: float, min_rps: float) -> str:
    """Why a load's figures break the budget ("" when they keep it)."""
    if "error" in figures_:
        return f"load {figures_['label']}: {figures_['error']}"
    if not figures_["sent"]:
        return f"load {figures_['label']} sent nothing"
    if figures_["error_ratio"] > max_error_ratio:
        return (f"load {figures_['label']} failed {figures_['failed']} of {figures_['sent']} requests "
                f"({figures_['error_ratio']:.2%} > {max_error_ratio:.2%}): {figures_['error_kinds']}, first at "
                f"{figures_['failures'][:3]}")
    if figures_["ok_per_s"] < min_rps:
        return f"load {figures_['label']} had {figures_['ok_per_s']} answers a second, under {min_rps:g}"
    return ""


def _stop_every_load() -> None:
    for load in list(_every_load):
        if load.handle is not None:
            load.handle.kill()


@probe
def load_ok(max_error_ratio: float = 0.005, min_rps: float = 0.0, configuration: Configuration = None) -> bool:
    """True when every load this drill stopped failed at most ``max_error_ratio`` of its requests and had at
    least ``min_rps`` answers a second (True while none has ended: before the method)."""
    loads = _drill().loads.values()
    ended = [load.figures for load in loads if load.figures is not None]
    if not ended:
        log.info("no load of this drill has ended yet")
    for load in loads:
        if load.figures is None:
            log.warning("load %s still runs, so it is not judged yet (stop_load ends it)", load.label)
    broken = [why for why in (judge_load(f, max_error_ratio, min_rps) for f in ended) if why]
    for why in broken:
        log.warning("%s", why)
    return not broken


@probe
def load_figures(configuration: Configuration = None) -> list[dict[str, Any]]:
    """The figures of every load this drill stopped (see ``stop_load``)."""
    return [load.figures for load in _drill().loads.values() if load.figures is not None]


# rollouts --------------------------------------------------------------------------------------------------
@action
def roll_out_champion(broken_reference: bool = False, fresh_model_copy: bool = False,
                      configuration: Configuration = None) -> dict[str, Any]:
    """Roll @champion out again, with the serving build of the last good run, through the harness's rollout
    policy (as the deployment stage does). ``broken_reference``: with reference predictions the model cannot
    reproduce, so its replicas exit 3. ``fresh_model_copy``: the deployer downloads the version's files again
    (its local copy is set aside for the rollout and put back after). Returns ``{"outcome": "served" | "rolled
    back", "revision", "before", "after", "error", "diagnosis"}``: a failed rollout is a result, not an error."""
    h, did = harness_for(configuration), _drill()
    champion = _champion(h)
    reference = _champion_reference(h)
    if broken_reference:
        reference = Reference(reference.rows, tuple(BROKEN_PREDICTION for _ in reference.predictions))
    serving = _last_good(h).summary["builds"]["serving"]
    spec = DeploymentSpec(h.settings.project, ArtifactRef(serving["registry"], serving["repository"],
                                                          serving["digest"]), champion, reference)
    before = h.deployer.status(spec.name).revision
    if fresh_model_copy:
        _set_aside(h, champion)
    revision: int | None
    error: str | None = None
    diagnosis: dict[str, str] | None = None
    try:
        revision = roll_out(h.deployer, spec, policy_of(h)).number
    except RolloutFailed as exc:
        found = re.match(r"revision (\d+)", str(exc))
        revision, error = int(found.group(1)) if found else None, str(exc)
        diagnosis = diagnose(exc, Context(stage="deployment")).to_json()
    finally:
        if fresh_model_copy:
            restore_model_copies(configuration)
    after = h.deployer.status(spec.name).revision
    result = {"outcome": "rolled back" if error else "served", "revision": revision,
              "before": before.number if before else None, "after": after.number if after else None,
              "error": error, "diagnosis": diagnosis}
    with _lock:
        did.rollouts.append(result)
    return result


@action
def restore_model_copies(configuration: Configuration = None) -> list[str]:
    """Put back the deployer's local model copies that ``roll_out_champion(fresh_model_copy=True)`` set aside
    (what the rollout downloaded in their place goes); nothing when none waits. Returns the copies restored."""
    did, restored = _drill(), []
    with _lock:
        while did.set_aside:
            copy, aside = did.set_aside.pop()
            if aside.is_dir():
                shutil.rmtree(copy, ignore_errors=True)
                aside.rename(copy)
                restored.append(str(copy))
    return restored


def _set_aside(h: Harness, version: ModelVersion) -> None:
    """Make the next deploy download ``version``'s files afresh: the local deployer downloads a version once and
    hands its replicas that copy, which is moved aside here; on Kubernetes (``oke``) every replica downloads the
    version from the registry when it starts, so every rollout is already a fresh download and nothing is kept."""
    deployer = h.settings.ports.deployer
    if not getattr(deployer, "keeps_model_copies", False):
        log.info("fresh_model_copy: the %s deployer keeps no copy of a version's files (its replicas download "
                 "the version when they start): nothing to set aside", getattr(deployer, "flavor", "?"))
        return
    copy = h.settings.state_dir / "deployer" / "models" / version.name / version.version
    if copy.is_dir():
        aside = copy.with_name(f"{copy.name}.drill-{uuid.uuid4().hex[:6]}")
        copy.rename(aside)
        with _lock:
            _drill().set_aside.append((copy, aside))


@probe
def rollouts_ended(outcome: str = "rolled back", causes: list[str] | None = None, naming: str | None = None,
                   configuration: Configuration = None) -> bool:
    """True when every rollout this drill ordered ended ``outcome`` ("served" or "rolled back"); one rolled back
    also with the revision that served before it serving again, its diagnosis's cause one of ``causes`` and its
    error naming ``naming`` (when given). True while the drill has ordered none."""
    rollouts = _drill().rollouts
    if not rollouts:
        log.info("this drill has ordered no rollout yet")
    wrong = []
    for r in rollouts:
        if r["outcome"] != outcome:
            wrong.append(f"revision {r['revision']} {r['outcome']}, not {outcome}: {r['error'] or ''}")
        elif outcome == "rolled back" and r["after"] != r["before"]:
            wrong.append(f"revision {r['revision']} rolled back, but revision {r['after']} serves, not {r['before']}")
        elif outcome == "rolled back" and causes and (r["diagnosis"] or {}).get("cause") not in causes:
            wrong.append(f"revision {r['revision']} diagnosed {r['diagnosis']}, not one of {causes}")
        elif outcome == "rolled back" and naming and naming not in (r["error"] or ""):
            wrong.append(f"revision {r['revision']}'s error does not name {naming}: {r['error']}")
    for why in wrong:
        log.warning("%s", why)
    return not wrong


@action
def wait_for_deployment(timeout_s: float = 60.0, standby: bool = False, stable_s: float = 1.0,
                        configuration: Configuration = None) -> dict[str, Any]:
    """Wait until the deployment has settled for ``stable_s`` on end: as many replicas of its current revision
    ready as desired, none of another revision left, and with ``standby`` its warm standby ready too, on a deployer
    that keeps one (on Kubernetes none is kept: a dead container restarts in place) (``stable_s`` lets the deployer
    notice a fault injected just before). Returns the deployment as the ``deployment`` probe does, with how long
    it waited (``waited_s``); raises ``TimeoutError`` after ``timeout_s``."""
    h = harness_for(configuration)
    if standby and not getattr(h.settings.ports.deployer, "warm_standby", False):
        log.info("wait_for_deployment: the %s deployer keeps no warm standby: waiting for the replicas only",
                 getattr(h.settings.ports.deployer, "flavor", "?"))
        standby = False
    started = time.monotonic()
    deadline, since = started + timeout_s, None
    while True:
        status = h.deployer.status(h.settings.project)
        number = status.revision.number if status.revision else None
        settled = (number is not None and status.ready >= status.desired
                   and all(r.revision == number for r in status.replicas if r.state not in ("draining", "dead"))
                   and (not standby or status.standby == "warm"))
        since = (since or time.monotonic()) if settled else None
        if since is not None and time.monotonic() - since >= stable_s:
            return {"revision": number, "ready": status.ready, "desired": status.desired, "standby": status.standby,
                    "waited_s": round(time.monotonic() - started, 2)}
        if time.monotonic() >= deadline:
            raise TimeoutError(f"the deployment did not settle within {timeout_s:g} s: revision {number}, "
                               f"{status.ready}/{status.desired} ready, standby {status.standby or 'none'}; "
                               + ", ".join(f"{r.name} {r.state}" for r in status.replicas))
        time.sleep(POLL_S)


# model files behind MLflow's back --------------------------------------------------------------------------
@action
def inject_model_file_fault(action: str = "corrupt", file: str = "model.skops", version: str | None = None,
                            label: str = "", configuration: Configuration = None) -> dict[str, Any]:
    """A data fault (``corrupt`` or ``delete``) on one file of a model version (@champion by default) where
    MLflow stored it: the object in the artifacts bucket whose key the version's source leads to
    (``models:/<model id>`` or ``runs:/<run id>/...``). Injected with ``inject``; returns its result and the
    target."""
    h = harness_for(configuration)
    chosen = h.model_registry.get_version(h.settings.model.name, version) if version else _champion(h)
    bucket, key = _model_file_object(h, chosen, file)
    result = inject("data", f"object:{bucket}/{key}", action, label=label, configuration=configuration)
    return {**result, "target": f"object:{bucket}/{key}", "version": chosen.version, "file": file}


def _model_file_object(h: Harness, version: ModelVersion, file: str) -> tuple[str, str]:
    source = version.source or ""
    if source.startswith("models:/"):
        marker = f"models/{source.removeprefix('models:/').strip('/')}/artifacts/"
    elif source.startswith("runs:/"):
        run_id, _, path = source.removeprefix("runs:/").partition("/")
        marker = f"{run_id}/artifacts/{path.strip('/') + '/' if path.strip('/') else ''}"
    else:
        marker = source.partition("://")[2].partition("/")[2].rstrip("/") + "/"
    bucket = h.settings.buckets.artifacts
    keys = [ref.key for ref in h.object_store.list(bucket) if ref.key.endswith(marker + file)]
    if len(keys) != 1:
        raise UserError(f"model version {version.version} (source {source}): {len(keys)} objects in {bucket} "
                        f"end with {marker + file}: {keys[:5]}")
    return bucket, keys[0]


@probe
def verify_names_faulted_files(version: str | None = None, configuration: Configuration = None) -> bool:
    """True when ``ModelRegistry.verify`` of the version (@champion by default) names exactly the files that
    this drill's data faults, still active, have changed: none before the method, the corrupted one after."""
    h = harness_for(configuration)
    chosen = h.model_registry.get_version(h.settings.model.name, version) if version else _champion(h)
    active = {f.id for f in h.fault_injector.active()}
    expected = sorted({fault.handle.spec.target.rpartition("/")[2] for fault in current().faults.values()
                       if fault.handle.id in active and fault.handle.spec.kind == "data"
                       and fault.handle.spec.target.startswith(f"object:{h.settings.buckets.artifacts}/")})
    problems = h.model_registry.verify(chosen.name, chosen.version)
    log.info("verify of version %s: %s (expected to name: %s)", chosen.version, problems or "no problem",
             expected or "nothing")
    named = sorted({f for f in expected for p in problems if re.search(rf"(^|[\s/]){re.escape(f)} ", p)})
    return named == expected and len(problems) == len(expected)


# observation -----------------------------------------------------------------------------------------------
@probe
def slowest_replica(window_s: float = 3.0, configuration: Configuration = None) -> str | None:
    """The replica ``lastmile observe`` names slowest over ``window_s`` (by the Service's timing of each
    replica where it has one); None when no replica answered a scoring request in the window."""
    h = harness_for(configuration)
    views, _ = observe(lambda: h.deployer.replica_metrics(h.settings.project), window_s)
    log.info("observed: %s", "; ".join(f"{v.name} {v.health} {v.rate:.1f} req/s p50 {v.p50_ms} ms p95 {v.p95_ms} ms "
                                        f"({v.latency_from})" for v in views))
    found = slowest(views)
    return found.name if found else None


@probe
def is_replica_hit_by(value: str | None = None, fault: str = "", configuration: Configuration = None) -> bool:
    """A tolerance for ``slowest_replica``: True when ``value`` is the replica that this drill's fault ``fault``
    (a label or id) hit, as its target or its injection's detail says; True while the drill has no such fault."""
    known = current().find(fault)
    if known is None:
        log.info("no fault %r yet: any replica may be the slowest (%s is)", fault, value)
        return True
    target = known.handle.spec.target.partition(":")[2]
    if target == "any":
        found = re.search(r"replica:any is (\S+)", known.handle.detail)
        target = found.group(1) if found else ""
    if value != target:
        log.warning("observation names %s the slowest replica, but fault %s hit %s", value, fault, target or "?")
    return value == target


@action
def send_drifted_traffic(feature: str = "petal_length", shift: float = 3.0, batch: int = 10, wait_s: float = 15.0,
                         configuration: Configuration = None) -> dict[str, Any]:
    """Post the rows of the training data (the last good run's data set) with ``feature`` shifted by ``shift``
    through the stable endpoint's ``/invocations``, ``batch`` rows a request, then wait (at most ``wait_s``) until
    the replicas have shipped their samples to object storage. Returns rows sent, requests failed, rows shipped."""
    h, did = harness_for(configuration), _drill()
    rows = _training_rows(h)
    if not rows or feature not in rows[0]:
        raise UserError(f"send_drifted_traffic: the training data has no feature {feature!r}; it has "
                        f"{', '.join(rows[0]) if rows else 'no rows'}")
    endpoint = h.deployer.status(h.settings.project).endpoint
    if not endpoint:
        raise UserError("send_drifted_traffic: the deployment reports no endpoint")
    shifted = [{**row, feature: row[feature] + shift} for row in rows]
    began, failed = time.time(), 0
    with httpx.Client(base_url=endpoint, timeout=10) as client:
        for i in range(0, len(shifted), batch):
            answer = client.post("/invocations", json={"dataframe_records": shifted[i:i + batch]})
            failed += answer.status_code != 200
    ended = time.time()
    with _lock:
        did.drifted.append((began, ended, feature))
    deadline = time.monotonic() + wait_s
    while len(shipped := _sampled(h, began, ended)) < len(shifted) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    return {"feature": feature, "shift": shift, "rows": len(shifted), "requests": -(-len(shifted) // batch),
            "failed_requests": failed, "shipped_rows": len(shipped), "seconds": round(time.time() - began, 2)}


@probe
def drifted_features(threshold: float = 0.2, configuration: Configuration = None) -> list[str]:
    """The features the drift report (``harness.pipeline.drift``, what ``lastmile observe drift`` shows) names
    drifted, over the samples of this drill's drifted traffic only (older samples, load tests' repeated rows
    among them, would drown it); [] before the drill sent any."""
    h, did = harness_for(configuration), _drill()
    if not did.drifted:
        log.info("this drill has sent no drifted traffic yet")
        return []
    sampled = [row for since, until, _ in did.drifted for row in _sampled(h, since, until)]
    training = _training_csv(h)
    report = drift.report(training, sampled, threshold)
    log.info("drift of %d sampled rows: %s", len(sampled), ", ".join(f"{f.feature} {f.psi:.3f}" for f in report))
    return [f.feature for f in report if f.drifted]


@probe
def drift_names_shifted_features(threshold: float = 0.2, configuration: Configuration = None) -> bool:
    """True when the drift report over this drill's drifted traffic names exactly the features it shifted
    (nothing before it sent any)."""
    shifted = sorted({feature for _, _, feature in _drill().drifted})
    named = drifted_features(threshold, configuration)
    if named != shifted:
        log.warning("the drift report names %s drifted, where the drill shifted %s", named or "nothing",
                    shifted or "nothing")
    return named == shifted


# what is stored --------------------------------------------------------------------------------------------
@probe
def stored_inventory(configuration: Configuration = None) -> dict[str, int]:
    """How much is stored, counted through the ports and the registry's catalog: model versions, objects of each
    bucket, repositories, build manifests and their blobs (the builds the run journals name), run and drill
    journals."""
    return {kind: len(items) for kind, items in _inventory(harness_for(configuration)).items()}


@probe
def nothing_lost(configuration: Configuration = None) -> bool:
    """At its first call in a drill, take stock of what is stored (see ``stored_inventory``) and answer True; at
    every later call, True when everything stored at that first look is still there (more may have come)."""
    h, did = harness_for(configuration), _drill()
    now = _inventory(h)
    log.info("stored now: %s", {kind: len(items) for kind, items in now.items()})
    if did.inventory is None:
        did.inventory = now
        return True
    lost = {kind: sorted(set(items) - set(now.get(kind, ()))) for kind, items in did.inventory.items()}
    lost = {kind: items for kind, items in lost.items() if items}
    for kind, items in lost.items():
        log.warning("lost %d of %d %s: %s", len(items), len(did.inventory[kind]), kind, ", ".join(items[:5]))
    return not lost


def _inventory(h: Harness) -> dict[str, list[str]]:
    """Every stored thing by a name that identifies it, by kind."""
    settings, model = h.settings, h.settings.model.name
    found: dict[str, list[str]] = {"model versions": _versions(h, model)}
    for bucket in sorted({settings.buckets.data, settings.buckets.artifacts, settings.buckets.predictions}):
        found[f"objects in {bucket}"] = [f"{ref.key} ({ref.size} bytes)" for ref in h.object_store.list(bucket)]
    found["repositories"] = _catalog(h)
    runs = journal_mod.history(settings.state_dir / "runs")
    builds = {(b["repository"], b["digest"]) for r in runs for b in (r.summary.get("builds") or {}).values()
              if isinstance(b, dict) and b.get("digest")}
    found["build manifests"], found["blobs"] = [], []
    for repository, digest in sorted(builds):
        try:
            manifest = h.artifact_registry.fetch_manifest(repository, digest)
        except NotFound:
            continue
        found["build manifests"].append(f"{repository}@{digest}")
        blobs = [manifest.get("config", {}).get("digest"), *(layer.get("digest") for layer in manifest.get("layers", []))]
        found["blobs"] += [f"{repository}@{blob}" for blob in blobs if blob and h.artifact_registry.has_blob(
            repository, blob)]
    found["run journals"] = [r.run_id for r in runs]
    found["drill journals"] = sorted(p.parent.name for p in (settings.state_dir / "drills").glob("*/journal.json"))
    return found


def _versions(h: Harness, model: str) -> list[str]:
    """Every version of ``model`` the registry has: numbers from 1 up, to 3 past the last one found."""
    found, missing, number = [], 0, 0
    while missing < 3:
        number += 1
        try:
            found.append(f"{model}/{h.model_registry.get_version(model, str(number)).version}")
            missing = 0
        except NotFound:
            missing += 1
    return found


def _catalog(h: Harness) -> list[str]:
    """The repositories the registry's catalog lists, where the registry adapter offers one (Distribution and
    OCIR's: ``GET /v2/_catalog`` with the profile's login); [] for one that does not."""
    listed = getattr(h.artifact_registry, "repositories", None)
    return listed() if listed else []


# shared lookups --------------------------------------------------------------------------------------------
def _champion(h: Harness) -> ModelVersion:
    found = h.model_registry.by_alias(h.settings.model.name, CHAMPION)
    if found is None:
        raise UserError(f"model {h.settings.model.name} has no @{CHAMPION}", hint="run `lastmile run` first")
    return found


def _champion_reference(h: Harness) -> Reference:
    return reference_of(_champion(h))


def _last_good(h: Harness) -> journal_mod.RunRecord:
    last = journal_mod.last_good(h.settings.state_dir / "runs")
    if last is None or "builds" not in last.summary or "dataset" not in last.summary:
        raise UserError("no successful run records the builds and the data set", hint="run `lastmile run` first")
    return last


def _sampled(h: Harness, since: float, until: float) -> list[dict[str, float]]:
    return sampled_rows(h.object_store, h.settings.buckets.predictions, f"{drift.PREFIX}{h.settings.model.name}/",
                        since, until)


def _training_csv(h: Harness) -> bytes:
    bucket, key = _last_good(h).summary["dataset"]["uri"].removeprefix("s3://").split("/", 1)
    return h.object_store.get(bucket, key)


def _training_rows(h: Harness, target: str = "target") -> list[dict[str, float]]:
    return [{k: float(v) for k, v in row.items() if k != target and v not in ("", None)}
            for row in csv.DictReader(io.StringIO(_training_csv(h).decode()))]
