"""Process faults on targets that run in a container (the containers profile), through the Docker engine.

A stand-in started as a container has no process of ours to signal, and a replica container's pid in the
controller's status is its ``docker run`` client's: SIGSTOP to that client does not pause the container. So where a
target names its container (the supervisor's state, the controller's ``container`` per replica, a job run's
``container_id``) the engine does the fault: ``kill`` is ``docker kill`` (SIGKILL, no clean-up), ``pause`` is
``docker pause`` (the cgroup freezer: the process lives, holds its port and answers nothing), ``resume`` is
``docker unpause``, and ``restart`` of a stand-in is ``docker restart`` with no grace (a SIGKILL, then the same
container starts again, so the supervisor's record of it stays true). Evidence is what the engine reported before
the fault, as the signal faults give theirs: the container was running (or paused, for a resume).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from harness.domain.errors import UserError
from harness.domain.records import FaultEvidence

GONE_WITHIN_S = 10.0
LIVE = ("running", "paused")


def _engine() -> Any:
    from harness.infra.containers import docker_client

    return docker_client()


class ContainerFaults:
    """kill, pause, resume and restart of one container by id or name; ``client`` makes the Docker SDK client
    (a fake one in unit tests), on first use only."""

    def __init__(self, client: Callable[[], Any] = _engine):
        self._make = client
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._make()
        return self._client

    def status(self, ref: str) -> str | None:
        """The container's status as the engine says it (running, paused, exited, ...); None once it is gone."""
        import docker.errors

        try:
            return str(self.client.api.inspect_container(ref)["State"]["Status"])
        except docker.errors.NotFound:
            return None

    def apply(self, action: str, ref: str, label: str) -> tuple[str, FaultEvidence]:
        """Do ``action`` to container ``ref``; the line for the fault's handle and its evidence."""
        before = self.status(ref)
        short = ref[:12] if len(ref) == 64 else ref
        where = f"{label} (container {short})"
        if before not in LIVE:
            return (f"nothing done: {where} is {before or 'gone'}",
                    FaultEvidence(False, f"{where} was {before or 'gone'}, not running: nothing to {action}"))
        container = self.client.containers.get(ref)
        if action == "resume":
            if before != "paused":
                return (f"nothing done: {where} was not paused",
                        FaultEvidence(False, f"{where} was {before}, not paused: nothing to resume"))
            container.unpause()
            return f"docker unpause {where}", FaultEvidence(True, f"{where} was paused and got unpaused")
        if action == "pause":
            if before == "paused":
                return (f"nothing done: {where} was already paused",
                        FaultEvidence(False, f"{where} was already paused (by someone else): nothing to pause"))
            container.pause()
            return f"docker pause {where}", FaultEvidence(True, f"{where} was running and got paused")
        if action == "restart":
            if before == "paused":
                container.unpause()  # a frozen process takes no signal until thawed
            container.restart(timeout=0)
            return (f"docker restart {where} (SIGKILL, then the same container again)",
                    FaultEvidence(True, f"{where} was {before} and got restarted (SIGKILL)"))
        if action != "kill":
            raise UserError(f"a process fault on {label} is kill, pause, resume or restart, not {action}")
        container.kill(signal="SIGKILL")
        if before == "paused":
            self._thaw(container)  # the SIGKILL is delivered once the freezer lets the process run
        self._wait_gone(ref)
        return f"docker kill {where} (SIGKILL)", FaultEvidence(True, f"{where} was {before} and got SIGKILL")

    def unpause(self, ref: str, label: str) -> str:
        """A pause's revert: unpause the container if it is still there and still paused."""
        state = self.status(ref)
        if state is None:
            return f"nothing to undo: {label}'s container is gone"
        if state != "paused":
            return f"nothing to undo: {label}'s container is {state}, not paused"
        self.client.containers.get(ref).unpause()
        return f"docker unpause {label}"

    def _thaw(self, container: Any) -> None:
        import docker.errors

        try:
            container.unpause()
        except docker.errors.APIError:
            pass  # the engine killed it paused and all: nothing left to thaw

    def _wait_gone(self, ref: str, timeout: float = GONE_WITHIN_S) -> None:
        """Until the container no longer runs (its port is free), so that what follows sees it dead."""
        until = time.monotonic() + timeout
        while time.monotonic() < until and self.status(ref) in LIVE:
            time.sleep(0.05)
