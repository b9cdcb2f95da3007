"""Process faults: signals to a stand-in's whole process family, to a replica's or the running job's process group.

``kill`` is SIGKILL (a crash, no clean-up), ``pause`` SIGSTOP, ``resume`` SIGCONT; ``restart`` kills a stand-in and
starts it again with the supervisor (a replica's restart is its kill: the controller brings it back).

A target that runs in a container (a stand-in, replica or job of the containers profile) gets the same faults from
the Docker engine instead (:mod:`.boxed`): kill, pause, unpause, and ``docker restart`` for a stand-in.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import psutil

from harness.domain.errors import UserError
from harness.domain.records import FaultEvidence, FaultSpec
from harness.infra.processes import group_members, same_process, signal_group

from . import targets
from .base import STANDINS, Applied, Profile, Settled, refuse_target
from .boxed import ContainerFaults
from .ledger import Record

TARGETS = f"{', '.join(STANDINS)}, replica:<name>, replica:any or job:current"
SIGNALS = {"kill": signal.SIGKILL, "pause": signal.SIGSTOP, "resume": signal.SIGCONT, "restart": signal.SIGKILL}
GONE_WITHIN_S = 10.0
RESTART_WITHIN_S = 90.0


class ProcessFaults(Settled):
    def __init__(self, p: Profile, boxed: ContainerFaults | None = None):
        self.p = p
        self.boxed = boxed or ContainerFaults()

    def inject(self, fault_id: str, spec: FaultSpec) -> Applied:
        if spec.target in STANDINS:
            name = self.p.route_for(spec.target)
            container = self.p.h.supervisor.container(name)
            if container:
                return self._container(spec, name, container, "standin", standin=name)
            return self._standin(spec, name)
        if spec.target.startswith("replica:") and spec.target != "replica:":
            chosen = targets.replica(self.p, spec.target)
            assert chosen.pid is not None
            if chosen.container:
                action = "kill" if spec.action == "restart" else spec.action  # the controller brings it back
                return self._container(spec, f"replica {chosen.name}", chosen.container, "replica", action)
            return self._group(spec, f"replica {chosen.name}", chosen.pid, "replica")
        if spec.target == "job:current":
            if spec.action == "restart":
                raise UserError("job:current: a job run cannot be restarted; kill it (the run ends FAILED) and run "
                                "the pipeline again")
            job = targets.current_job(self.p)
            if job.container:
                return self._container(spec, f"job {job.run_id}", job.container, "job")
            return self._group(spec, f"job {job.run_id}", job.pid, "job")
        raise refuse_target("process", spec.target, TARGETS)

    def revert(self, record: Record) -> str:
        action, state = record.spec.action, record.state
        if action == "resume":
            return "nothing to undo: a resume is not paused again"
        if action == "pause" and state.get("container"):
            return self.boxed.unpause(state["container"], state["label"])
        if action == "pause":
            return _continue(state)
        if state["what"] == "replica":
            return "nothing to undo: the deployment controller replaces a killed replica"
        if state["what"] == "job":
            return "nothing to undo: a killed job run stays FAILED"
        return bring_back(self.p, state["standin"])

    # anything in a container: the engine -------------------------------------------------------------
    def _container(self, spec: FaultSpec, label: str, container: str, what: str, action: str | None = None,
                   standin: str | None = None) -> Applied:
        detail, evidence = self.boxed.apply(action or spec.action, container, label)
        state = {"what": what, "label": label, "container": container, **({"standin": standin} if standin else {})}
        if standin and spec.action == "restart" and evidence.took_effect:
            detail += f"; {_await_healthy(self.p, standin)}"
        return Applied(detail, state, evidence)

    # stand-ins: the whole family, one process at a time ------------------------------------------
    def _standin(self, spec: FaultSpec, name: str) -> Applied:
        sig = SIGNALS[spec.action]
        family = targets.standin_processes(self.p, name)
        paused = [proc.pid for proc in family if _stopped(proc)]
        hit = [proc for proc in family if _send(proc, sig)]
        pids = ", ".join(str(proc.pid) for proc in hit) or "none"
        state = {"what": "standin", "standin": name, "processes": [[proc.pid, _created(proc)] for proc in hit]}
        if spec.action == "resume":
            return Applied(f"SIGCONT to {name} (pids {pids})", state, _resumed(name, paused, pids))
        evidence = FaultEvidence(bool(hit), f"{name} was running (pids {pids}) and got {sig.name}")
        if sig is signal.SIGKILL:
            _wait_gone(hit)
        detail = f"{sig.name} to {name} (pids {pids})"
        if spec.action == "restart":
            detail += f"; {bring_back(self.p, name)}"
        return Applied(detail, state, evidence)

    # replicas and jobs: their process group ------------------------------------------------------
    def _group(self, spec: FaultSpec, label: str, pid: int, what: str) -> Applied:
        sig = SIGNALS["kill" if spec.action == "restart" else spec.action]
        try:
            leader, group = psutil.Process(pid), os.getpgid(pid)
        except (psutil.Error, ProcessLookupError):
            raise UserError(f"{spec.target}: {label} (pid {pid}) is not running") from None
        members = group_members(group) if group == pid else [leader]
        paused = [proc.pid for proc in members if _stopped(proc)]
        if group == pid:  # its own session, as the controller and the job runner start them
            signal_group(group, sig)
        else:
            _send(leader, sig)
        pids = ", ".join(str(proc.pid) for proc in members)
        state = {"what": what, "label": label, "group": group if group == pid else None,
                 "processes": [[proc.pid, _created(proc)] for proc in members]}
        evidence = (_resumed(label, paused, pids) if spec.action == "resume" else
                    FaultEvidence(bool(members), f"{label} was running (pids {pids}) and got {sig.name}" if members
                                  else f"{label} had no live process (a zombie only): nothing got {sig.name}"))
        return Applied(f"{sig.name} to {label} (pids {pids or 'none'})", state, evidence)


def bring_back(p: Profile, name: str) -> str:
    """Start stand-in ``name`` again with the supervisor unless it is healthy. ``up`` reuses every healthy stand-in
    and restarts any other that does not answer (a paused one included)."""
    h = p.h
    standins = h.standins()
    [before] = h.supervisor.status([s for s in standins if s.name == name])
    if before.state == "healthy":
        return f"nothing to undo: {name} is healthy ({_which(before)})"
    after = {s.name: s for s in h.supervisor.up(standins)}[name]
    return f"{name} started again by the supervisor ({_which(after)}, {after.state})"


def _which(status: Any) -> str:
    """A stand-in as its status names it: its pid, or its container for one that runs in a container."""
    return f"container {status.container[:12]}" if getattr(status, "container", None) else f"pid {status.pid}"


def restart_standin(p: Profile, name: str) -> str:
    """SIGKILL stand-in ``name``'s family (or its container), then start it again with the supervisor, which makes
    a new container: one started afresh reads its configuration (a rotated secret) again."""
    container = p.h.supervisor.container(name)
    if container:
        detail, _ = ContainerFaults().apply("kill", container, name)
        return f"{detail}; {bring_back(p, name)}"
    family = targets.standin_processes(p, name)
    for proc in family:
        _send(proc, signal.SIGKILL)
    _wait_gone(family)
    return f"killed {name} (pids {', '.join(str(proc.pid) for proc in family)}); {bring_back(p, name)}"


def _await_healthy(p: Profile, name: str, timeout: float = RESTART_WITHIN_S) -> str:
    """After ``docker restart``: until stand-in ``name`` answers again; the supervisor starts it anew if it does not
    within ``timeout``."""
    standins = [s for s in p.h.standins() if s.name == name]
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        [now] = p.h.supervisor.status(standins)
        if now.state == "healthy":
            return f"{name} answers again (same container)"
        time.sleep(0.25)
    return bring_back(p, name)


def _continue(state: dict) -> str:
    """SIGCONT to what a pause stopped: the group while any member lives (a group id is not reused meanwhile),
    else each recorded process that is still the one we stopped."""
    label = state.get("label") or state["standin"]
    if state.get("group") and group_members(state["group"]):
        signal_group(state["group"], signal.SIGCONT)
        return f"SIGCONT to {label}'s process group {state['group']}"
    resumed = []
    for pid, created in state["processes"]:
        if same_process(pid, created):
            try:
                os.kill(pid, signal.SIGCONT)
                resumed.append(str(pid))
            except ProcessLookupError:
                pass
    if not resumed:
        return f"nothing to undo: the processes {label} had when paused are gone"
    return f"SIGCONT to {label} (pids {', '.join(resumed)})"


def _resumed(label: str, paused: list[int], pids: str) -> FaultEvidence:
    """A resume took effect when something was paused."""
    if paused:
        return FaultEvidence(True, f"{label}'s pids {', '.join(map(str, paused))} were paused and got SIGCONT")
    return FaultEvidence(False, f"none of {label}'s processes (pids {pids}) was paused")


def _send(proc: psutil.Process, sig: signal.Signals) -> bool:
    try:
        proc.send_signal(sig)
        return True
    except psutil.Error:
        return False


def _stopped(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_STOPPED
    except psutil.Error:
        return False


def _created(proc: psutil.Process) -> float | None:
    try:
        return proc.create_time()
    except psutil.Error:
        return None


def _wait_gone(procs: list[psutil.Process], timeout: float = GONE_WITHIN_S) -> None:
    """Until every process has ended (a zombie has: it holds no port), so that what follows sees it dead."""
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if not any(_running(proc) for proc in procs):
            return
        time.sleep(0.05)


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
