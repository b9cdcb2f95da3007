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
    flavor: Literal["kind"]


def _standins(h):
    from adapters.containers.standins import container_standins

    return container_standins(h)


FAMILY.standins["containers"] = _standins
