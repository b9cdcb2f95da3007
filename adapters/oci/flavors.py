"""The oci family's flavors, typed so that `lastmile.yaml` can name them and `lastmile doctor` can judge them.

Their adapters are not built yet: each keeps :meth:`FlavorConfig.build`'s default, which says so in one line.
Registered under the ``lastmile.adapters`` entry point as ``oci``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.config.flavors import (
    DeployerConfig,
    Family,
    FlavorConfig,
    JobRunnerConfig,
    SecretRefStr,
    Strict,
    TriggerConfig,
)

FAMILY = Family("oci")


class OciAuth(Strict):
    method: Literal["config_file", "instance_principal", "resource_principal"] = "config_file"
    config_file: str = "~/.oci/config"
    profile: str = "DEFAULT"


@FAMILY.flavor
class OciObjectStore(FlavorConfig):
    port = "object_store"
    flavor: Literal["oci"]
    namespace: str
    region: str
    compartment_id: str
    auth: OciAuth = OciAuth()


@FAMILY.flavor
class Ocir(FlavorConfig):
    port = "artifact_registry"
    flavor: Literal["ocir"]
    region: str
    namespace: str
    username: str
    auth_token: SecretRefStr
    repository_prefix: str = "lastmile"


@FAMILY.flavor
class DevOpsBuilder(FlavorConfig):
    port = "image_builder"
    flavor: Literal["devops"]
    build_pipeline_id: str
    auth: OciAuth = OciAuth()


@FAMILY.flavor
class DataScienceJobs(JobRunnerConfig):
    flavor: Literal["datascience"]
    compartment_id: str
    project_id: str
    shape: str = "VM.Standard.E4.Flex"
    log_group_id: str | None = None
    timeout_s: float = Field(3600.0, gt=0)
    auth: OciAuth = OciAuth()


@FAMILY.flavor
class OkeDeployer(DeployerConfig):
    flavor: Literal["oke"]
    cluster_id: str
    namespace: str = "lastmile"
    auth: OciAuth = OciAuth()


@FAMILY.flavor
class VaultSecrets(FlavorConfig):
    port = "secret_store"
    flavor: Literal["vault"]
    vault_id: str
    compartment_id: str
    auth: OciAuth = OciAuth()


@FAMILY.flavor
class OciLogging(FlavorConfig):
    port = "log_sink"
    flavor: Literal["oci-logging"]
    log_id: str
    auth: OciAuth = OciAuth()


@FAMILY.flavor
class DevOpsTrigger(TriggerConfig):
    flavor: Literal["devops"]
    project_id: str
    repository_id: str
    auth: OciAuth = OciAuth()
