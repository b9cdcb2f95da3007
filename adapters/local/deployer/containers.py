"""Serving replicas as containers (``--runtime container``): each one a ``docker run`` of the revision's serving image.

A replica container runs the image by the reference the deploy request names (``registry/repository@sha256:...``,
or a local image id), with the host's network (``--network host``: it binds 127.0.0.1 on the host, and its calls to
the stand-ins go to their public ports, through the fault proxy front, as a process replica's do), as the image's own
non-root user, with the downloaded model version bind-mounted read-only at the same path, so that the environment a
process replica gets (``LASTMILE_SERVING_MODEL_DIR`` included) means the same thing inside.

Why the ``docker`` client as a child process rather than the Docker SDK: ``docker run`` attached (``--interactive``
for the standby, whose order comes on stdin) is a child process like the one the process runtime starts, with the
replica's output on its stdout and stderr, the container's exit code as its own and signals passed on to the
container (``--sig-proxy``, on by default). The SDK would need a raw attached socket for stdin, a thread streaming
logs into the replica's log and another waiting for the exit code, per replica. The SDK does the short calls:
checking the image, killing a container that outlived its grace, removing leftovers.

Environment: the revision's variables, the replica's own, and from the controller's environment those a serving
process reads (``LASTMILE_SERVING_*``, ``AWS_*``: the sample store's credentials, ``MLFLOW_*``); nothing else of the
host's (its ``PATH`` would break the image's). Every one reaches the container as ``--env NAME`` with the value in
the client's environment, never on its command line.

Leftovers: every container is ``--rm`` and labelled with the controller's state dir (:func:`state_key`). The
controller removes the ones labelled with its state dir when it starts and when it stops, and a reaper
(:mod:`.reaper`) removes them when the controller dies without stopping them (SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import secrets
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("lastmile.deployer")

LABEL_REPLICA = "lastmile.replica"
LABEL_DEPLOYMENT = "lastmile.deployment"
LABEL_STATE_DIR = "lastmile.state-dir"
LABEL_OWNER = "lastmile.owner"
FORWARDED_PREFIXES = ("LASTMILE_SERVING_", "AWS_", "MLFLOW_")
"""The controller's own variables a replica container gets: the ones a serving process reads."""
KILL_WAIT_S = 10.0
DOCKER_ERRORS = (125, 126, 127)
"""``docker run``'s own exit codes (the daemon refused, the command could not run or was not found)."""


class CannotRun(Exception):
    """The revision cannot run as containers here (its image missing or running as root, its model copy unreadable
    by the image's user); the message says why."""


def state_key(state_dir: Path) -> str:
    """A short name of the controller's state dir, the same across its restarts: the label of its containers."""
    return hashlib.sha256(str(Path(state_dir).resolve()).encode()).hexdigest()[:12]


def exit_status(code: int | None) -> int | None:
    """The replica's exit status from ``docker run``'s: ``128 + N`` (the container's init killed by signal N, or
    passing on its server's death by it) becomes ``-N``, as for a process; the rest as they are."""
    if code is None or code <= 128:
        return code
    try:
        return -signal.Signals(code - 128).value
    except ValueError:
        return code


@dataclass(frozen=True)
class RunCommand:
    """A ``docker run`` of one replica: its argv (variable names only) and the client's environment (their values)."""

    argv: list[str]
    env: dict[str, str]
    name: str


