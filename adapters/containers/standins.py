"""The containers profile's stand-ins: the processes profile's, with the S3 stand-in, the registry and MLflow in
containers of their images (``standins.images``; built from ``compose/images/``).

Each container stand-in wraps the process stand-in of the same name and keeps everything but the way it runs:
the files its ``prepare`` writes (mounted at their own path), its readiness check and its setup once ready
(buckets, moto's replay), its credentials (in the container's environment). Its command is the process's with
the image's interpreter and every interface of the container instead of loopback; the port is the same inside
and out. The fault proxy front and the deployment controller stay host processes, as the lead's design says:
clients keep reaching every stand-in through the front's public ports.

The process stand-ins come from the families that offer ``processes`` stand-ins, through the registry of
families, since this family imports no other.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from harness.config.flavors import families
from harness.domain.errors import UserError
from harness.infra import compose, containers
from harness.infra.standin import ContainerSpec, Endpoints, StandIn

if TYPE_CHECKING:
    from harness.bootstrap import Harness



LOOPBACK, ALL_INTERFACES = "127.0.0.1", "0.0.0.0"


class InContainer(StandIn):
    """A process stand-in run as a container of ``image``; ``environment`` adds variables for the port chosen
    (the registry's listen address, which its config file says is loopback)."""

    def __init__(self, inner: StandIn, image: str,
                 environment: Callable[[int], dict[str, str]] = lambda port: {}):
        super().__init__(inner.port, inner.state_dir)
        self.inner = inner
        self.name = inner.name
        self.image = image
        self.start_timeout_s = inner.start_timeout_s
        self.wave = inner.wave
        self.extra_environment = environment

    def public_ports(self) -> dict[str, int]:
        return self.inner.public_ports()

    def check_installed(self) -> None:
        containers.check_image(self.image or "")

    def prepare(self, port: int) -> None:
        self.inner.prepare(port)

    def container(self, port: int, peers: Endpoints) -> ContainerSpec:
        self.inner.public, self.inner.internal = self.public, self.internal
        command = tuple(_in_container(arg) for arg in self.inner.command(port, peers))
        environment = {**self.inner.environment(peers), **self.extra_environment(port)}
        return ContainerSpec(self.image or "", command, environment, (self.home,))

    def is_ready(self, url: str) -> bool:
        return self.inner.is_ready(url)

    def after_ready(self, url: str) -> None:
        self.inner.after_ready(url)

    def credential_files(self) -> list[Path]:
        """The process's, and the env file compose reads this container's credentials from (when prepared)."""
        return [*self.inner.credential_files(), compose.env_file(self.state_dir, self.name)]


def _in_container(arg: str) -> str:
    """The process's argument as the container needs it: the image's python, and every interface."""
    return "python" if arg == sys.executable else ALL_INTERFACES if arg == LOOPBACK else arg


def registry_listen(port: int) -> dict[str, str]:
    """Distribution reads its config file's ``http.addr`` (loopback, for the process) from this variable first."""
    return {"REGISTRY_HTTP_ADDR": f"{ALL_INTERFACES}:{port}"}


def container_standins(h: Harness) -> list[StandIn]:
    """The processes profile's stand-ins, with the S3 stand-in, the registry and MLflow in containers."""
    builders = [family.standins["processes"] for family in families() if "processes" in family.standins]
    if not builders:
        raise UserError("no installed adapter family offers process stand-ins to run in containers",
                        hint="reinstall lastmile with `make deps`")
    images = h.settings.standins.images
    wrap: dict[str, tuple[str, Callable[[int], dict[str, str]]]] = {
        "object_store": (images.object_store, lambda port: {}),
        "registry": (images.registry, registry_listen),
        "mlflow": (images.mlflow, lambda port: {}),
    }
    return [InContainer(s, *wrap[s.name]) if s.name in wrap else s
            for build in builders for s in build(h)]
