"""Serving replicas: starting one (cold, or by activating the warm standby) and stopping one.

A replica is ``python -m serving`` with the model version pinned: a local process run from the revision's bundle,
in a session of its own, or with a :class:`~.containers.ContainerRuntime` a container of the revision's serving
image (``--runtime container``), started the same way and watched through its ``docker run`` client. It checks
itself against the registry's reference predictions before it answers ``/ready`` and exits (code 3) when its model
cannot load, so a broken revision shows up as restarts, as a crash loop does on Kubernetes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.local.deployer.containers import ContainerProcess, ContainerRuntime
from adapters.local.deployer.upstream import UpstreamLatency
from harness.infra.processes import signal_group

log = logging.getLogger("lastmile.deployer")


@dataclass
class RevisionSpec:
    number: int
    serving_digest: str
    bundle_dir: str
    model_name: str
    model_version: str
    env: dict[str, str] = field(default_factory=dict)
    image: str = ""
    """The serving image (a registry reference by digest, or a local image id): what the container runtime runs."""


Proc = asyncio.subprocess.Process | ContainerProcess
"""A replica's process: the server itself, or the ``docker run`` client attached to its container."""


@dataclass
class Replica:
    name: str
    revision: int
    port: int
    proc: Proc | None = None
    state: str = "starting"  # starting | ready | unready | draining | dead
    restarts: int = 0
    restart_at: float = 0.0
    ready_since: float | None = None
    inflight: int = 0
    last_exit: int | None = None
    last_words: str = ""  # why it last exited, from the end of its log (Kubernetes' termination message)
    route_url: str | None = None  # where the Service sends its traffic (a fault-proxy route, or ``url``)
    upstream: UpstreamLatency = field(init=False, repr=False)  # the Service's view of its latency

    def __post_init__(self) -> None:
        self.upstream = UpstreamLatency(self.name)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def routable(self) -> bool:
        return self.state == "ready"


@dataclass
class Standby:
    """A warm spare of one revision; ``warm`` is set once it has loaded (and checked) the model."""

    revision: int
    proc: Proc
    warm: asyncio.Event = field(default_factory=asyncio.Event)
    sink: Path | None = None
    """Where its output goes once it has said ``warm`` (a container's: the controller copies it), None when the
    process writes its log itself."""

    @property
    def state(self) -> str:
        return "warm" if self.warm.is_set() else "warming"