class ContainerRuntime:
    """Builds and runs the ``docker run`` of each replica of one controller (one state dir)."""

    def __init__(self, state_dir: Path, deployment: str, docker: str = "docker"):
        self.key = state_key(state_dir)
        self.deployment = deployment
        self.docker = docker
        self._resolved: dict[str, str] = {}  # image reference -> the id of the engine's image, once checked

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL_DEPLOYMENT: self.deployment, LABEL_STATE_DIR: self.key, LABEL_OWNER: self.key}

    def container_name(self, replica: str) -> str:
        """``lastmile-<deployment>-<replica>-<random>``: unique per start, so a restart never meets the name of a
        container still being removed."""
        suffix = replica.removeprefix(f"{self.deployment}-")
        return _docker_name(f"lastmile-{self.deployment}-{suffix}-{secrets.token_hex(3)}")

    def command(self, image: str, replica: str, args: list[str], replica_env: Mapping[str, str], interactive: bool,
                environ: Mapping[str, str] | None = None) -> RunCommand:
        """The ``docker run`` of ``replica``: ``python -m serving --host 127.0.0.1 <args>`` in ``image``."""
        if not image:
            raise CannotRun("the revision names no serving image: the container runtime needs the deploy "
                               "request's `image` (a registry reference by digest, or a local image id)")
        environ = os.environ if environ is None else environ
        env = {k: v for k, v in environ.items() if k.startswith(FORWARDED_PREFIXES)}
        env.update(replica_env)
        name = self.container_name(replica)
        argv = [self.docker, "run", "--rm", "--init", "--pull", "never", "--name", name, "--network", "host"]
        if interactive:
            argv.append("--interactive")
        for key, value in {**self.labels, LABEL_REPLICA: replica}.items():
            argv += ["--label", f"{key}={value}"]
        for key in sorted(env):
            argv += ["--env", key]  # the value comes from the client's environment
        model_dir = env.get("LASTMILE_SERVING_MODEL_DIR")
        if model_dir:
            argv += ["--volume", f"{model_dir}:{model_dir}:ro"]
        argv += [image, "python", "-m", "serving", "--host", "127.0.0.1", *args]
        return RunCommand(argv, {**environ, **env}, name)

    async def run(self, image: str, replica: str, args: list[str], replica_env: Mapping[str, str], stdin: Any,
                  stdout: Any, stderr: Any) -> ContainerProcess:
        """Start the replica's container, attached. An image that cannot run here is run all the same, by its
        reference: ``docker run`` then fails (exit code 125) saying why, as a crash loop the controller reports."""
        if image and image not in self._resolved:
            with contextlib.suppress(CannotRun):
                await asyncio.to_thread(self.check_image, image)
        run = self.command(self._resolved.get(image, image), replica, args, replica_env,
                           interactive=stdin == asyncio.subprocess.PIPE)
        proc = await asyncio.create_subprocess_exec(*run.argv, env=run.env, stdin=stdin, stdout=stdout,
                                                    stderr=stderr, start_new_session=True)
        return ContainerProcess(proc, run.name, self)

    # the SDK's short calls: blocking, run in a thread by the async callers -----------------------------
    def check_image(self, image: str) -> str:
        """The image's id when this engine has ``image`` and it runs as a user other than root; else
        :class:`CannotRun`. Nothing is pulled: the containers profile builds its images on this engine, and a
        missing image means another engine or a removed image, which a clear refusal tells better than a pull.

        A reference by digest also finds the image the engine knows by the same repository and digest at another
        registry address (the registry stand-in on another port since): a manifest digest names its content."""
        import docker
        from docker.errors import DockerException, ImageNotFound

        try:
            client = docker.from_env(timeout=10)
            try:
                try:
                    found = client.images.get(image)
                except ImageNotFound:
                    found = _by_repository_digest(client, image)
                    if found is None:
                        raise
            finally:
                client.close()
        except ImageNotFound:
            raise CannotRun(f"image {image} is not in this Docker engine: the containers profile runs the image "
                            "its `docker` image builder built and pushed on the same engine; build it there, or "
                            "name an image the engine has") from None
        except DockerException as exc:
            raise CannotRun(f"the Docker engine did not answer about image {image}: {exc}") from None
        user = str(found.attrs.get("Config", {}).get("User") or "")
        if user.split(":")[0] in ("", "root", "0"):
            raise CannotRun(f"image {image} runs as root (no USER in its Dockerfile): replicas run as the "
                            "image's non-root user, as serving/Dockerfile sets one")
        self._resolved[image] = str(found.id)
        return str(found.id)

    @staticmethod
    def check_model_dir(model_dir: str | None) -> None:
        """:class:`CannotRun` when the replicas' user (the image's, not this one) could not read the model copy:
        every directory down to it searchable by others, and it and its files readable by others."""
        if not model_dir:
            return
        path = Path(model_dir)
        if not path.is_dir():
            raise CannotRun(f"the model copy {model_dir} is not a directory on this host: replica containers "
                            "mount it from here")
        for directory in [*reversed(path.parents), path]:
            if not directory.stat().st_mode & 0o001:
                raise CannotRun(f"{directory} is not searchable by other users, so the replica containers' user "
                                f"cannot read the model copy {model_dir}: chmod o+x {directory}")
        for entry in [path, *path.rglob("*")]:
            if not entry.stat().st_mode & (0o005 if entry.is_dir() else 0o004):
                raise CannotRun(f"{entry} is not readable by other users, so the replica containers' user cannot "
                                f"read the model copy: chmod -R o+rX {model_dir}")

    def rename(self, name: str, new_name: str) -> bool:
        import docker
        from docker.errors import DockerException

        try:
            client = docker.from_env(timeout=10)
            try:
                client.containers.get(name).rename(new_name)
            finally:
                client.close()
        except DockerException as exc:  # the name is a courtesy to whoever reads `docker ps`
            log.warning("could not rename a container", extra={"fields": {"container": name, "error": str(exc)}})
            return False
        return True

    def kill(self, name: str) -> None:
        remove_labelled({LABEL_STATE_DIR: self.key}, name=name)

    def remove_leftovers(self) -> list[str]:
        """Remove every container labelled with this controller's state dir; their names."""
        return remove_labelled({LABEL_STATE_DIR: self.key})

    async def start_reaper(self) -> asyncio.subprocess.Process:
        """The reaper of this controller's containers: it waits for the end of its stdin (this process's end,
        however it ends), then removes them. Its own session: a signal to the controller's group spares it."""
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "adapters.local.deployer.reaper", f"{LABEL_STATE_DIR}={self.key}",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True)


