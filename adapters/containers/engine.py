"""The Docker engine as the containers family reaches it: Docker's own SDK, a client made when an adapter first
needs one (never at import), and the labels that say which lastmile state dir owns a container or an image.

Every error the engine gives us leaves through :func:`engine_errors` as a :class:`LastmileError` naming what was
asked, so no SDK type crosses a port.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from harness.domain.errors import LastmileError, NotFound, UnreachableError

if TYPE_CHECKING:
    import docker

STATE_DIR_LABEL = "lastmile.state-dir"
"""Every container and image lastmile makes carries its state dir's :func:`state_dir_label`, so a clean-up (or a
drill's orphan check) finds what one state dir made and nothing else."""

ENGINE_HINT = "start the Docker engine (dockerd), or point DOCKER_HOST at one"


def docker_client(timeout_s: float = 120.0) -> docker.DockerClient:
    """A client of the engine that ``DOCKER_HOST`` (or the default socket) names, checked with a ping."""
    import docker
    import requests

    try:
        client = docker.from_env(timeout=int(timeout_s))
        client.ping()
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise UnreachableError(f"no Docker engine answers ({_reason(exc)})", hint=ENGINE_HINT) from None
    return client


def state_dir_label(state_dir: Path) -> str:
    """A short, stable name for a state dir (its resolved path's hash): a label value that names no path."""
    return hashlib.sha256(str(Path(state_dir).resolve()).encode()).hexdigest()[:16]


@contextmanager
def engine_errors(doing: str) -> Iterator[None]:
    """Turn the SDK's errors while ``doing`` into ours: NotFound for a missing object, else a LastmileError (an
    UnreachableError when the engine stopped answering)."""
    import docker
    import requests

    try:
        yield
    except docker.errors.NotFound as exc:
        raise NotFound(f"{doing}: {_reason(exc)}") from None
    except requests.RequestException as exc:
        raise UnreachableError(f"{doing}: the Docker engine did not answer ({_reason(exc)})",
                               hint=ENGINE_HINT) from None
    except docker.errors.DockerException as exc:
        raise LastmileError(f"{doing}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    text = str(explanation or exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
