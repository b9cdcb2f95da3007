"""The local stand-in for OKE: a Deployment controller for serving replicas.

It keeps ``desired`` replicas of the current revision running, restarts a replica that dies (with
backoff), rolls out a new revision with ``max_surge`` / ``max_unavailable`` like a Kubernetes
Deployment, and rolls back by itself when new replicas are not ready in time or fail the smoke
check. A replica takes traffic only once it is ready (and has passed the smoke check).

Once the current revision is fully rolled out, the controller keeps one warm standby of it: a
``python -m serving --standby`` process that has imported scikit-learn and loaded the model and waits
on stdin. A replica that dies is replaced by activating the standby (well under a second) instead of a
cold start (3-6 s on two busy cores, nearly all of it imports); the next standby then warms up in the
background. Kubernetes gets the same effect from pulled images and a fast-starting container.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness.supervisor import free_port

log = logging.getLogger("lastmile.deployer")

PROBE_INTERVAL_S = 0.25
DRAIN_TIMEOUT_S = 10.0
BACKOFF_MAX_S = 30.0
STANDBY_RETRY_S = 30.0  # after a standby that died before it was used


@dataclass
class RevisionSpec:
    number: int
    serving_digest: str
    bundle_dir: str
    model_name: str
    model_version: str
    env: dict[str, str] = field(default_factory=dict)
    smoke: dict[str, Any] | None = None


@dataclass
class Replica:
    name: str
    revision: int
    port: int
    proc: asyncio.subprocess.Process | None = None
    state: str = "starting"  # starting | ready | unready | draining | dead
    verified: bool = False  # passed the smoke check
    restarts: int = 0
    restart_at: float = 0.0
    ready_since: float | None = None
    inflight: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def routable(self) -> bool:
        return self.state == "ready" and self.verified


@dataclass
class Standby:
    """A warm spare of one revision; ``warm`` is set once it has loaded the model."""

    revision: int
    proc: asyncio.subprocess.Process
    warm: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def state(self) -> str:
        return "warm" if self.warm.is_set() else "warming"


class RolloutFailed(Exception):
    pass


class Deployment:
    """One named deployment: its revisions, its replicas and the reconcile loop that keeps them."""

    def __init__(self, name: str, state_dir: Path, replicas: int, max_surge: int, max_unavailable: int,
                 ready_deadline_s: float):
        self.name = name
        self.state_file = state_dir / f"{name}.json"
        self.logs_dir = state_dir / "logs"
        self.desired = replicas
        self.max_surge, self.max_unavailable = max_surge, max(0, max_unavailable)
        if self.max_surge + self.max_unavailable == 0:
            self.max_surge = 1
        self.ready_deadline_s = ready_deadline_s
        self.revisions: list[RevisionSpec] = []
        self.current: RevisionSpec | None = None
        self.pods: list[Replica] = []
        self.message = ""
        self.rollout_lock = asyncio.Lock()
        self.last_number = 0
        self._counter = 0
        self._exited = asyncio.Event()  # a replica process ended: reconcile now rather than at the next tick
        self._watchers: set[asyncio.Task] = set()
        self.standby: Standby | None = None
        self._standby_retry_at = 0.0
        self._client = httpx.AsyncClient(timeout=2.0)
        self._load()

    # desired state ------------------------------------------------------------------------------
    async def deploy(self, spec: RevisionSpec, replicas: int | None = None) -> dict[str, Any]:
        async with self.rollout_lock:
            if replicas is not None:
                self.desired = replicas
            # Numbers are never reused, so "revision 3 rolled back" stays unambiguous in journals.
            self.last_number = max([self.last_number, *(r.number for r in self.revisions)]) + 1
            spec.number = self.last_number
            self.revisions.append(spec)
            return await self._roll_to(spec, undo_to=self.current)

    async def rollback(self) -> dict[str, Any]:
        async with self.rollout_lock:
            if self.current is None or len(self.revisions) < 2:
                raise RolloutFailed(f"deployment {self.name} has no previous revision to roll back to")
            index = next(i for i, r in enumerate(self.revisions) if r.number == self.current.number)
            if index == 0:
                raise RolloutFailed(f"deployment {self.name}: revision {self.current.number} is the oldest")
            target = self.revisions[index - 1]
            self.revisions.remove(self.current)
            return await self._roll_to(target, undo_to=None)

    async def scale(self, replicas: int) -> None:
        self.desired = replicas
        self._save()

    # the rollout ---------------------------------------------------------------------------------
    async def _roll_to(self, spec: RevisionSpec, undo_to: RevisionSpec | None) -> dict[str, Any]:
        previous = self.current
        self.current = spec
        self._save()
        try:
            await self._rollout(spec)
        except RolloutFailed as exc:
            self.message = f"revision {spec.number} rolled back: {exc}"
            log.warning(self.message)
            if undo_to is not None:
                self.revisions.remove(spec)
                self.current = undo_to
                self._save()
                await self._rollout(undo_to, deadline_s=self.ready_deadline_s * 2)
            return {"status": "rolled_back", "revision": asdict(self.current) if self.current else None,
                    "reason": str(exc)}
        self.message = f"revision {spec.number} rolled out" + (f" over {previous.number}" if previous else "")
        return {"status": "complete", "revision": asdict(spec), "reason": ""}

    async def _rollout(self, spec: RevisionSpec, deadline_s: float | None = None) -> None:
        """Replace old replicas with new ones within max_surge / max_unavailable; fail at the deadline."""
        deadline = time.monotonic() + (deadline_s or self.ready_deadline_s)
        while True:
            new = [p for p in self.pods if p.revision == spec.number and p.state != "draining"]
            old = [p for p in self.pods if p.revision != spec.number and p.state != "draining"]
            # Failed twice: died (crashed, or stopped for failing the smoke check) again after its restart.
            failed = [p for p in new if not p.routable and (p.restarts >= 2 or (p.restarts and p.state == "dead"))]
            if failed:
                raise RolloutFailed(f"replica {failed[0].name} keeps failing (read {self._log(failed[0])})")
            if not old and len([p for p in new if p.routable]) >= self.desired:
                return
            while len(new) + len(old) < self.desired + self.max_surge and len(new) < self.desired:
                new.append(await self._spawn(spec))
            available = len([p for p in new + old if p.routable])
            for pod in [p for p in old if not p.routable] + [p for p in old if p.routable]:
                if pod.routable and available - 1 < self.desired - self.max_unavailable:
                    break
                available -= 1 if pod.routable else 0
                old.remove(pod)
                asyncio.create_task(self._retire(pod))
            if time.monotonic() > deadline:
                pending = [p.name for p in new if not p.routable]
                raise RolloutFailed(f"replicas {', '.join(pending)} not ready within {self.ready_deadline_s:.0f} s")
            await asyncio.sleep(PROBE_INTERVAL_S)

    # replicas ------------------------------------------------------------------------------------
    async def _spawn(self, spec: RevisionSpec, reuse: Replica | None = None) -> Replica:
        if reuse is None:
            self._counter += 1
            pod = Replica(f"{self.name}-r{spec.number}-{self._counter}", spec.number, free_port())
            self.pods.append(pod)
        else:
            pod = reuse
            pod.port, pod.state, pod.verified, pod.ready_since = free_port(), "starting", False, None
        own = {"LASTMILE_SERVING_REPLICA": pod.name}
        if spec.env.get("LASTMILE_PREDICTIONS_DIR"):
            own["LASTMILE_SERVING_PREDICTION_LOG"] = str(Path(spec.env["LASTMILE_PREDICTIONS_DIR"]) / f"{pod.name}.jsonl")
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        standby = self._take_standby(spec)
        if standby is not None:
            order = {"port": pod.port, "log": str(self._log(pod)), "env": own}
            try:
                standby.proc.stdin.write(json.dumps(order).encode() + b"\n")
                await standby.proc.stdin.drain()
                standby.proc.stdin.close()
                pod.proc = standby.proc
                log.info("activated the %s standby (pid %s) as %s on port %s", standby.state, pod.proc.pid,
                         pod.name, pod.port)
                return pod
            except (BrokenPipeError, ConnectionResetError):
                log.warning("the standby (pid %s) was gone; starting %s cold", standby.proc.pid, pod.name)
        with open(self._log(pod), "ab") as out:
            pod.proc = await self._start_serving(spec, ["--port", str(pod.port)], own, stdin=asyncio.subprocess.DEVNULL,
                                                 stdout=out, stderr=asyncio.subprocess.STDOUT)
        log.info("started %s (pid %s) on port %s", pod.name, pod.proc.pid, pod.port)
        return pod

    async def _start_serving(self, spec: RevisionSpec, args: list[str], own_env: dict[str, str], stdin: int,
                             stdout: Any, stderr: Any) -> asyncio.subprocess.Process:
        env = {**os.environ, **spec.env,
               "PYTHONPATH": spec.bundle_dir,
               "LASTMILE_SERVING_MODEL_URI": f"models:/{spec.model_name}/{spec.model_version}",
               "LASTMILE_SERVING_BUILD_DIGEST": spec.serving_digest, **own_env}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "serving", "--host", "127.0.0.1", *args, cwd=spec.bundle_dir, env=env,
            stdin=stdin, stdout=stdout, stderr=stderr, start_new_session=True)
        watcher = asyncio.create_task(self._signal_exit(proc))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        return proc

    # the warm standby ------------------------------------------------------------------------------
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
            await _stop(standby.proc)
            standby = None
        if standby is not None and standby.proc.returncode is not None:
            log.warning("the standby exited with %s before use (read %s); next one in %.0f s",
                        standby.proc.returncode, self.standby_log, STANDBY_RETRY_S)
            self.standby, standby = None, None
            self._standby_retry_at = time.monotonic() + STANDBY_RETRY_S
        if standby is not None or current is None or time.monotonic() < self._standby_retry_at:
            return
        if len(self.pods) != self.desired or not all(p.routable and p.revision == current.number for p in self.pods):
            return  # a rollout, a restart or a scale is under way: it needs the CPU more
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        with open(self.standby_log, "ab") as err:
            proc = await self._start_serving(current, ["--standby"], {"LASTMILE_SERVING_REPLICA": f"{self.name}-standby"},
                                             stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err)
        self.standby = Standby(current.number, proc)
        task = asyncio.create_task(self._watch_standby(self.standby))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)
        log.info("warming a standby of revision %s (pid %s)", current.number, proc.pid)

    async def _watch_standby(self, standby: Standby) -> None:
        """Mark the standby warm when it says so; read its stdout to the end (it moves to a log once activated)."""
        while line := await standby.proc.stdout.readline():
            if line.strip() == b"warm" and not standby.warm.is_set():
                standby.warm.set()
                log.info("the standby of revision %s (pid %s) is warm", standby.revision, standby.proc.pid)

    @property
    def standby_log(self) -> Path:
        return self.logs_dir / f"{self.name}-standby.log"

    async def _retire(self, pod: Replica) -> None:
        """Take a replica out of rotation, let in-flight requests finish, then stop it."""
        pod.state = "draining"
        end = time.monotonic() + DRAIN_TIMEOUT_S
        while pod.inflight and time.monotonic() < end:
            await asyncio.sleep(0.05)
        await _terminate(pod)
        if pod in self.pods:
            self.pods.remove(pod)

    async def reconcile_forever(self) -> None:
        while True:
            self._exited.clear()
            try:
                await self._reconcile()
            except Exception:  # keep supervising whatever one probe did
                log.exception("reconcile failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._exited.wait(), PROBE_INTERVAL_S)

    async def _signal_exit(self, proc: asyncio.subprocess.Process) -> None:
        await proc.wait()
        self._exited.set()

    async def _reconcile(self) -> None:
        await asyncio.gather(*(self._probe(p) for p in self.pods if p.state not in ("draining", "dead")))
        now = time.monotonic()  # after the probes: a replica they found dead with no backoff restarts in this pass
        for pod in [p for p in self.pods if p.state == "dead" and p.restart_at <= now]:
            spec = self._spec(pod.revision)
            if spec is None:
                self.pods.remove(pod)
                continue
            pod.restarts += 1
            await self._spawn(spec, reuse=pod)
        if self.current is None or self.rollout_lock.locked():
            return
        live = [p for p in self.pods if p.revision == self.current.number and p.state != "draining"]
        for _ in range(self.desired - len(live)):
            await self._spawn(self.current)
        for pod in sorted(live, key=lambda p: p.routable)[: max(0, len(live) - self.desired)]:
            asyncio.create_task(self._retire(pod))
        await self._keep_standby()

    async def _probe(self, pod: Replica) -> None:
        if pod.proc is not None and pod.proc.returncode is not None:
            backoff = 0.0 if pod.restarts == 0 else min(BACKOFF_MAX_S, 2.0 ** (pod.restarts - 1))
            pod.state, pod.verified, pod.restart_at = "dead", False, time.monotonic() + backoff
            log.warning("%s exited with %s; restart in %.0f s", pod.name, pod.proc.returncode, backoff)
            return
        try:
            ready = (await self._client.get(pod.url + "/ready")).status_code == 200
        except httpx.HTTPError:
            ready = False
        if ready and not pod.verified:
            pod.verified = ready = await self._smoke(pod)
        if ready and pod.state != "ready":
            pod.ready_since = time.monotonic()
        pod.state = "ready" if ready else ("starting" if pod.state == "starting" else "unready")
        if ready and pod.ready_since and time.monotonic() - pod.ready_since > 60:
            pod.restarts = 0

    async def _smoke(self, pod: Replica) -> bool:
        spec = self._spec(pod.revision)
        if spec is None or not spec.smoke:
            return True
        try:
            response = await self._client.post(pod.url + spec.smoke["path"], json=spec.smoke["body"])
            ok = response.status_code == 200 and response.json().get("predictions") == spec.smoke["expected"]
        except (httpx.HTTPError, ValueError):
            ok = False
        if not ok:
            log.warning("%s failed the smoke check", pod.name)
            await _terminate(pod)  # the probe then sees it dead; its restart is counted then, once
        return ok

    def routable(self) -> list[Replica]:
        return [p for p in self.pods if p.routable and self.current and p.revision == self.current.number] or \
            [p for p in self.pods if p.routable]

    # state -----------------------------------------------------------------------------------------
    def _spec(self, number: int) -> RevisionSpec | None:
        return next((r for r in self.revisions if r.number == number), None)

    def _log(self, pod: Replica) -> Path:
        return self.logs_dir / f"{pod.name}.log"

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
        self.revisions = [RevisionSpec(**r) for r in data["revisions"]]
        self.current = self._spec(data["current"]) if data["current"] is not None else None

    def status(self) -> dict[str, Any]:
        current = self.current
        return {
            "name": self.name, "desired": self.desired, "message": self.message,
            "revision": {"number": current.number, "serving_digest": current.serving_digest,
                         "model_version": current.model_version} if current else None,
            "ready": len([p for p in self.pods if p.routable and current and p.revision == current.number]),
            "replicas": [{"name": p.name, "revision": p.revision, "url": p.url, "state": p.state,
                          "pid": p.proc.pid if p.proc else None, "restarts": p.restarts} for p in self.pods],
            "standby": self.standby.state if self.standby else "",
        }

    async def shutdown(self) -> None:
        standby, self.standby = self.standby, None
        await asyncio.gather(*(_terminate(p) for p in self.pods), *([_stop(standby.proc)] if standby else []))
        for watcher in self._watchers:
            watcher.cancel()
        await self._client.aclose()


async def _terminate(pod: Replica) -> None:
    proc = pod.proc
    if proc is None or proc.returncode is not None:
        pod.state = "dead" if pod.state != "draining" else pod.state
        return
    await _stop(proc)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM to the process group, SIGKILL after 10 s."""
    if proc.returncode is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        await asyncio.wait_for(proc.wait(), timeout=10)
    except asyncio.TimeoutError:
        os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
