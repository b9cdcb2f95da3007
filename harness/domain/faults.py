"""What every fault injector shares: the fault kinds and actions, and the one that refuses them all."""

from __future__ import annotations

from harness.domain.errors import UserError
from harness.domain.records import FaultEvidence, FaultHandle, FaultSpec

ACTIONS: dict[str, tuple[str, ...]] = {
    "network": ("latency", "bandwidth", "timeout", "reset_peer", "slow_close", "slicer", "limit_data"),
    "http": ("error",),
    "process": ("kill", "pause", "resume", "restart"),
    "data": ("corrupt", "delete", "remove", "rotate"),
}


def check(spec: FaultSpec) -> None:
    """A :class:`UserError` naming what is allowed when ``spec`` names an unknown kind or action."""
    if spec.kind not in ACTIONS:
        raise UserError(f"fault kind {spec.kind!r} is not one of {', '.join(ACTIONS)}")
    if spec.action not in ACTIONS[spec.kind]:
        raise UserError(f"a {spec.kind} fault's action {spec.action!r} is not one of {', '.join(ACTIONS[spec.kind])}")


class RefusingFaultInjector:
    """The ``none`` flavor: a profile that reaches real services injects nothing."""

    def __init__(self, profile: str):
        self.profile = profile

    def inject(self, spec: FaultSpec) -> FaultHandle:
        raise UserError(f"profile '{self.profile}' injects no faults (fault_injector flavor none)",
                        hint="run drills on the local profile")

    def evidence(self, fault_id: str) -> FaultEvidence:
        return FaultEvidence(False, "no fault is ever injected here")

    def revert(self, fault_id: str) -> FaultEvidence:
        return self.evidence(fault_id)

    def active(self) -> list[FaultHandle]:
        return []
