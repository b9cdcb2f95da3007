"""The probes of lastmile's Chaos Toolkit extension: they read the profile through its ports and change nothing.

A drill's steady-state hypothesis compares their results with tolerances, e.g.::

    - type: probe
      name: the-champion-answers-as-offline
      tolerance: true
      provider: {type: python, module: harness.drills.probes, func: endpoint_reproduces_champion}

Probes that answer a yes/no question return a bool and log why when the answer is no (the log lands in the
drill's journal); the others return plain JSON that a ``jsonpath`` or ``range`` tolerance can read.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from harness.domain.errors import LastmileError
from harness.domain.promotion import CHAMPION, PREVIOUS
from harness.drills import invariants
from harness.drills.actions import summarize
from harness.drills.catalog import probe
from harness.drills.context import current, harness_for
from harness.pipeline import journal as journal_mod
from harness.pipeline.delivery import check_endpoint, reference_of

log = logging.getLogger("lastmile.drills")

Configuration = Mapping[str, Any] | None


@probe
def champion(configuration: Configuration = None) -> str | None:
    """The model version @champion points at, or None."""
    h = harness_for(configuration)
    version = h.model_registry.by_alias(h.settings.model.name, CHAMPION)
    return version.version if version else None


@probe
def previous(configuration: Configuration = None) -> str | None:
    """The model version @previous points at, or None."""
    h = harness_for(configuration)
    version = h.model_registry.by_alias(h.settings.model.name, PREVIOUS)
    return version.version if version else None


@probe
def standins_healthy(configuration: Configuration = None) -> bool:
    """True when every stand-in of the profile answers its readiness check."""
    h = harness_for(configuration)
    sick = [f"{s.name} {s.state}" for s in h.supervisor.status(h.standins()) if s.state != "healthy"]
    if sick:
        log.warning("stand-ins not healthy: %s", ", ".join(sick))
    return not sick


@probe
def endpoint_reproduces_champion(configuration: Configuration = None) -> bool:
    """True when the deployment serves @champion and its stable endpoint reproduces the champion's reference
    predictions (the version tag ``lastmile.reference``)."""
    h = harness_for(configuration)
    version = h.model_registry.by_alias(h.settings.model.name, CHAMPION)
    if version is None:
        log.warning("no @champion")
        return False
    status = h.deployer.status(h.settings.project)
    serving = status.revision.model_version if status.revision else None
    if serving != version.version:
        log.warning("the deployment serves model version %s, not @champion %s", serving, version.version)
        return False
    try:
        check_endpoint(status.endpoint, reference_of(version), version.version)
    except LastmileError as exc:
        log.warning("%s", exc)
        return False
    return True


@probe
def deployment(configuration: Configuration = None) -> dict[str, Any]:
    """The deployment as its deployer reports it: ``{"revision", "model_version", "ready", "desired"}``."""
    h = harness_for(configuration)
    status = h.deployer.status(h.settings.project)
    return {"revision": status.revision.number if status.revision else None,
            "model_version": status.revision.model_version if status.revision else None,
            "ready": status.ready, "desired": status.desired}


@probe
def deployment_ready(configuration: Configuration = None) -> bool:
    """True when a revision is deployed and as many of its replicas are ready as desired."""
    h = harness_for(configuration)
    status = h.deployer.status(h.settings.project)
    if status.revision is None or status.ready < status.desired:
        log.warning("deployment: revision %s, %s/%s ready", status.revision.number if status.revision else None,
                    status.ready, status.desired)
        return False
    return True


@probe
def last_run(configuration: Configuration = None) -> dict[str, Any]:
    """The newest pipeline run: ``{"status", "run_id", "failed_stage", "error", "diagnosis"}`` (all None when
    there is none)."""
    h = harness_for(configuration)
    runs = journal_mod.history(h.settings.state_dir / "runs")
    return summarize(runs[0] if runs else None)


@probe
def fault_took_effect(fault_id: str | None = None, configuration: Configuration = None) -> bool:
    """True when the fault (an id or a label; without one, every fault this drill injected) provably met
    something, as the FaultInjector's evidence says."""
    h, context = harness_for(configuration), current()
    if fault_id is None:
        ids = list(context.faults)
        if not ids:
            log.warning("this drill injected no fault")
            return False
    else:
        known = context.find(fault_id)
        ids = [known.handle.id if known else fault_id]
    for one in ids:
        known = context.find(one)
        evidence = known.evidence if known and known.evidence else h.fault_injector.evidence(one)
        if not evidence.took_effect:
            log.warning("fault %s did not take effect: %s", one, evidence.detail)
            return False
    return True


@probe
def active_faults(configuration: Configuration = None) -> int:
    """How many faults are active on the profile (this drill's and any other's)."""
    return len(harness_for(configuration).fault_injector.active())


@probe
def log_events(event: str | None = None, subject: str | None = None, configuration: Configuration = None) -> int:
    """How many events the profile's log sink holds (only ``event``'s, only ``subject``'s when given)."""
    h = harness_for(configuration)
    return sum(1 for e in h.log_sink.events(subject) if event is None or e.event == event)


@probe
def invariants_hold(names: list[str] | None = None, configuration: Configuration = None) -> bool:
    """True when lastmile's invariants hold right now (``names``: some of
    champion, runs, processes, secrets; all by default). The runner checks them all after every drill anyway;
    this lets a hypothesis check them before and after the method too."""
    found = invariants.check(harness_for(configuration), names=names)
    broken = {name: v for name, v in found.items() if v}
    for name, violations in broken.items():
        log.warning("invariant %s: %s", name, "; ".join(violations))
    return not broken
