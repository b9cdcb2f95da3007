"""Typed config for every flavor of every port, and for the stand-ins.

A port's block in ``lastmile.yaml`` names its ``flavor``; pydantic picks the model by that tag,
so a typo names the allowed flavors. Secrets are references (``secret:NAME``, ``vault:OCID``,
``env:VAR``), never values: a plain string in a secret field is rejected.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_SECRET_REF = re.compile(r"^(secret|vault|env):[A-Za-z0-9_.\-/]+$")


def _must_be_ref(value: str) -> str:
    if not _SECRET_REF.match(value):
        raise ValueError("must be a secret reference (secret:NAME, vault:OCID or env:VAR), never a value")
    return value


SecretRefStr = Annotated[str, AfterValidator(_must_be_ref)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OciAuth(Strict):
    method: Literal["config_file", "instance_principal", "resource_principal"] = "config_file"
    config_file: str = "~/.oci/config"
    profile: str = "DEFAULT"


# object storage ---------------------------------------------------------------------------------
class S3Store(Strict):
    flavor: Literal["s3"]
    endpoint: str | None = Field(None, description="S3 endpoint; empty means the object-storage stand-in")
    region: str = "us-east-1"
    access_key_id: SecretRefStr | None = None
    secret_access_key: SecretRefStr | None = None


class OciObjectStore(Strict):
    flavor: Literal["oci"]
    namespace: str
    region: str
    compartment_id: str
    auth: OciAuth = OciAuth()


# artifact registry ------------------------------------------------------------------------------
class DistributionRegistry(Strict):
    flavor: Literal["distribution"]
    endpoint: str | None = Field(None, description="registry URL; empty means the registry stand-in")
    username: str = "lastmile"
    password: SecretRefStr = "secret:registry-password"
    repository_prefix: str = "lastmile"


class Ocir(Strict):
    flavor: Literal["ocir"]
    region: str
    namespace: str
    username: str
    auth_token: SecretRefStr
    repository_prefix: str = "lastmile"


# image builder ----------------------------------------------------------------------------------
class BundleBuilder(Strict):
    flavor: Literal["bundle"]


class DockerBuilder(Strict):
    flavor: Literal["docker"]


class DevOpsBuilder(Strict):
    flavor: Literal["devops"]
    build_pipeline_id: str
    auth: OciAuth = OciAuth()


# job runner -------------------------------------------------------------------------------------
class SubprocessJobs(Strict):
    flavor: Literal["subprocess"]
    timeout_s: float = Field(600.0, gt=0)


class ContainerJobs(Strict):
    flavor: Literal["container"]
    timeout_s: float = Field(600.0, gt=0)


class DataScienceJobs(Strict):
    flavor: Literal["datascience"]
    compartment_id: str
    project_id: str
    shape: str = "VM.Standard.E4.Flex"
    log_group_id: str | None = None
    timeout_s: float = Field(3600.0, gt=0)
    auth: OciAuth = OciAuth()


# model registry ---------------------------------------------------------------------------------
class MlflowRegistry(Strict):
    flavor: Literal["mlflow"]
    tracking_uri: str | None = Field(None, description="MLflow URL; empty means the MLflow stand-in")
    username: str = "lastmile"
    password: SecretRefStr | None = Field("secret:mlflow-password",
                                          description="basic-auth password; null for a server without auth")


# deployer ---------------------------------------------------------------------------------------
class LocalDeployer(Strict):
    flavor: Literal["local"]
    endpoint: str | None = Field(None, description="the controller's admin API; empty means the deployer stand-in")
    replicas: int = Field(2, ge=1, le=16)
    max_surge: int = Field(1, ge=0)
    max_unavailable: int = Field(0, ge=0)
    ready_deadline_s: float = Field(60.0, gt=0)


class KindDeployer(Strict):
    flavor: Literal["kind"]
    replicas: int = Field(2, ge=1)


class OkeDeployer(Strict):
    flavor: Literal["oke"]
    cluster_id: str
    namespace: str = "lastmile"
    replicas: int = Field(2, ge=1)
    auth: OciAuth = OciAuth()


# secret store -----------------------------------------------------------------------------------
class FileSecrets(Strict):
    flavor: Literal["file"]
    path: str = "secrets.json"


class VaultSecrets(Strict):
    flavor: Literal["vault"]
    vault_id: str
    compartment_id: str
    auth: OciAuth = OciAuth()


# log sink ---------------------------------------------------------------------------------------
class JsonlLogs(Strict):
    flavor: Literal["jsonl"]
    path: str = "logs/events.jsonl"


class OciLogging(Strict):
    flavor: Literal["oci-logging"]
    log_id: str
    auth: OciAuth = OciAuth()


# source trigger ---------------------------------------------------------------------------------
class GitTrigger(Strict):
    flavor: Literal["git"]
    branch: str = "main"
    training_paths: tuple[str, ...] = ("training/**",)
    serving_paths: tuple[str, ...] = ("serving/**",)
    exclude: tuple[str, ...] = ("**/*.md",)


class DevOpsTrigger(Strict):
    flavor: Literal["devops"]
    project_id: str
    repository_id: str
    branch: str = "main"
    auth: OciAuth = OciAuth()


def _union(*models):
    return Annotated[Union[models], Field(discriminator="flavor")]


class Ports(Strict):
    object_store: _union(S3Store, OciObjectStore)
    artifact_registry: _union(DistributionRegistry, Ocir)
    image_builder: _union(BundleBuilder, DockerBuilder, DevOpsBuilder)
    job_runner: _union(SubprocessJobs, ContainerJobs, DataScienceJobs)
    model_registry: _union(MlflowRegistry)
    deployer: _union(LocalDeployer, KindDeployer, OkeDeployer)
    secret_store: _union(FileSecrets, VaultSecrets)
    log_sink: _union(JsonlLogs, OciLogging)
    source_trigger: _union(GitTrigger, DevOpsTrigger)


# stand-ins --------------------------------------------------------------------------------------
class ObjectStoreStandIn(Strict):
    server: Literal["auto", "minio", "moto"] = "auto"
    port: int = Field(9900, ge=1, le=65535)


class RegistryStandIn(Strict):
    port: int = Field(5055, ge=1, le=65535)


class MlflowStandIn(Strict):
    port: int = Field(5555, ge=1, le=65535)
    database_url: SecretRefStr | None = Field(None, description="PostgreSQL URL as a secret ref; empty = SQLite")


class DeployerStandIn(Strict):
    port: int = Field(5070, ge=1, le=65535, description="the controller's admin API")
    service_port: int = Field(8080, ge=1, le=65535, description="the deployment's stable endpoint")


class StandIns(Strict):
    """What ``lastmile up`` starts: ``processes`` on loopback, ``containers``, or ``none`` (real services)."""

    mode: Literal["processes", "containers", "none"] = "processes"
    object_store: ObjectStoreStandIn = ObjectStoreStandIn()
    registry: RegistryStandIn = RegistryStandIn()
    mlflow: MlflowStandIn = MlflowStandIn()
    deployer: DeployerStandIn = DeployerStandIn()
