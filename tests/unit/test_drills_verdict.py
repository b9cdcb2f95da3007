"""The verdict decision table: Chaos Toolkit's status and deviation, fault evidence and invariants."""

from __future__ import annotations

import pytest

from harness.drills.verdict import decide


def probe(name: str, output, tolerance, met: bool = True, status: str = "succeeded", exception=None) -> dict:
    run = {"activity": {"type": "probe", "name": name, "tolerance": tolerance}, "output": output,
           "status": status, "tolerance_met": met}
    if exception:
        run["exception"] = exception
    return run


HELD = {"steady_state_met": True, "probes": [probe("champion-is-1", "1", "1")]}
BROKEN = {"steady_state_met": False, "probes": [probe("champion-is-1", "2", "1", met=False)]}


def chaos(status="completed", deviated=False, before=HELD, after=HELD, run=(), rollbacks=()) -> dict:
    return {"status": status, "deviated": deviated, "steady_states": {"before": before, "after": after},
            "run": list(run), "rollbacks": list(rollbacks)}


TOOK = {"id": "fault-1", "kind": "process", "target": "mlflow", "action": "kill", "took_effect": True,
        "evidence": "pid 42 was running", "reverted_by": "drill"}
MISSED = {**TOOK, "took_effect": False, "evidence": "no process to kill"}
UNKNOWN = {**TOOK, "took_effect": None, "evidence": ""}
STUCK = {**TOOK, "took_effect": None, "evidence": "revert failed: UnreachableError", "reverted_by": ""}
CLEAN: dict[str, list[str]] = {"champion": [], "runs": [], "processes": [], "secrets": []}
LEAK = {**CLEAN, "secrets": [".lastmile/logs/x.log holds the value of secret:mlflow-password"]}
FAILED_ACTION = {"activity": {"type": "action", "name": "kill-mlflow"}, "status": "failed",
                 "exception": ["Traceback...\n", "chaoslib.exceptions.ActivityFailed: UserError: no target\n"]}


@pytest.mark.parametrize(("journal", "faults", "found", "verdict", "reason"), [
    (chaos(), [TOOK], CLEAN, "passed", "completed; the steady state held; 1 fault took effect"),
    (chaos(deviated=True, after=BROKEN), [TOOK], CLEAN, "deviated",
     "probe 'champion-is-1' returned \"2\", outside its tolerance \"1\""),
    (chaos(status="failed", deviated=True,
           after={"steady_state_met": False, "probes": [probe("p", None, True, met=False, status="failed",
                                                              exception=["ActivityFailed: mlflow down\n"])]}),
     [TOOK], CLEAN, "deviated", "probe 'p' failed: ActivityFailed: mlflow down"),
    (chaos(before=BROKEN, after=None), [], CLEAN, "failed",
     "the steady state did not hold before the method, which did not run"),
    (chaos(status="failed", before={"steady_state_met": False, "probes": [
        probe("p", None, True, met=False, status="failed", exception=["ActivityFailed: boom\n"])]}, after=None),
     [], CLEAN, "failed", "a steady-state probe failed: probe 'p' failed: ActivityFailed: boom"),
    (chaos(status="aborted", run=[FAILED_ACTION]), [], CLEAN, "aborted", "Chaos Toolkit aborted the method"),
    (chaos(status="interrupted"), [TOOK], {}, "interrupted", "interrupted"),
    (chaos(), [MISSED], CLEAN, "fault-not-applied", "fault fault-1, process kill on mlflow, met nothing"),
    (chaos(), [UNKNOWN], CLEAN, "fault-not-applied", "process kill on mlflow, has no evidence"),
    (chaos(), [STUCK], CLEAN, "failed", "may still be active (revert failed: UnreachableError)"),
    (chaos(), [TOOK], LEAK, "invariant-violated", "invariant secrets: .lastmile/logs/x.log holds the value of"),
    (chaos(run=[FAILED_ACTION]), [], CLEAN, "failed", "activity 'kill-mlflow' failed: chaoslib.exceptions"),
    (chaos(rollbacks=[{**FAILED_ACTION, "activity": {"name": "revert"}}]), [], CLEAN, "failed",
     "rollback 'revert' failed"),
])
def test_decision_table(journal, faults, found, verdict, reason):
    decided = decide(journal, faults, found)
    assert decided.name == verdict
    assert reason in decided.reason
    assert decided.passed is (verdict == "passed")


def test_completed_with_deviated_true_is_never_passed():
    """This machine's chaoslib says ``status: completed`` with ``deviated: true``: both are read."""
    decided = decide(chaos(status="completed", deviated=True, after=BROKEN), [TOOK], CLEAN)
    assert decided.name == "deviated"


def test_every_finding_is_in_the_reason_the_deciding_one_first():
    decided = decide(chaos(deviated=True, after=BROKEN), [MISSED], LEAK)
    assert decided.name == "deviated"
    parts = decided.reason.split("; ")
    assert parts[0].startswith("the steady state deviated")
    assert parts[1].startswith("invariant secrets:") and parts[2].startswith("fault fault-1")


def test_a_status_chaos_toolkit_does_not_define_is_not_passed():
    assert decide(chaos(status=None), [], CLEAN).name == "failed"
