"""The local deployer under steady load: a rolling update, a killed replica and a self-rolled-back deploy.

One pipeline run (all seven stages) deploys a model behind the deployer's stable endpoint; then each
test drives Locust in processes of its own (``harness.load.background``) against that endpoint while it
changes the deployment, and judges the load's counts.
"""

from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from harness.bootstrap import Harness, build
from harness.config.settings import load_settings
from harness.domain.records import ArtifactRef, DeploymentSpec, DeploymentStatus, Reference
from harness.load import background
from harness.pipeline.delivery import policy_of, reference_of
from harness.pipeline.rollout import RolloutFailed, roll_out
from harness.pipeline.runner import Pipeline
from tests.integration.conftest import make_project

pytestmark = pytest.mark.integration

RATE = 60
SETTLE_TIMEOUT_S = 60.0
REPLACEMENT_BUDGET_S = 5.0
POLL_S = 0.25  # the controller probes every 0.25 s; each status call costs the test process ~10 ms of CPU
KILL_POLL_S = 0.1  # finer while timing a replacement against its budget


@dataclass
class Deployed:
    h: Harness
    name: str
    url: str  # the stable endpoint's /invocations
    spec: DeploymentSpec  # what the pipeline deployed; replace(...) makes the next revision
    endpoint: str  # the stable endpoint's base URL
    rows: list[dict]  # one reference row, each request's body


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, stack) -> Deployed:
    """A model deployed by one full pipeline run from a fresh git project wired to the session's stand-ins."""
    repo = tmp_path_factory.mktemp("under-load") / "project"
    environ = make_project(repo, stack, "load")
    h = build(load_settings(repo / "lastmile.yaml", "local", environ))
    record = Pipeline(h).run()
    assert record.status == "succeeded", record.stages
    out = record.stages["deployment"].outputs
    serving = record.summary["builds"]["serving"]
    champion = h.model_registry.by_alias(h.settings.model.name, "champion")
    spec = DeploymentSpec(h.settings.project, ArtifactRef(serving["registry"], serving["repository"],
                                                          serving["digest"]), champion, reference_of(champion))
    name = h.settings.project
    endpoint = h.deployer.status(name).endpoint
    return Deployed(h, name, endpoint + "/invocations", spec, endpoint, out["reference_rows"][:1])


class Load:
    """Locust at a constant rate in processes of its own (``harness.load.background``); ``stop()`` ends it and reads
    its figures."""

    def __init__(self, endpoint: str, rows: list[dict], folder: Path, rate: int = RATE, duration_s: float = 90.0):
        self.endpoint, self.rows, self.folder, self.rate, self.duration_s = endpoint, rows, folder, rate, duration_s
        self.load: background.BackgroundLoad | None = None

    def __enter__(self) -> Load:
        self.load = background.start(self.rate, self.endpoint, self.folder, self.rows, duration_s=self.duration_s)
        assert self.load.wait_started(), (self.load.folder / "locust.log").read_text()[-2000:]
        time.sleep(2.0)  # steady load before the change under test
        return self

    def stop(self) -> dict:
        assert self.load is not None
        result = self.load.stop()
        t = result["totals"]
        return {"sent": t["requests"], "ok": t["requests"] - t["failures"], "failed": t["failures"],
                "elapsed_s": result["elapsed_s"], "achieved_rps": t["rps"], "error_kinds": result["error_kinds"],
                "latency_ms": {"p50": t["p50_ms"], "p95": t["p95_ms"], "p99": t["p99_ms"], "max": t["max_ms"]},
                "failures": result["failures_seen"]}

    def __exit__(self, *_exc) -> None:
        if self.load is not None and self.load.result is None:
            self.load.kill()


def _settled(status: DeploymentStatus) -> bool:
    """Every replica is of the current revision and ready, and there are as many as desired."""
    current = status.revision.number if status.revision else None
    return (status.ready == status.desired == len(status.replicas)
            and all(r.revision == current and r.state == "ready" for r in status.replicas))


