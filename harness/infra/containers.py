"""Stand-ins as containers: started with testcontainers, found again and removed by id with Docker's SDK.

Everything made here carries the label ``lastmile.state-dir`` (a hash of the state dir's real path), and the
stand-ins of one state dir share a user-defined bridge network, ``lastmile-<hash>``, where they reach each other
by network alias (MLflow's artifact proxy -> the S3 stand-in). Ports are published on 127.0.0.1 only. The
containers must outlive ``lastmile up``, so testcontainers' reaper (Ryuk) is off: ``lastmile down`` removes
exactly the containers ``standins.json`` records. Docker and testcontainers are imported on first use, so the
processes profile never loads them.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.domain.errors import UserError
from harness.infra.standin import ContainerSpec

STATE_LABEL = "lastmile.state-dir"
OWNER_LABEL = "lastmile.owner"
STANDIN_LABEL = "lastmile.standin"
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
BUILD_HINT = "build the stand-ins' images with scripts/build-images.sh, or name others in standins.images"


def state_key(state_dir: Path) -> str:
    """A short, stable name for one state dir: two checkouts never share a container or a network."""
    return hashlib.sha256(os.path.realpath(state_dir).encode()).hexdigest()[:12]


def labels(state_dir: Path, name: str) -> dict[str, str]:
    key = state_key(state_dir)
    return {STATE_LABEL: key, OWNER_LABEL: f"lastmile-standins-{key}", STANDIN_LABEL: name}


def network_name(state_dir: Path) -> str:
    return f"lastmile-{state_key(state_dir)}"


def container_name(state_dir: Path, name: str) -> str:
    return f"lastmile-{state_key(state_dir)}-{name.replace('_', '-')}"


@functools.cache
def _client() -> Any:
    import docker

    return docker.from_env(timeout=30)


def docker_client() -> Any:
    """Docker's SDK client, or a one-line error when no engine answers."""
    import docker.errors

    try:
        client = _client()
        client.ping()
    except docker.errors.DockerException as e:
        _client.cache_clear()
        raise UserError(f"no Docker engine answers ({type(e).__name__})",
                        hint="start dockerd, or set DOCKER_HOST; or use the local profile") from None
    return client


def check_image(image: str) -> None:
    import docker.errors

    try:
        docker_client().images.get(image)
    except docker.errors.ImageNotFound:
        raise UserError(f"image {image} is not in the Docker engine", hint=BUILD_HINT) from None


def ensure_network(state_dir: Path) -> str:
    """The state dir's bridge network, created when missing."""
    client, name = docker_client(), network_name(state_dir)
    if not client.networks.list(names=[name]):
        client.networks.create(name, driver="bridge", labels={STATE_LABEL: state_key(state_dir)})
    return name


def remove_network(state_dir: Path) -> None:
    """Remove the state dir's network once no container is attached (compose's or a stranger's keeps it)."""
    import docker.errors

    for network in docker_client().networks.list(names=[network_name(state_dir)]):
        network.reload()
        if network.attrs.get("Labels", {}).get(STATE_LABEL) == state_key(state_dir) and not network.containers:
            try:
                network.remove()
            except docker.errors.APIError:
                pass  # a container joined meanwhile: it stays for the next down


@dataclass(frozen=True)
class RunOptions:
    """Everything a stand-in's container is started with; compose.yaml states the same (a unit test compares)."""

    name: str
    image: str
    command: tuple[str, ...]
    environment: Mapping[str, str] = field(repr=False)
    ports: Mapping[str, tuple[str, int]]  # "<port>/tcp" -> (host ip, host port)
    volumes: Mapping[str, str]  # host path -> container path, read-write
    user: str
    labels: Mapping[str, str]
    aliases: tuple[str, ...]


def run_options(spec: ContainerSpec, *, name: str, state_dir: Path, port: int, aliases: Iterable[str]) -> RunOptions:
    """``spec`` as the host user, its port published on 127.0.0.1 under the same number, its folders mounted at
    their own path, named and labelled for this state dir."""
    return RunOptions(container_name(state_dir, name), spec.image, tuple(spec.command), dict(spec.environment),
                      {f"{port}/tcp": ("127.0.0.1", port)}, {str(m): str(m) for m in spec.mounts},
                      f"{os.getuid()}:{os.getgid()}", labels(state_dir, name), tuple(aliases))


