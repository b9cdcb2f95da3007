"""The one part of a kubelet the front door needs: the startup probe.

A container that has not once been ready within its ``startupProbe``'s ``initialDelaySeconds + failureThreshold x
periodSeconds`` is killed, and restarted with backoff: the controller sees the exit as it sees any other. So a
revision whose replicas never become ready (a registry they cannot reach, which the serving app retries) crash-loops
on the front door as it does on a cluster, instead of staying unready with no restarts. A version the replica
fetched and rejected (its files or its reference predictions) needs no probe: the replica exits 3 at once.
Replicas of templates without a startup probe are left alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from adapters.local.deployer.replicas import stop

log = logging.getLogger("lastmile.deployer")
INTERVAL_S = 0.5


def startup_grace_s(template: dict) -> float | None:
    """How long a container of ``template`` may take to become ready, or None when it has no startup probe."""
    containers = (template.get("spec") or {}).get("containers") or [{}]
    probe = containers[0].get("startupProbe")
    if not probe:
        return None
    return probe.get("initialDelaySeconds", 0) + probe.get("failureThreshold", 3) * probe.get("periodSeconds", 10)


class StartupProbes:
    """Kills replicas of ``deployment`` that outlive their template's startup grace unready (``template_of`` gives
    a controller revision's pod template)."""

    def __init__(self, deployment: Any, template_of: Callable[[int], dict]):
        self.deployment, self.template_of = deployment, template_of
        self._started: dict[tuple[str, int], float] = {}
        self._task: asyncio.Task | None = None

    def ensure_running(self) -> None:
        """Start probing in the running loop (once): the front door calls this on its first request."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._forever())

    async def _forever(self) -> None:
        while True:
            try:
                await self.check(time.monotonic())
            except Exception:  # keep probing whatever one pass met
                log.exception("startup probes failed")
            await asyncio.sleep(INTERVAL_S)

    async def check(self, now: float) -> None:
        live, doomed = set(), []
        for pod in list(getattr(self.deployment, "pods", [])):
            proc = pod.proc
            if proc is None or proc.returncode is not None or pod.state in ("draining", "dead"):
                continue
            key = (pod.name, proc.pid)
            live.add(key)
            started = self._started.setdefault(key, now)
            if pod.ready_since is not None:
                continue  # it started: from now on only readiness matters
            grace = startup_grace_s(self.template_of(pod.revision))
            if grace is not None and now - started > grace:
                log.warning("startup probe failed: restarting the replica", extra={"fields": {
                    "replica": pod.name, "grace_s": grace}})
                doomed.append(proc)
        await asyncio.gather(*(stop(proc) for proc in doomed))
        self._started = {k: v for k, v in self._started.items() if k in live}
