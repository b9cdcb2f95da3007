"""The verdict of a drill, from Chaos Toolkit's journal, the evidence of its faults and the invariants.

Chaos Toolkit's own status is not enough: its journal says ``"status": "completed"`` with ``"deviated": true``
when the hypothesis failed after the method, and ``completed`` (not deviated) when the hypothesis already failed
*before* the method, which then never ran. Both fields and the steady states are read. In order of precedence:

======================  =====================================================================================
``interrupted``         Ctrl-C (or a signal) stopped the drill; its faults were reverted
``aborted``             Chaos Toolkit aborted the method (an activity raised where it may not)
``deviated``            the steady-state hypothesis did not hold after the method (``deviated: true``)
``failed``              Chaos Toolkit's status ``failed`` (a probe raised), the hypothesis did not hold before
                        the method (so nothing was tested), an action or rollback failed, or a fault could not
                        be reverted
``invariant-violated``  one of lastmile's invariants does not hold after the drill
``fault-not-applied``   a fault the drill injected provably met nothing (or its evidence cannot be read)
``passed``              completed, not deviated, every fault took effect, every invariant holds
======================  =====================================================================================

The reason lists every finding, the deciding one first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PASSED = "passed"
DEVIATED = "deviated"
ABORTED = "aborted"
FAILED = "failed"
FAULT_NOT_APPLIED = "fault-not-applied"
INVARIANT_VIOLATED = "invariant-violated"
INTERRUPTED = "interrupted"

PRECEDENCE = (INTERRUPTED, ABORTED, DEVIATED, FAILED, INVARIANT_VIOLATED, FAULT_NOT_APPLIED)


@dataclass(frozen=True)
class Verdict:
    name: str
    reason: str

    @property
    def passed(self) -> bool:
        return self.name == PASSED


def decide(journal: Mapping[str, Any], faults: Sequence[Mapping[str, Any]],
           invariants: Mapping[str, Sequence[str]]) -> Verdict:
    """The verdict of one drill. ``journal``: Chaos Toolkit's; ``faults``: the drill's faults as
    :meth:`~harness.drills.context.InjectedFault.to_json` gives them; ``invariants``: violations by name."""
    findings: list[tuple[str, str]] = []
    status = journal.get("status")
    if status == "interrupted":
        findings.append((INTERRUPTED, "interrupted; the drill's faults were reverted"))
    elif status == "aborted":
        findings.append((ABORTED, "Chaos Toolkit aborted the method" + _first_failure(journal.get("run"))))
    if journal.get("deviated"):
        findings.append((DEVIATED, "the steady state deviated after the method: "
                         + _unmet(journal.get("steady_states", {}).get("after"))))
    elif status == "failed":
        findings.append((FAILED, "a steady-state probe failed: " + _unmet(_states(journal))))
    before = (journal.get("steady_states") or {}).get("before")
    if before and before.get("steady_state_met") is False and not journal.get("deviated") and status != "failed":
        findings.append((FAILED, "the steady state did not hold before the method, which did not run: "
                         + _unmet(before)))
    for part in ("run", "rollbacks"):
        failed = [r for r in journal.get(part) or () if r.get("status") == "failed"]
        findings += [(FAILED, f"{'rollback' if part == 'rollbacks' else 'activity'} {_name(r)} failed: "
                      f"{_exception(r)}") for r in failed]
    for name, violations in invariants.items():
        findings += [(INVARIANT_VIOLATED, f"invariant {name}: {v}") for v in violations]
    for fault in faults:
        if not fault.get("reverted_by"):
            findings.append((FAILED, f"fault {_fault(fault)} may still be active ({fault.get('evidence') or '-'}); "
                                     "`lastmile drill revert` undoes it"))
        elif fault.get("took_effect") is not True:
            proof = "met nothing" if fault.get("took_effect") is False else "has no evidence"
            findings.append((FAULT_NOT_APPLIED, f"fault {_fault(fault)} {proof}: {fault.get('evidence') or '-'}"))
    if status not in ("completed", "failed", "aborted", "interrupted") and not findings:
        findings.append((FAILED, f"Chaos Toolkit ended with status {status!r}"))
    if not findings:
        return Verdict(PASSED, "completed; the steady state held" + (
            f"; {len(faults)} fault{'s' if len(faults) != 1 else ''} took effect" if faults else "")
            + "; every invariant holds")
    findings.sort(key=lambda f: PRECEDENCE.index(f[0]))
    return Verdict(findings[0][0], "; ".join(text for _, text in findings))


def _states(journal: Mapping[str, Any]) -> Mapping[str, Any] | None:
    states = journal.get("steady_states") or {}
    return states.get("after") or states.get("before")


def _unmet(state: Mapping[str, Any] | None) -> str:
    """The probe that broke a hypothesis: its name, what it returned and what was tolerated (or its error)."""
    probes = (state or {}).get("probes") or []
    broken = next((p for p in probes if p.get("tolerance_met") is False or p.get("status") == "failed"), None)
    if broken is None:
        return "no probe result recorded"
    if broken.get("status") == "failed":
        return f"probe {_name(broken)} failed: {_exception(broken)}"
    tolerance = broken.get("activity", {}).get("tolerance")
    return f"probe {_name(broken)} returned {_short(broken.get('output'))}, outside its tolerance {_short(tolerance)}"


def _first_failure(runs: Iterable[Mapping[str, Any]] | None) -> str:
    failed = next((r for r in runs or () if r.get("status") == "failed"), None)
    return f": {_name(failed)} failed: {_exception(failed)}" if failed else ""


def _name(run: Mapping[str, Any]) -> str:
    return repr(run.get("activity", {}).get("name", "?"))


def _exception(run: Mapping[str, Any]) -> str:
    lines = [line.strip() for chunk in run.get("exception") or () for line in str(chunk).splitlines() if line.strip()]
    return lines[-1] if lines else "no exception recorded"


def _fault(fault: Mapping[str, Any]) -> str:
    label = f" ({fault['label']})" if fault.get("label") else ""
    return f"{fault.get('id')}{label}, {fault.get('kind')} {fault.get('action')} on {fault.get('target')},"


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
