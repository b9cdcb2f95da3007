"""What every kind of local fault provides to the injector, and the profile's pieces they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from harness.domain.errors import UserError
from harness.domain.records import FaultEvidence, FaultSpec

if TYPE_CHECKING:
    from harness.bootstrap import Harness

    from .ledger import Ledger, Record

STANDINS = ("faults", "object_store", "registry", "mlflow", "deployer", "oci")
"""The stand-ins a process fault can hit, by the supervisor's names."""

ROUTES = ("object_store", "registry", "mlflow", "deployer", "service", "oci")
"""The routes the fault proxy fronts, each a proxy of that name (``oci``: the OCI API stand-in, on oci-local)."""

PORT_ROUTES = {"object_store": "object_store", "registry": "artifact_registry", "mlflow": "model_registry",
               "deployer": "deployer"}
"""Targets that name what a port reaches, by the stand-in that serves it on the local profile."""


@dataclass(frozen=True)
class Applied:
    """What an injection did: a line for the handle, the JSON ``state`` its revert and evidence need, and its
    evidence when it is settled at once (a process was alive, the data existed)."""

    detail: str
    state: dict[str, Any] = field(default_factory=dict)
    evidence: FaultEvidence | None = None


class Kind(Protocol):
    def inject(self, fault_id: str, spec: FaultSpec) -> Applied: ...

    def evidence(self, record: Record) -> FaultEvidence:
        """What the fault met so far; called only for faults whose evidence was not settled at injection."""
        ...

    def revert(self, record: Record) -> str:
        """Undo the fault; a short line saying what was done (or why nothing needed doing)."""
        ...


class Settled:
    """For kinds whose evidence is settled when injected (a process was running, the data existed)."""

    def evidence(self, record: Record) -> FaultEvidence:
        assert record.evidence is not None, f"{record.id} was recorded without its evidence"
        return record.evidence


@dataclass
class Profile:
    """The harness of the profile plus where the faults live: what every kind is built with."""

    h: Harness
    ledger: Ledger
    faults_url: str | None = None

    @property
    def project(self) -> str:
        return self.h.settings.project

    def fault_proxy_url(self) -> str:
        url = self.faults_url or self.h.endpoints().urls.get("faults")
        if not url:
            raise UserError("network and http faults need the fault proxy, and the 'faults' stand-in is not up",
                            hint="run `lastmile up` with standins.faults.enabled true")
        return url

    def route_for(self, target: str) -> str:
        """The stand-in route a target reaches on this profile: the route of that name when one runs, else the
        stand-in that serves the port the target names (on oci-local, ``object_store`` is the OCI API
        stand-in's route ``oci``, which also serves the vault and logging)."""
        urls = self.h.endpoints().urls
        port = PORT_ROUTES.get(target)
        if target in urls or port is None:
            return target
        try:
            where = getattr(self.h.settings.ports, port).where(self.h).rstrip("/")
        except UserError:  # nothing up to serve it: the target is refused or missed by name, as before
            return target
        return next((route for route, url in urls.items() if url and where.startswith(url.rstrip("/"))), target)

    def direct_url(self, route: str, configured: str | None) -> str:
        """Where ``route``'s own server listens, bypassing the fault proxy when the supervisor knows it (so a data
        fault is not slowed by a network fault); else where clients connect."""
        if not configured:
            internal = getattr(self.h.supervisor, "internal_endpoints", None)
            url = internal().urls.get(route) if internal else None
            if url:
                return url
        return self.h.endpoint(route, configured)


def refuse_target(kind: str, target: str, allowed: str) -> UserError:
    return UserError(f"a {kind} fault cannot target {target!r}; it takes {allowed}")
