"""What a drill's activities share within one process: the harness, and the faults the drill injected.

Activities find their harness with :func:`harness_for`. It is, in order: the one handed in with
:func:`use_harness` (how ``lastmile drill run`` passes the CLI's harness, and how tests pass one built with
:class:`harness.bootstrap.Given` fakes), else one built once per process from the drill's configuration
(``lastmile_config`` and ``lastmile_profile``), else from ``$LASTMILE_CONFIG`` / ``$LASTMILE_PROFILE`` /
``lastmile.yaml`` found upwards from the working directory (how ``chaos run`` works).

Every fault a drill injects is remembered in the current :class:`DrillContext` by id (and by the label the drill
gave it), with the evidence its revert returned, so the runner can judge and revert what the drill's rollbacks
did not. Chaos Toolkit runs background activities in threads, so the context is process-wide, behind a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.bootstrap import Harness, build
from harness.config.settings import load_settings
from harness.domain.records import FaultEvidence, FaultHandle

_lock = threading.RLock()
_given: list[Harness] = []
_built: dict[tuple[str | None, str | None], Harness] = {}


@contextmanager
def use_harness(h: Harness) -> Iterator[Harness]:
    """Within the block, every activity in this process uses ``h`` (tests: a harness of fakes)."""
    with _lock:
        _given.append(h)
    try:
        yield h
    finally:
        with _lock:
            _given.remove(h)


def harness_for(configuration: Mapping[str, Any] | None = None) -> Harness:
    """The harness an activity works on (see the module docstring for the order of lookup)."""
    with _lock:
        if _given:
            return _given[-1]
        configuration = configuration or {}
        path = configuration.get("lastmile_config") or None
        profile = configuration.get("lastmile_profile") or None
        key = (str(path) if path else None, str(profile) if profile else None)
        if key not in _built:
            _built[key] = build(load_settings(Path(path) if path else None, key[1]))
        return _built[key]


def forget() -> None:
    """Drop the harnesses built here, so the next activity builds afresh (after stand-ins moved ports)."""
    with _lock:
        _built.clear()


@dataclass
class InjectedFault:
    """A fault the drill injected, and its evidence once it was reverted."""

    handle: FaultHandle
    label: str = ""
    evidence: FaultEvidence | None = None
    reverted_by: str = ""  # "drill" (one of its actions), "lastmile" (the runner, after it), "elsewhere"
    evidence_error: str = ""  # why there is no evidence, when reading it failed

    @property
    def took_effect(self) -> bool | None:
        """True or False as its evidence says; None while unknown."""
        return None if self.evidence is None else self.evidence.took_effect

    def to_json(self) -> dict[str, Any]:
        spec = self.handle.spec
        return {"id": self.handle.id, "label": self.label, "kind": spec.kind, "target": spec.target,
                "action": spec.action, "params": dict(spec.params), "detail": self.handle.detail,
                "took_effect": self.took_effect,
                "evidence": self.evidence.detail if self.evidence else self.evidence_error,
                "reverted_by": self.reverted_by}


class DrillContext:
    """The faults one drill injected, by id, in injection order; when it last started a pipeline run."""

    def __init__(self, drill: str = ""):
        self.drill = drill
        self.faults: dict[str, InjectedFault] = {}
        self.pipeline_started: float | None = None  # when the drill last called run_pipeline (waits start there)
        self._lock = threading.Lock()

    def remember(self, handle: FaultHandle, label: str = "") -> InjectedFault:
        with self._lock:
            fault = self.faults[handle.id] = InjectedFault(handle, label)
            return fault

    def find(self, id_or_label: str) -> InjectedFault | None:
        """The fault with this id, else the latest one with this label."""
        with self._lock:
            if id_or_label in self.faults:
                return self.faults[id_or_label]
            labelled = [f for f in self.faults.values() if f.label == id_or_label]
            return labelled[-1] if labelled else None

    def settled(self, fault_id: str, evidence: FaultEvidence, by: str) -> None:
        """Record a revert: the evidence it returned, and who reverted (the first revert counts)."""
        with self._lock:
            fault = self.faults.get(fault_id)
            if fault is not None and fault.evidence is None:
                fault.evidence, fault.reverted_by = evidence, by

    def unsettled(self) -> list[InjectedFault]:
        """Faults whose revert has not been recorded yet."""
        with self._lock:
            return [f for f in self.faults.values() if f.evidence is None]

    def to_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_json() for f in self.faults.values()]


_default = DrillContext()
_contexts: list[DrillContext] = []


def current() -> DrillContext:
    """The running drill's context: the runner's, or one for the whole process (``chaos run`` runs one drill)."""
    with _lock:
        return _contexts[-1] if _contexts else _default


@contextmanager
def running(context: DrillContext) -> Iterator[DrillContext]:
    """Make ``context`` the current one for the block (the runner wraps each drill in this)."""
    with _lock:
        _contexts.append(context)
    try:
        yield context
    finally:
        with _lock:
            _contexts.remove(context)


def runner_active() -> bool:
    """True while lastmile's runner drives a drill in this process (the control then stands aside)."""
    with _lock:
        return bool(_contexts)
