"""The containers family's flavors, typed so that `lastmile.yaml` can name them and `lastmile doctor` can judge them.

Their adapters are not built yet: each keeps :meth:`FlavorConfig.build`'s default, which says so in one line.
Registered under the ``lastmile.adapters`` entry point as ``containers``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.config.flavors import DeployerConfig, Family, FlavorConfig, JobRunnerConfig

FAMILY = Family("containers")


@FAMILY.flavor
class DockerBuilder(FlavorConfig):
    port = "image_builder"
    flavor: Literal["docker"]


@FAMILY.flavor
class ContainerJobs(JobRunnerConfig):
    flavor: Literal["container"]
    timeout_s: float = Field(600.0, gt=0)


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
