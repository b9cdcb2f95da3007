"""The rollout policy: the harness's, written with the Deployer port's deploy, status and rollback.

Kubernetes never rolls a Deployment back by itself (it reports ``ProgressDeadlineExceeded`` and waits), so the
policy lives here and every deployer gets it: deploy, follow the status until every replica of the new revision
is ready and the old ones are gone, and roll back when the revision crash-loops (a replica restarted
``failing_restarts`` times: its model did not load or did not reproduce the reference predictions) or when
the deadline passes. Checks through the stable endpoint come after, in the deployment stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.domain.errors import LastmileError, NotFound
from harness.domain.ports import Deployer
from harness.domain.records import DeploymentSpec, DeploymentStatus, Revision


class RolloutFailed(LastmileError):
    """A revision did not become ready; the message says why and what serves now."""


@dataclass(frozen=True)
class RolloutPolicy:
    deadline_s: float = 60.0
    failing_restarts: int = 2
    poll_s: float = 0.25


@dataclass(frozen=True)
class Progress:
    done: bool
    failing: str = ""  # why the revision cannot become ready, when it cannot


def judge(status: DeploymentStatus, revision: int, failing_restarts: int = 2) -> Progress:
    """Where the rollout of ``revision`` stands. Pure: the policy's decision, tested on records."""
    if status.revision is None or status.revision.number != revision:
        return Progress(False, f"the deployment moved on to revision "
                               f"{status.revision.number if status.revision else 'none'}")
    ours = status.of_revision(revision)
    crashing = [r for r in ours if r.restarts >= failing_restarts and r.state != "ready"]
    if crashing:
        first = crashing[0]
        detail = f" ({first.detail})" if first.detail else ""
        return Progress(False, f"replica {first.name} keeps failing: restarted {first.restarts} times{detail}")
    others = [r for r in status.replicas if r.revision != revision and r.state not in ("draining", "dead")]
    return Progress(status.ready >= status.desired and not others)


def roll_out(deployer: Deployer, spec: DeploymentSpec, policy: RolloutPolicy = RolloutPolicy(),
             clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> Revision:
    """Deploy ``spec`` and wait until it serves; on failure roll back and raise :class:`RolloutFailed`."""
    revision = deployer.deploy(spec)
    reason = await_revision(deployer, spec.name, revision.number, policy, clock, sleep)
    if reason:
        raise RolloutFailed(f"revision {revision.number} (model version {revision.model_version}) rolled back: "
                            f"{reason}; {undo(deployer, spec.name, policy, clock, sleep)}")
    return revision


def await_revision(deployer: Deployer, name: str, number: int, policy: RolloutPolicy,
                   clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> str:
    """Follow the rollout of revision ``number``: "" once it serves, else why it will not."""
    deadline = clock() + policy.deadline_s
    while True:
        progress = judge(deployer.status(name), number, policy.failing_restarts)
        if progress.done:
            return ""
        if progress.failing:
            return progress.failing
        if clock() >= deadline:
            return f"not ready within {policy.deadline_s:g} s"
        sleep(policy.poll_s)


def undo(deployer: Deployer, name: str, policy: RolloutPolicy, clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep) -> str:
    """Roll back to the previous revision and wait for it; say what serves afterwards."""
    try:
        previous = deployer.rollback(name)
    except NotFound:
        return "there is no previous revision, so nothing serves"
    reason = await_revision(deployer, name, previous.number, policy, clock, sleep)
    if reason:
        return f"the rollback to revision {previous.number} did not settle either: {reason}"
    return f"revision {previous.number} (model version {previous.model_version}) serves"