def _wait_settled(d: Deployed, timeout_s: float = SETTLE_TIMEOUT_S, standby: bool = False) -> DeploymentStatus:
    """Settled, and with ``standby`` also holding a warm spare replica (which the controller starts once settled)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = d.h.deployer.status(d.name)
        if _settled(status) and (not standby or status.standby == "warm"):
            return status
        assert time.monotonic() < deadline, f"deployment never settled: {status}"
        time.sleep(POLL_S)


def _figures(summary: dict) -> str:
    return (f"sent {summary['sent']} in {summary['elapsed_s']} s ({summary['achieved_rps']} rps), "
            f"failed {summary['failed']} {summary['error_kinds']}, latency {summary['latency_ms']}, "
            f"by Locust (closed loop: no send lag to report)")


def test_rolling_update_under_steady_load_drops_nothing(deployed, tmp_path):
    before = _wait_settled(deployed)
    with Load(deployed.endpoint, deployed.rows, tmp_path / "rolling") as load:
        began = time.monotonic()
        revision = roll_out(deployed.h.deployer, deployed.spec, policy_of(deployed.h))
        after = _wait_settled(deployed)
        rollout_s = time.monotonic() - began
        time.sleep(1.0)
        summary = load.stop()
    print(f"\nrolling update {before.revision.number} -> {revision.number} in {rollout_s:.1f} s; "
          f"{_figures(summary)}")
    assert revision.number > before.revision.number
    assert after.revision.number == revision.number
    assert {r.revision for r in after.replicas} == {revision.number}
    assert not {r.name for r in before.replicas} & {r.name for r in after.replicas}, "every replica is replaced"
    assert summary["elapsed_s"] >= rollout_s
    assert summary["failed"] == 0, _figures(summary) + f" at {summary['failures'][:10]}"
    assert summary["ok"] / summary["elapsed_s"] >= 50, _figures(summary)


def test_a_killed_replica_is_routed_around_and_replaced(deployed, stack, tmp_path, budget):
    before = _wait_settled(deployed, standby=True)
    victim = before.replicas[0]
    with Load(deployed.endpoint, deployed.rows, tmp_path / "kill") as load:
        os.kill(victim.pid, signal.SIGKILL)
        killed = time.monotonic()
        while True:
            status = deployed.h.deployer.status(deployed.name)
            if victim.pid not in {r.pid for r in status.replicas} and _settled(status):
                break
            assert time.monotonic() - killed < SETTLE_TIMEOUT_S, f"no replacement: {status}"
            time.sleep(KILL_POLL_S)
        replacement_s = time.monotonic() - killed
        time.sleep(1.0)
        summary = load.stop()
    print(f"\nreplica {victim.name} (pid {victim.pid}) replaced in {replacement_s:.2f} s; {_figures(summary)}")
    assert summary["achieved_rps"] >= 50, _figures(summary)
    assert summary["failed"] <= 0.005 * summary["sent"], _figures(summary) + f" at {summary['failures'][:10]}"
    budget("a killed replica replaced", replacement_s, REPLACEMENT_BUDGET_S)
    controller_log = (stack.settings.state_dir / "logs" / "deployer.log").read_text()
    assert '"standby": "warm"' in controller_log and "activated the standby" in controller_log, \
        "the replacement is the warm spare, not a cold start"
    assert _wait_settled(deployed, standby=True).standby == "warm", "a new spare warms up after the old one is used"


def test_a_revision_whose_model_does_not_reproduce_is_rolled_back_while_the_old_one_serves(deployed, stack, tmp_path):
    before = _wait_settled(deployed)
    wrong = Reference(deployed.spec.reference.rows, tuple("no-such-class" for _ in deployed.spec.reference.predictions))
    broken = replace(deployed.spec, reference=wrong)
    with Load(deployed.endpoint, deployed.rows, tmp_path / "rollback") as load:
        began = time.monotonic()
        with pytest.raises(RolloutFailed, match="rolled back") as caught:
            roll_out(deployed.h.deployer, broken, policy_of(deployed.h))
        rollback_s = time.monotonic() - began
        after = _wait_settled(deployed)
        time.sleep(1.0)
        summary = load.stop()
    print(f"\nbroken deploy rolled back in {rollback_s:.1f} s ({caught.value}); {_figures(summary)}")
    assert after.revision == before.revision
    assert {r.name for r in after.replicas} == {r.name for r in before.replicas}, "the old replicas keep serving"
    assert f"revision {before.revision.number}" in str(caught.value) and "serves" in str(caught.value)
    failing = re.search(r"replica (\S+) keeps failing", str(caught.value)).group(1)
    replica_log = (stack.settings.state_dir / "deployer" / "logs" / f"{failing}.log").read_text()
    assert "does not reproduce" in replica_log, replica_log[-2000:]
    assert summary["failed"] == 0 and summary["ok"] > 0, _figures(summary) + f" at {summary['failures'][:10]}"
