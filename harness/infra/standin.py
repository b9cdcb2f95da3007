"""The stand-in contract: one small class per local service on a shared base.

A stand-in knows how to prepare its files, the command that starts it on a given port, how to
tell it is ready, and what to do once it is (create buckets, say). :mod:`harness.infra.supervisor`
starts, checks and stops them; the classes themselves live in ``adapters.local.standins``.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from harness.domain.errors import UserError


@dataclass(frozen=True)
class Endpoints:
    """Where each running stand-in answers, by name (``object_store``, ``registry``, ``mlflow``)."""

    urls: Mapping[str, str]

    def __getitem__(self, name: str) -> str:
        return self.urls[name]


@dataclass(frozen=True)
class ContainerSpec:
    """How a stand-in runs as a container rather than a process.

    Its server listens on every interface of the container at the port the supervisor chose, and that port is
    published on 127.0.0.1 under the same number, so a URL its own files record (moto's recording) means the same
    inside and out. ``mounts`` are host folders mounted at their own path (read-write): the files ``prepare``
    wrote work unchanged. The environment may hold credentials, so it stays out of the repr."""

    image: str
    command: tuple[str, ...]
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)
    mounts: tuple[Path, ...] = ()


class StandIn:
    """Base of every local stand-in. Subclasses set ``name`` and ``binary`` and override the hooks.

    A stand-in answers on one or more *routes* (``public_ports``: route name -> the configured port). When a
    *front* stand-in runs (the fault proxy), clients reach each route on its public port through the front,
    and the stand-in itself listens on an internal port (``internal``); without a front the two are equal.

    A stand-in with an ``image`` runs as a container of it (:meth:`container`), on the stand-ins' own network
    where its fellow containers reach each of its routes by name (:func:`network_alias`)."""

    name: str = ""
    image: str | None = None
    binary: str | None = None
    install_hint: str = ""
    start_timeout_s: float = 30.0
    front: bool = False
    wave: int = 1
    """Start order: every stand-in of a lower wave is ready before this one prepares and starts."""

    def __init__(self, port: int, state_dir: Path):
        self.port = port
        self.state_dir = state_dir
        self.public: dict[str, int] = {}
        self.internal: dict[str, int] = {}

    def public_ports(self) -> dict[str, int]:
        """Every route this stand-in serves and its configured public port."""
        return {self.name: self.port}

    def apply_routes(self, url: str, routes: dict[str, tuple[int, int]]) -> None:
        """A front only: route each ``public`` port to its ``internal`` one (``routes[name] = (public, internal)``)."""

    @property
    def home(self) -> Path:
        """The stand-in's own folder under the state dir (data, config)."""
        return self.state_dir / self.name

    @property
    def log_path(self) -> Path:
        return self.state_dir / "logs" / f"{self.name}.log"

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"

    def check_installed(self) -> None:
        if self.binary and not shutil.which(self.binary):
            raise UserError(f"{self.name}: '{self.binary}' is not on PATH", hint=self.install_hint)

    def prepare(self, port: int) -> None:
        """Write config files, generate credentials. Runs before every start."""

    def command(self, port: int, endpoints: Endpoints) -> list[str]:
        raise NotImplementedError

    def environment(self, endpoints: Endpoints) -> dict[str, str]:
        return {}

    def container(self, port: int, peers: Endpoints) -> ContainerSpec:
        """A stand-in with an ``image``: its container. ``peers`` are the other stand-ins' URLs as a container
        sees them (a fellow container's by its network alias)."""
        raise NotImplementedError(f"{self.name} runs as a process")

    def is_ready(self, url: str) -> bool:
        """Ready when its health URL answers; subclasses say which URL and which status."""
        raise NotImplementedError

    def after_ready(self, url: str) -> None:
        """One-off setup once it answers (buckets, users)."""

    def credential_files(self) -> list[Path]:
        """Files where this server keeps a credential it checks in a form that reveals it, as the real service
        keeps it on its side (an S3 server's secret keys, for SigV4): the secret invariant does not count them."""
        return []


def network_alias(route: str) -> str:
    """The host name a route of a stand-in container answers to on the stand-ins' network (no underscore: a
    host name with one is not a valid DNS name, and S3 clients refuse it)."""
    return route.replace("_", "-")


def http_status(url: str, timeout: float = 1.0, auth: tuple[str, str] | None = None) -> int | None:
    """The HTTP status of a GET, or None when nothing answers."""
    try:
        return httpx.get(url, timeout=timeout, auth=auth).status_code
    except httpx.HTTPError:
        return None
