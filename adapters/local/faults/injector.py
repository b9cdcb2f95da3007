"""The FaultInjector port for the local profile: each kind of fault by its module, and the ledger they share."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from harness.domain.errors import UserError
from harness.domain.faults import check
from harness.domain.records import FaultEvidence, FaultHandle, FaultSpec

from .base import Kind, Profile
from .credentials import SecretFaults
from .data import BlobFaults, ObjectFaults
from .ledger import Ledger, Record
from .processes import ProcessFaults
from .proxied import HttpFaults, NetworkFaults

if TYPE_CHECKING:
    from harness.bootstrap import Harness

DATA_TARGETS = {"object": ("corrupt", "delete"), "blob": ("corrupt", "delete"), "secret": ("remove", "rotate")}
DATA_KINDS: dict[str, Callable[[Profile], Kind]] = {"object": ObjectFaults, "blob": BlobFaults, "secret": SecretFaults}


class LocalFaultInjector:
    """Faults on the local stand-ins (see the package's docs for targets, reverts and evidence).

    ``faults_url`` overrides the fault proxy's API (tests that run one of their own); by default it is the
    ``faults`` stand-in's. Nothing is contacted until a fault is injected or asked about."""

    def __init__(self, h: Harness, faults_url: str | None = None):
        self.ledger = Ledger(h.settings.state_dir / "faults")
        self._profile = Profile(h, self.ledger, faults_url)

    def inject(self, spec: FaultSpec) -> FaultHandle:
        check(spec)
        try:
            json.dumps(dict(spec.params))
        except (TypeError, ValueError):
            raise UserError(f"{spec.target}: a fault's params must be JSON values (numbers, strings, lists, "
                            f"mappings), so that another process can revert it") from None
        kind = self._kind(spec)
        fault_id = f"fault-{uuid.uuid4().hex[:10]}"
        with self.ledger.locked() as book:
            if spec.kind == "data":
                clash = [r.id for r in book.active.values() if r.spec.kind == "data" and r.spec.target == spec.target]
                if clash:
                    raise UserError(f"{spec.target} already has an active data fault ({clash[0]}); revert it first")
            applied = kind.inject(fault_id, spec)
            record = Record(fault_id, spec, applied.detail, applied.state, time.time(), applied.evidence)
            book.add(record)
        return record.handle

    def evidence(self, fault_id: str) -> FaultEvidence:
        record = self.ledger.read().find(fault_id)
        if record.evidence is not None:
            return record.evidence
        return self._kind(record.spec).evidence(record)

    def revert(self, fault_id: str) -> FaultEvidence:
        """Undo the fault and keep its evidence as it stood, with what the revert did; a fault already reverted
        (here or by another process) returns that evidence again."""
        with self.ledger.locked() as book:
            record = book.find(fault_id)
            if record.reverted_at is not None and record.evidence is not None:
                return record.evidence
            kind = self._kind(record.spec)
            before = record.evidence or kind.evidence(record)
            final = FaultEvidence(before.took_effect, f"{before.detail}; revert: {kind.revert(record)}")
            book.retire(record, final, time.time())
        return final

    def active(self) -> list[FaultHandle]:
        return [record.handle for record in self.ledger.read().active.values()]

    def _kind(self, spec: FaultSpec) -> Kind:
        p = self._profile
        if spec.kind == "network":
            return NetworkFaults(p)
        if spec.kind == "http":
            return HttpFaults(p)
        if spec.kind == "process":
            return ProcessFaults(p)
        scheme = spec.target.partition(":")[0] if ":" in spec.target else ""
        if scheme not in DATA_TARGETS:
            raise UserError(f"a data fault cannot target {spec.target!r}; it takes object:<bucket>/<key>, "
                            f"blob:<repository>@<digest> or secret:<name>")
        if spec.action not in DATA_TARGETS[scheme]:
            raise UserError(f"a data fault on {spec.target} is one of {', '.join(DATA_TARGETS[scheme])}, "
                            f"not {spec.action}")
        return DATA_KINDS[scheme](p)
