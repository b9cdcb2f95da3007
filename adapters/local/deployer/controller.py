"""The local stand-in for OKE: a Deployment controller for serving replicas.

It does what a Kubernetes Deployment does and no more: it keeps ``desired`` replicas of the current revision
running, restarts a replica that dies (with exponential backoff, as a crash loop does), and rolls out a new
revision with ``max_surge`` / ``max_unavailable``, retiring old replicas only as new ones become ready. It
never gives up on a rollout and never rolls back by itself: like Kubernetes, it reports, and the harness's
rollout policy decides (:mod:`harness.pipeline.rollout`). A replica takes traffic once ``/ready`` answers,
which it does only after reproducing the registry's reference predictions.

Once the current revision is fully rolled out, the controller keeps one warm standby of it: a
``python -m serving --standby`` process that has imported scikit-learn and loaded the model and waits on
stdin. A replica that dies is replaced by activating the standby (well under a second) instead of a cold
start (3-6 s on two busy cores, nearly all of it imports).

With ``--runtime container`` replicas and the standby are containers of the revision's serving image
(:mod:`.containers`); everything above is the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import httpx

from adapters.local.deployer.containers import ContainerProcess, ContainerRuntime
from adapters.local.deployer.replicas import Launcher, Replica, RevisionSpec, Standby, last_words, stop
from adapters.local.deployer.routes import ReplicaRoutes
from harness.infra.processes import free_port

log = logging.getLogger("lastmile.deployer")

PROBE_INTERVAL_S = 0.25
PROBE_TIMEOUT_S = 1.0  # Kubernetes' default timeoutSeconds: a replica that takes longer is not ready
SCRAPE_TIMEOUT_S = 2.0
DRAIN_TIMEOUT_S = 10.0
BACKOFF_MAX_S = 30.0
STANDBY_RETRY_S = 30.0  # after a standby that died before it was used
RESTARTS_FORGIVEN_AFTER_S = 60.0


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class NoPreviousRevision(Exception):
    pass


class Service(Protocol):
    """The data path of the stable endpoint, as the controller sees it: told which replicas take traffic, asked
    how many requests a retiring one still answers."""

    async def sync(self, pods: list[Replica], routable: list[Replica]) -> None: ...

    async def inflight(self, pod: Replica) -> int: ...


class InProcessService:
    """A Service that reads the deployment on every request (:class:`.proxy.ServiceProxy`): nothing to push."""

    async def sync(self, pods: list[Replica], routable: list[Replica]) -> None:
        pass

    async def inflight(self, pod: Replica) -> int:
        return pod.inflight


class Deployment:
    """One named deployment: its revisions, its replicas and the reconcile loop that keeps them."""

    def __init__(self, name: str, state_dir: Path, replicas: int, max_surge: int, max_unavailable: int,
                 routes: ReplicaRoutes | None = None, containers: ContainerRuntime | None = None):
        self.name = name
        self.state_file = state_dir / f"{name}.json"
        self.desired = replicas
        self.max_surge, self.max_unavailable = max_surge, max(0, max_unavailable)
        if self.max_surge + self.max_unavailable == 0:
            self.max_surge = 1
        self.revisions: list[RevisionSpec] = []
        self.current: RevisionSpec | None = None
        self.pods: list[Replica] = []
        self.last_number = 0
        self._counter = 0
        self._exited = asyncio.Event()  # a replica process ended: reconcile now rather than at the next tick
        self._rollout: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()  # retirements under way; kept so none is collected mid-flight
        self.containers = containers
        self.launcher = Launcher(state_dir / "logs", self._exited.set, containers)
        self.standby: Standby | None = None
        self._standby_retry_at = 0.0
        self._client = httpx.AsyncClient(timeout=SCRAPE_TIMEOUT_S)
        self.routes = routes or ReplicaRoutes(None)
        self.service: Service = InProcessService()
        self._load()

    # desired state ------------------------------------------------------------------------------
    def deploy(self, spec: RevisionSpec, replicas: int | None = None) -> RevisionSpec:
        """Record a new revision and start rolling it out; returns at once, as ``kubectl apply`` does."""
        if replicas is not None:
            self.desired = replicas
        # Numbers are never reused, so "revision 3 rolled back" stays unambiguous in journals.
        self.last_number = max([self.last_number, *(r.number for r in self.revisions)]) + 1
        spec.number = self.last_number
        self.revisions.append(spec)
        self._roll_to(spec)
        return spec

    def rollback(self) -> RevisionSpec:
        """Drop the current revision and start rolling back to the one before it."""
        current = self.current
        index = next((i for i, r in enumerate(self.revisions) if current and r.number == current.number), 0)
        if current is None or index == 0:
            raise NoPreviousRevision(f"deployment {self.name} has no revision before "
                                     f"{current.number if current else 'none'} to roll back to")
        target = self.revisions[index - 1]
        self.revisions.remove(current)
        self._roll_to(target)
        return target

    def scale(self, replicas: int) -> None:
        self.desired = replicas
        self._save()

    def _roll_to(self, spec: RevisionSpec) -> None:
        if self._rollout is not None:
            self._rollout.cancel()  # a newer order supersedes the rollout under way
        self.current = spec
        self._save()
        standby, self.standby = self.standby, None
        if standby is not None and standby.revision != spec.number:
            self._background(stop(standby.proc))  # a spare of the old revision would only take CPU from the new
        elif standby is not None:
            self.standby = standby
        self._rollout = asyncio.create_task(self._converge(spec))

    async def _converge(self, spec: RevisionSpec) -> None:
        """Replace old replicas with new ones within max_surge / max_unavailable, for as long as it takes."""
        while True:
            new = [p for p in self.pods if p.revision == spec.number and p.state != "draining"]
            old = [p for p in self.pods if p.revision != spec.number and p.state != "draining"]
            if not old and len([p for p in new if p.routable]) >= self.desired:
                log.info("rolled out", extra={"fields": {"revision": spec.number}})
                return
            while len(new) + len(old) < self.desired + self.max_surge and len(new) < self.desired:
                new.append(await self._spawn(spec))
            available = len([p for p in new + old if p.routable])
            for pod in [p for p in old if not p.routable] + [p for p in old if p.routable]:
                if pod.routable and available - 1 < self.desired - self.max_unavailable:
                    break
                available -= 1 if pod.routable else 0
                old.remove(pod)
                self._background(self._retire(pod))
            await asyncio.sleep(PROBE_INTERVAL_S)

    @property
    def rolling(self) -> bool:
        return self._rollout is not None and not self._rollout.done()

    # replicas ------------------------------------------------------------------------------------
    async def _spawn(self, spec: RevisionSpec, reuse: Replica | None = None) -> Replica:
        if reuse is None:
            self._counter += 1
            pod = Replica(f"{self.name}-r{spec.number}-{self._counter}", spec.number, free_port())
            self.pods.append(pod)
        else:
            pod = reuse
            pod.port, pod.state, pod.ready_since = free_port(), "starting", None
        await self.launcher.start(spec, pod, self._take_standby(spec))
        pod.route_url = await self.routes.route(pod)
        return pod

    def _take_standby(self, spec: RevisionSpec) -> Standby | None:
        standby = self.standby
        if standby is None or standby.revision != spec.number or standby.proc.returncode is not None:
            return None
        self.standby = None
        return standby

    async def _keep_standby(self) -> None:
        """One spare of the current revision once it is fully rolled out; none of any other revision."""
        standby, current = self.standby, self.current
        if standby is not None and (current is None or standby.revision != current.number):
            self.standby = None
            await stop(standby.proc)
            standby = None
        if standby is not None and standby.proc.returncode is not None:
            log.warning("the standby exited before use", extra={"fields": {
                "exit_code": standby.proc.returncode, "retry_in_s": STANDBY_RETRY_S}})
            self.standby, standby = None, None
            self._standby_retry_at = time.monotonic() + STANDBY_RETRY_S
        if standby is not None or current is None or time.monotonic() < self._standby_retry_at:
            return
        if self.rolling or len(self.pods) != self.desired or \
                not all(p.routable and p.revision == current.number for p in self.pods):
            return  # a rollout, a restart or a scale is under way: it needs the CPU more
        self.standby = await self.launcher.standby(current, self.name)
        log.info("warming a standby", extra={"fields": {"revision": current.number, "pid": self.standby.proc.pid}})

    def _background(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _retire(self, pod: Replica) -> None:
        """Take a replica out of rotation, let in-flight requests finish, then stop it."""
        pod.state = "draining"
        await self.publish()
        end = time.monotonic() + DRAIN_TIMEOUT_S
        while await self.service.inflight(pod) and time.monotonic() < end:
            await asyncio.sleep(0.05)
        await stop(pod.proc)
        if pod in self.pods:
            self.pods.remove(pod)
        await self.publish()
        await self.routes.forget(pod)

    async def publish(self) -> None:
        """Tell the Service which replicas take traffic now."""
        await self.service.sync(list(self.pods), self.routable())

    async def reconcile_forever(self) -> None:
        while True:
            self._exited.clear()
            try:
                await self._reconcile()
                await self.publish()
            except Exception:  # keep supervising whatever one probe did
                log.exception("reconcile failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._exited.wait(), PROBE_INTERVAL_S)

    async def _reconcile(self) -> None:
        await asyncio.gather(*(self._probe(p) for p in self.pods if p.state not in ("draining", "dead")))
        now = time.monotonic()  # after the probes: a replica they found dead with no backoff restarts in this pass
        for pod in [p for p in self.pods if p.state == "dead" and p.restart_at <= now]:
            spec = self._spec(pod.revision)
            if spec is None:
                self.pods.remove(pod)
                await self.routes.forget(pod)
                continue
            pod.restarts += 1
            await self._spawn(spec, reuse=pod)
        if self.current is None or self.rolling:
            return
        live = [p for p in self.pods if p.revision == self.current.number and p.state != "draining"]
        for _ in range(self.desired - len(live)):
            await self._spawn(self.current)
        for pod in sorted(live, key=lambda p: p.routable)[: max(0, len(live) - self.desired)]:
            self._background(self._retire(pod))
        await self._keep_standby()

    async def _probe(self, pod: Replica) -> None:
        if pod.proc is not None and pod.proc.returncode is not None:
            backoff = 0.0 if pod.restarts == 0 else min(BACKOFF_MAX_S, 2.0 ** (pod.restarts - 1))
            pod.state, pod.restart_at, pod.last_exit = "dead", time.monotonic() + backoff, pod.proc.returncode
            pod.last_words = last_words(self.launcher.log_path(pod.name))
            log.warning("a replica exited", extra={"fields": {"replica": pod.name, "exit_code": pod.last_exit,
                                                              "restart_in_s": backoff, "reason": pod.last_words}})
            return
        try:
            ready = (await self._client.get(pod.url + "/ready", timeout=PROBE_TIMEOUT_S)).status_code == 200
        except httpx.HTTPError:
            ready = False
        if ready and pod.state != "ready":
            pod.ready_since = time.monotonic()
        pod.state = "ready" if ready else ("starting" if pod.state == "starting" else "unready")
        if ready and pod.ready_since and time.monotonic() - pod.ready_since > RESTARTS_FORGIVEN_AFTER_S:
            pod.restarts = 0

    def routable(self) -> list[Replica]:
        current = self.current
        return [p for p in self.pods if p.routable and current and p.revision == current.number] or \
            [p for p in self.pods if p.routable]

    # what it reports -----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        current = self.current
        return {
            "name": self.name, "desired": self.desired,
            "message": f"rolling out revision {current.number}" if current and self.rolling else "",
            "revision": {"number": current.number, "serving_digest": current.serving_digest,
                         "model_version": current.model_version} if current else None,
            "ready": len([p for p in self.pods if p.routable and current and p.revision == current.number]),
            "replicas": [{"name": p.name, "revision": p.revision, "state": p.state, "restarts": p.restarts,
                          "detail": self._detail(p), "exit_code": p.last_exit, "address": p.url,
                          "pid": p.proc.pid if p.proc else None,
                          **({"container": p.proc.container} if isinstance(p.proc, ContainerProcess) else {})}
                         for p in self.pods],
            "standby": self.standby.state if self.standby else "",
        }

    def _detail(self, pod: Replica) -> str:
        if pod.last_exit is None:
            return ""
        code = f"killed by {_signal_name(-pod.last_exit)}" if pod.last_exit < 0 else f"last exit code {pod.last_exit}"
        said = f"{pod.last_words}; " if pod.last_words else ""  # its last words first: what a reader needs
        return f"{said}{code}; log {self.launcher.log_path(pod.name)}"

    async def metrics(self) -> list[dict[str, Any]]:
        """Each live replica's ``/metrics`` text (None when it did not answer), followed by the Service's
        histogram of that replica's answers (``lastmile_service_upstream_duration_seconds``, hop included; from
        HAProxy's access log when HAProxy is the Service)."""
        pods = [p for p in self.pods if p.state not in ("draining", "dead")]

        async def scrape(pod: Replica) -> dict[str, Any]:
            try:
                response = await self._client.get(pod.url + "/metrics")
                text = response.text if response.status_code == 200 else None
            except httpx.HTTPError:
                text = None
            if text is not None:
                text = text.rstrip("\n") + "\n" + pod.upstream.text()
            return {"replica": pod.name, "state": pod.state, "text": text}

        return list(await asyncio.gather(*(scrape(p) for p in pods)))

    # state -----------------------------------------------------------------------------------------
    def _spec(self, number: int) -> RevisionSpec | None:
        return next((r for r in self.revisions if r.number == number), None)

    def _save(self) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        data = {"desired": self.desired, "current": self.current.number if self.current else None,
                "revisions": [asdict(r) for r in self.revisions], "last_number": self.last_number}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.state_file)

    def _load(self) -> None:
        if not self.state_file.exists():
            return
        data = json.loads(self.state_file.read_text())
        self.desired = data["desired"]
        self.last_number = data.get("last_number", max((r["number"] for r in data["revisions"]), default=0))
        known = set(RevisionSpec.__dataclass_fields__)
        self.revisions = [RevisionSpec(**{k: v for k, v in r.items() if k in known}) for r in data["revisions"]]
        self.current = self._spec(data["current"]) if data["current"] is not None else None

    async def shutdown(self) -> None:
        if self._rollout is not None:
            self._rollout.cancel()
        standby, self.standby = self.standby, None
        await asyncio.gather(*(stop(p.proc) for p in self.pods), stop(standby.proc if standby else None))
        self.launcher.close()
        if self.containers is not None:
            await asyncio.to_thread(self.containers.remove_leftovers)
        await self._client.aclose()