def start(spec: ContainerSpec, *, name: str, state_dir: Path, port: int, aliases: Iterable[str]) -> str:
    """Create and start the container of ``spec`` (see :func:`run_options`) with testcontainers; its id.

    Readiness is the supervisor's to wait for, together with the rest of the start wave; a container that could
    not start is removed before the error goes up."""
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    import docker.errors
    from testcontainers.core.config import testcontainers_config
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network

    testcontainers_config.ryuk_disabled = True  # the stand-ins outlive this process; `lastmile down` removes them
    options = run_options(spec, name=name, state_dir=state_dir, port=port, aliases=aliases)
    client = docker_client()
    _remove_leftover(client, options.name, state_dir)
    network = Network()
    network.name = ensure_network(state_dir)
    container = (DockerContainer(options.image, env=dict(options.environment), name=options.name)
                 .with_command(list(options.command))
                 .with_network(network)
                 .with_network_aliases(*options.aliases)
                 .with_kwargs(user=options.user, labels=dict(options.labels)))
    container.ports.update(options.ports)  # type: ignore[arg-type]  # docker SDK: "<port>/tcp" -> (host ip, port)
    for host, inside in options.volumes.items():
        container.with_volume_mapping(host, inside, "rw")
    try:
        container.start()
    except BaseException as e:
        created = container.get_wrapped_container()
        if created is not None:
            _remove(created)
        if isinstance(e, docker.errors.APIError):
            raise UserError(f"{name}: its container ({spec.image}) did not start: {e.explanation or e}",
                            hint=f"is {spec.image} the {name} stand-in's image? {BUILD_HINT}") from None
        raise
    return container.get_container_id()


class Handle:
    """A starting container as the supervisor polls it: ``poll()`` is None while it runs, its exit code after
    (Popen's contract), so a server that dies during start is reported at once, not at the timeout."""

    def __init__(self, container_id: str):
        self.container_id = container_id

    def poll(self) -> int | None:
        state = inspect_state(self.container_id)
        if state is None:
            return -1
        return None if state.get("Running") or state.get("Restarting") else int(state.get("ExitCode", -1))


def inspect_state(container_id: str) -> dict | None:
    import docker.errors

    try:
        return docker_client().api.inspect_container(container_id)["State"]
    except docker.errors.NotFound:
        return None


def running(container_id: str) -> bool:
    """True while it runs, paused or not (a paused server is alive and unhealthy, as a stopped process is)."""
    state = inspect_state(container_id)
    return bool(state and state.get("Running"))


def exists(container_id: str) -> bool:
    return inspect_state(container_id) is not None


def logs(container_id: str, tail: int | str = "all") -> str:
    import docker.errors

    try:
        return docker_client().containers.get(container_id).logs(tail=tail).decode(errors="replace")
    except docker.errors.NotFound:
        return ""


def remove(container_ids: Iterable[str], log_paths: Iterable[Path], timeout: float = 10.0) -> None:
    """Stop (SIGTERM, SIGKILL after ``timeout``) and remove each container by id, its output appended to its log
    first. A container already gone is no error."""
    import docker.errors

    client = docker_client()
    for container_id, log_path in zip(container_ids, log_paths, strict=True):
        try:
            container = client.containers.get(container_id)
        except docker.errors.NotFound:
            continue
        try:
            container.stop(timeout=int(timeout))
        except docker.errors.APIError:
            pass
        _append_logs(container, log_path)
        _remove(container)


def find_compose(state_dir: Path, name: str) -> tuple[str, int] | None:
    """A running compose container of stand-in ``name`` for this state dir (the labels compose.yaml sets from the
    env file ``lastmile up --prepare-only`` writes): its id and the port it publishes on 127.0.0.1."""
    found = docker_client().containers.list(filters={"label": [f"{STATE_LABEL}={state_key(state_dir)}",
                                                               f"{STANDIN_LABEL}={name}", COMPOSE_PROJECT_LABEL]})
    for container in found:
        for bindings in (container.ports or {}).values():
            for binding in bindings or []:
                if binding.get("HostIp") == "127.0.0.1":
                    return container.id, int(binding["HostPort"])
    return None


def write_header(log_path: Path, state_dir: Path, name: str, image: str, port: int) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    container = container_name(state_dir, name)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n--- lastmile up: starting {name} as container {container} ({image}) on port {port} at "
                  f"{time.ctime()}; its output: docker logs {container} (appended here when it stops) ---\n")


def _append_logs(container: Any, log_path: Path) -> None:
    try:
        output = container.logs().decode(errors="replace")
    except Exception:  # the log is a courtesy; removal goes on
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"--- container {container.name} ({container.short_id}) output ---\n{output}")


def _remove(container: Any) -> None:
    import docker.errors

    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass


def _remove_leftover(client: Any, name: str, state_dir: Path) -> None:
    """A container of ours under this name that no state records (a crash between start and save): removed so the
    name is free. One under this name without our label is a stranger's: refused."""
    import docker.errors

    try:
        leftover = client.containers.get(name)
    except docker.errors.NotFound:
        return
    if leftover.labels.get(STATE_LABEL) != state_key(state_dir):
        raise UserError(f"a container named {name} exists and is not lastmile's for this state dir",
                        hint=f"remove or rename it: docker rm -f {name}")
    _remove(leftover)
