"""The containers family's flavors, typed so that `lastmile.yaml` can name them and `lastmile doctor` can judge them.

The docker image builder and the container job runner are built (:mod:`.builder`, :mod:`.jobs`); a flavor whose
adapter is not built yet keeps :meth:`FlavorConfig.build`'s default, which says so in one line.
Registered under the ``lastmile.adapters`` entry point as ``containers``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from harness.config.flavors import DeployerConfig, Family, FlavorConfig, JobRunnerConfig

if TYPE_CHECKING:
    from harness.bootstrap import Harness

    from .builder import RegistryLogin

FAMILY = Family("containers")


@FAMILY.flavor
class DockerBuilder(FlavorConfig):
    """Container images built by the Docker engine and pushed by digest to the profile's registry."""

    port = "image_builder"
    flavor: Literal["docker"]
    base_image: str | None = Field(None, description="the Dockerfiles' BASE_IMAGE; empty: python:3.11-slim when "
                                                     "the engine has it, else local_base_image")
    local_base_image: str = Field("lastmile/python:3.11-slim-local",
                                  description="the stand-in for python:3.11-slim that scripts/local-base-image.sh "
                                              "builds where no registry can be pulled from")

    def where(self, h: Harness) -> str:
        return h.settings.ports.artifact_registry.where(h)

    def build(self, h: Harness):
        from .builder import DockerImageBuilder

        prefix = getattr(h.settings.ports.artifact_registry, "repository_prefix", "lastmile")
        return DockerImageBuilder(h.artifact_registry, registry_login(h), h.settings.state_dir, prefix,
                                  self.base_image, self.local_base_image)


@FAMILY.flavor
class ContainerJobs(JobRunnerConfig):
    """Training jobs as containers of the training image, run by digest on the host's network."""

    flavor: Literal["container"]
    timeout_s: float = Field(600.0, gt=0)

    def build(self, h: Harness):
        """Jobs get the profile's endpoints and credentials through the engine's API (the container's
        environment), never through the :class:`~harness.domain.records.JobSpec`, which is journaled."""
        from adapters.shared.jobenv import job_environment

        from .jobs import ContainerJobRunner

        return ContainerJobRunner(h.settings.state_dir, registry_login(h), env=job_environment(h),
                                  max_timeout_s=self.timeout_s)


def registry_login(h: Harness) -> RegistryLogin:
    """The profile's registry login, from its artifact registry flavor: OCIR's ``<namespace>/<user>`` and auth
    token, else the registry's username and password."""
    from .builder import RegistryLogin

    registry = h.settings.ports.artifact_registry
    username, namespace = getattr(registry, "username", "lastmile"), getattr(registry, "namespace", "")
    login = username if "/" in username or not namespace else f"{namespace}/{username}"
    ref = getattr(registry, "password", None) or getattr(registry, "auth_token", None) or "secret:registry-password"
    return RegistryLogin(login, h.secret(ref), ref)


@FAMILY.flavor
class KindDeployer(DeployerConfig):
    """Replicas as pods on a kind cluster (Kubernetes in Docker), through the oci work's ``kubernetes`` deployer.
    Typed, not built: ``lastmile doctor`` says what it would need here (:func:`kind_problems`); the deployer flavor
    ``docker`` runs replicas as containers on the same engine behind the local controller's HAProxy Service."""

    flavor: Literal["kind"]


KIND_BINARY = "kind"
KIND_NODE_IMAGE = "kindest/node"


def kind_problems() -> list[str]:
    """What the ``kind`` deployer flavor lacks on this machine: the ``kind`` binary and its node image."""
    import shutil

    missing = []
    if shutil.which(KIND_BINARY) is None:
        missing.append(f"the `{KIND_BINARY}` binary (not on PATH)")
    node = _node_image()
    if node is not None:
        missing.append(f"its node image {KIND_NODE_IMAGE} ({node})")
    return missing


def _node_image() -> str | None:
    """Why the engine has no ``kindest/node`` image, or None when it has one."""
    try:
        import docker

        client = docker.from_env(timeout=5)
        try:
            found = client.images.list(name=KIND_NODE_IMAGE)
        finally:
            client.close()
    except Exception as exc:  # DockerException, requests' ConnectionError: no engine to look in
        return f"no Docker engine answers to look for it: {type(exc).__name__}"
    return None if found else "not in the Docker engine, and nothing can be pulled here"


def _doctor(ports) -> list[str]:
    """A profile on the ``kind`` deployer: whether kind could run here, and which deployer flavor can."""
    if not any(isinstance(config, KindDeployer) for _, config in ports):
        return []
    missing = kind_problems()
    why = (f"needs {' and '.join(missing)}" if missing else
           f"has the `{KIND_BINARY}` binary and {KIND_NODE_IMAGE}, but its adapter is not built yet")
    return [f"deployer=kind {why}; the deployer flavor `docker` (replicas as containers of the serving image "
            "behind HAProxy) is the one available"]


FAMILY.doctor = _doctor


def _standins(h):
    from adapters.containers.standins import container_standins

    return container_standins(h)


FAMILY.standins["containers"] = _standins
