"""Finding what a fault's target names: a stand-in's processes, a replica of the deployment, the running job."""

from __future__ import annotations

import json
from dataclasses import dataclass

import psutil

from harness.domain.errors import NotFound, UserError
from harness.domain.records import DeploymentStatus, ReplicaStatus
from harness.infra.processes import same_process

from .base import Profile


def replica(p: Profile, target: str) -> ReplicaStatus:
    """The live replica ``replica:<name>`` names; for ``replica:any`` the first ready one by name (the first live
    one when none is ready), so that a drill hits the same one each time it runs on the same deployment."""
    wanted = target.partition(":")[2]
    try:
        status = owned_replicas(p)
    except NotFound:
        raise UserError(f"{target}: no deployment {p.project!r} runs, so there is no replica to hit",
                        hint="deploy first (`lastmile run`)") from None
    live = sorted((r for r in status.replicas if r.pid and r.state not in ("dead", "draining")), key=lambda r: r.name)
    every = ", ".join(f"{r.name} ({r.state})" for r in status.replicas) or "none"
    if wanted == "any":
        chosen = [r for r in live if r.state == "ready"] or live
        if not chosen:
            raise UserError(f"replica:any: deployment {p.project!r} has no live replica; replicas: {every}")
        return chosen[0]
    for r in live:
        if r.name == wanted:
            return r
    raise UserError(f"{target}: deployment {p.project!r} has no live replica {wanted!r}; replicas: {every}")


def owned_replicas(p: Profile) -> DeploymentStatus:
    """The deployment as the owner of its replica processes reports it: the local deployment controller, whose
    replicas carry their pids. On the local profile the Deployer port is that controller's client; on a profile
    whose deployer goes through the controller's Kubernetes front door (``oke`` on oci-local), pods carry no pid,
    so the controller's admin API is asked directly (the pods are named as its replicas)."""
    if getattr(p.h.settings.ports.deployer, "flavor", "local") == "local":
        return p.h.deployer.status(p.project)
    from adapters.local.deployer.client import LocalDeployer
    from adapters.local.standins import DEPLOYER_TOKEN

    controller = LocalDeployer(p.direct_url("deployer", None), p.h.secret(str(DEPLOYER_TOKEN)), None,
                               p.h.settings.state_dir / "deployer" / "bundles", {}, timeout_s=10.0)
    return controller.status(p.project)


def standin_processes(p: Profile, name: str) -> list[psutil.Process]:
    """Every live process of the stand-in ``name`` as the supervisor counts them (its leader, the leader's
    descendants, anything working in its home): a server's children keep serving when only the leader stops."""
    running = p.h.supervisor.running()
    if name not in running:
        up = ", ".join(sorted(running)) or "none"
        raise UserError(f"stand-in {name} is not running (running: {up})", hint="run `lastmile up`")
    return p.h.supervisor.processes(name)


def standin_running(p: Profile, name: str) -> bool:
    try:
        return bool(standin_processes(p, name))
    except UserError:
        return False


@dataclass(frozen=True)
class Job:
    run_id: str
    pid: int  # the leader of the job's process group (its ``sh`` wrapper, or the process in its container)
    container: str | None = None  # the job's container, when the job runner runs it in one


def current_job(p: Profile) -> Job:
    """The newest IN_PROGRESS job run whose process still lives, from ``<state_dir>/jobs/*/run.json``."""
    jobs = p.h.settings.state_dir / "jobs"
    running = []
    for path in jobs.glob("*/run.json"):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a run being written right now is not the running one
        pid = record.get("pid")
        if record.get("state") == "IN_PROGRESS" and pid and same_process(pid, record.get("created"), tolerance=1.0):
            running.append(record)
    if not running:
        raise UserError(f"job:current: no training job is running (no IN_PROGRESS run with a live process under "
                        f"{jobs})")
    newest = max(running, key=lambda r: r.get("started_at", 0.0))
    return Job(newest["run_id"], newest["pid"], newest.get("container_id") or None)


def _live(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