def remove_labelled(labels: Mapping[str, str], name: str | None = None) -> list[str]:
    """Force-remove (kill first) the containers carrying every label of ``labels`` (and named ``name``, if given)."""
    import docker
    from docker.errors import DockerException, NotFound

    removed: list[str] = []
    filters: dict[str, Any] = {"label": [f"{k}={v}" for k, v in labels.items()]}
    if name:
        filters["name"] = f"^/?{re.escape(name)}$"
    try:
        client = docker.from_env(timeout=30)
    except DockerException:
        return removed
    try:
        # The summaries of the list call, not an inspect of each (a container that --rm removes meanwhile
        # would fail the whole listing).
        for summary in client.api.containers(all=True, filters=filters):
            with contextlib.suppress(NotFound):  # --rm may remove it first
                client.api.remove_container(summary["Id"], force=True)
                removed.append(summary["Names"][0].lstrip("/") if summary.get("Names") else summary["Id"][:12])
    except DockerException as exc:
        log.warning("could not remove containers", extra={"fields": {"labels": dict(labels), "error": str(exc)}})
    finally:
        client.close()
    return removed


class ContainerProcess:
    """The ``docker run`` client attached to one replica container, seen as the replica's process: its pid is the
    client's, its return code the container's (:func:`exit_status`), its stdin and stdout the container's."""

    def __init__(self, proc: asyncio.subprocess.Process, container: str, runtime: ContainerRuntime):
        self._proc = proc
        self.container = container
        self._runtime = runtime
        self._reaped = False

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return exit_status(self._proc.returncode)

    @property
    def stdin(self) -> asyncio.StreamWriter | None:
        return self._proc.stdin

    @property
    def stdout(self) -> asyncio.StreamReader | None:
        return self._proc.stdout

    @property
    def stderr(self) -> asyncio.StreamReader | None:
        return self._proc.stderr

    async def rename_for(self, replica: str) -> None:
        """Name the container after the replica it became (an activated standby's), as ``docker ps`` shows it."""
        new_name = self._runtime.container_name(replica)
        if await asyncio.to_thread(self._runtime.rename, self.container, new_name):
            self.container = new_name

    async def wait(self) -> int:
        """The container's exit status. A client killed by a signal (its own, not the container's: a process
        fault on it) leaves its container running, holding its port: it is removed before this returns, so that a
        replica's death means its container's."""
        await self._proc.wait()
        if self._proc.returncode is not None and self._proc.returncode < 0 and not self._reaped:
            self._reaped = True
            await asyncio.to_thread(self._runtime.kill, self.container)
        return self.returncode  # type: ignore[return-value]

    async def stop(self, grace_s: float) -> None:
        """SIGTERM to the server inside (the client passes it on, the container's init to the server), the
        container killed after ``grace_s``; it is removed as it ends (``--rm``)."""
        if self._proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self._proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self._proc.wait(), timeout=grace_s)
            return
        except TimeoutError:
            pass
        await asyncio.to_thread(self._runtime.kill, self.container)
        try:
            await asyncio.wait_for(self._proc.wait(), timeout=KILL_WAIT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            await self._proc.wait()


def _by_repository_digest(client: Any, image: str) -> Any:
    """The engine's image whose ``RepoDigests`` has ``image``'s repository and digest at any registry address."""
    wanted = _after_registry(image)
    if wanted is None or "@" not in wanted:
        return None
    for candidate in client.images.list():
        if any(_after_registry(entry) == wanted for entry in candidate.attrs.get("RepoDigests") or ()):
            return candidate
    return None


def _after_registry(reference: str) -> str | None:
    """``repository@digest`` of ``host[:port]/repository@digest``; None without a registry address."""
    host, _, rest = reference.partition("/")
    return rest if rest and ("." in host or ":" in host or host == "localhost") else None


def _docker_name(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]", "-", name)[:120]
