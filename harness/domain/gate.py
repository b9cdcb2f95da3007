"""The promotion gate: a challenger replaces ``@champion`` only when it is good enough."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide(challenger: float, champion: float | None, *, metric: str, tolerance: float, floor: float) -> Decision:
    """Promote when ``challenger >= floor`` and ``challenger >= champion - tolerance``.

    Both scores must come from the same held-out data; a first model (no champion) needs only the floor.
    """
    if challenger < floor:
        return Decision(False, f"{metric} {challenger:.4f} is below the floor {floor:.4f}")
    if champion is None:
        return Decision(True, f"first model: {metric} {challenger:.4f} meets the floor {floor:.4f}")
    if challenger < champion - tolerance:
        return Decision(False, f"{metric} {challenger:.4f} is worse than the champion's {champion:.4f} "
                               f"by more than the tolerance {tolerance:.4f}")
    return Decision(True, f"{metric} {challenger:.4f} vs champion {champion:.4f} (tolerance {tolerance:.4f})")