class Launcher:
    """Starts ``python -m serving`` processes (or containers, with ``containers``) for revisions; ``on_exit`` is
    called when any of them ends."""

    def __init__(self, logs_dir: Path, on_exit: Callable[[], None], containers: ContainerRuntime | None = None):
        self.logs_dir = logs_dir
        self._on_exit = on_exit
        self.containers = containers
        self._watchers: set[asyncio.Task] = set()

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    async def start(self, spec: RevisionSpec, pod: Replica, standby: Standby | None) -> None:
        """Run ``pod`` on its port: by activating ``standby`` when one is given and alive, else cold."""
        own = {"LASTMILE_SERVING_REPLICA": pod.name}
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        if standby is not None:
            # A container cannot open the controller's log file: its output keeps coming to the controller,
            # which now writes it to the replica's log.
            log_file = "" if standby.sink is not None else str(self.log_path(pod.name))
            order = {"port": pod.port, "log": log_file, "env": own}
            if standby.sink is not None:
                standby.sink = self.log_path(pod.name)
            try:
                assert standby.proc.stdin is not None
                standby.proc.stdin.write(json.dumps(order).encode() + b"\n")
                await standby.proc.stdin.drain()
                standby.proc.stdin.close()
                pod.proc = standby.proc
                if isinstance(pod.proc, ContainerProcess):
                    await pod.proc.rename_for(pod.name)
                log.info("activated the standby as a replica", extra={"fields": {
                    "standby": standby.state, "pid": pod.proc.pid, "replica": pod.name, "port": pod.port}})
                return
            except (BrokenPipeError, ConnectionResetError):
                log.warning("the standby was gone; starting cold", extra={"fields": {
                    "pid": standby.proc.pid, "replica": pod.name}})
        with open(self.log_path(pod.name), "ab") as out:
            pod.proc = await self.serving(spec, ["--port", str(pod.port)], own, stdin=asyncio.subprocess.DEVNULL,
                                          stdout=out, stderr=asyncio.subprocess.STDOUT)
        log.info("started a replica", extra={"fields": {"replica": pod.name, "pid": pod.proc.pid, "port": pod.port}})

    async def standby(self, spec: RevisionSpec, name: str) -> Standby:
        """A spare of ``spec`` that loads the model and waits for its order on stdin."""
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        own = {"LASTMILE_SERVING_REPLICA": f"{name}-standby"}
        if self.containers is not None:
            proc = await self.serving(spec, ["--standby"], own, stdin=asyncio.subprocess.PIPE,
                                      stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            standby = Standby(spec.number, proc, sink=self.log_path(f"{name}-standby"))
            assert proc.stderr is not None
            self._watch(self._copy(proc.stderr, standby))
        else:
            with open(self.log_path(f"{name}-standby"), "ab") as err:
                proc = await self.serving(spec, ["--standby"], own, stdin=asyncio.subprocess.PIPE,
                                          stdout=asyncio.subprocess.PIPE, stderr=err)
            standby = Standby(spec.number, proc)
        self._watch(self._read_standby(standby))
        return standby

    async def serving(self, spec: RevisionSpec, args: list[str], own_env: dict[str, str], stdin: int,
                      stdout: Any, stderr: Any) -> Proc:
        env = {**spec.env,
               "LASTMILE_SERVING_MODEL_URI": f"models:/{spec.model_name}/{spec.model_version}",
               "LASTMILE_SERVING_BUILD_DIGEST": spec.serving_digest, **own_env}
        proc: Proc
        if self.containers is not None:
            proc = await self.containers.run(spec.image, own_env["LASTMILE_SERVING_REPLICA"], args, env,
                                             stdin=stdin, stdout=stdout, stderr=stderr)
        else:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "serving", "--host", "127.0.0.1", *args, cwd=spec.bundle_dir,
                env={**os.environ, **env, "PYTHONPATH": spec.bundle_dir},
                stdin=stdin, stdout=stdout, stderr=stderr, start_new_session=True)
        self._watch(self._signal_exit(proc))
        return proc

    async def _signal_exit(self, proc: Proc) -> None:
        await proc.wait()
        self._on_exit()

    async def _read_standby(self, standby: Standby) -> None:
        """Mark the standby warm when it says so; read its stdout to the end (it moves to a log once activated,
        or to ``standby.sink``)."""
        assert standby.proc.stdout is not None
        while line := await standby.proc.stdout.readline():
            if line.strip() == b"warm" and not standby.warm.is_set():
                standby.warm.set()
                log.info("the standby is warm", extra={"fields": {"revision": standby.revision,
                                                                   "pid": standby.proc.pid}})
            else:
                _append(standby.sink, line)

    async def _copy(self, stream: asyncio.StreamReader, standby: Standby) -> None:
        """A standby container's stderr, line by line, to its log, then to its replica's once activated."""
        while line := await stream.readline():
            _append(standby.sink, line)

    def _watch(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    def close(self) -> None:
        for watcher in self._watchers:
            watcher.cancel()


def _append(path: Path | None, line: bytes) -> None:
    if path is not None:
        with path.open("ab") as out:
            out.write(line)


LAST_WORDS_BYTES = 16_384
LAST_WORDS_CHARS = 500


def last_words(log: Path) -> str:
    """Why a replica exited, from the end of its log (what Kubernetes' ``FallbackToLogsOnError`` termination
    message gives): among the error lines it wrote last, the ``error`` field of a JSON one (a failed model load
    says what failed), else the message of one, else its last line when that is not JSON (a traceback's end);
    "" when it ended on an ordinary line (killed while it served)."""
    try:
        with log.open("rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - LAST_WORDS_BYTES))
            lines = [line for line in file.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return ""
    said = ""
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            said = said or line.strip()  # not ours: a traceback, a message on stderr
            continue
        if str(entry.get("level", "")).lower() not in ("error", "critical"):
            break
        if isinstance(entry.get("error"), str):
            return entry["error"][:LAST_WORDS_CHARS]
        said = said or str(entry.get("message", ""))
    return said[:LAST_WORDS_CHARS]


async def stop(proc: Proc | None, grace_s: float = 10.0) -> None:
    """SIGTERM the process's group, SIGKILL after ``grace_s``; a container: SIGTERM, killed after ``grace_s``."""
    if proc is None or proc.returncode is not None:
        return
    if isinstance(proc, ContainerProcess):
        await proc.stop(grace_s)
        return
    if not signal_group(proc.pid, signal.SIGTERM):
        return
    try:
        await asyncio.wait_for(proc.wait(), timeout=grace_s)
    except TimeoutError:
        signal_group(proc.pid, signal.SIGKILL)
        await proc.wait()
