"""The local family's flavors: typed config and builder of each adapter, and its process stand-ins.

Registered under the ``lastmile.adapters`` entry point as ``local``. Each builder imports its adapter (and
that adapter's SDK) only when a profile uses the flavor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from adapters.shared.jobenv import (  # job_environment: imported from here too
    job_environment,
    mlflow_client_settings,
    mlflow_credentials,
)
from harness.config.flavors import (
    DeployerConfig,
    Family,
    FlavorConfig,
    JobRunnerConfig,
    S3Access,
    SecretRefStr,
    TriggerConfig,
)
from harness.domain.records import Secret, SecretRef

if TYPE_CHECKING:
    from harness.bootstrap import Harness
    from harness.infra.standin import StandIn

FAMILY = Family("local")


@FAMILY.flavor
class S3Store(FlavorConfig):
    """Any S3-compatible store: the moto or MinIO stand-in, or OCI's S3 compatibility API."""

    port = "object_store"
    flavor: Literal["s3"]
    endpoint: str | None = Field(None, description="S3 endpoint; empty means the object-storage stand-in")
    region: str = "us-east-1"
    access_key_id: SecretRefStr | None = None
    secret_access_key: SecretRefStr | None = None

    def where(self, h: Harness) -> str:
        return h.endpoint("object_store", self.endpoint)

    def s3_access(self, h: Harness) -> S3Access:
        return S3Access(h.endpoint("object_store", self.endpoint), self.region, *s3_credentials(self, h))

    def build(self, h: Harness):
        from adapters.local.s3 import S3ObjectStore

        access, secret = s3_credentials(self, h)
        return S3ObjectStore(h.endpoint("object_store", self.endpoint), self.region, access, secret)


@FAMILY.flavor
class DistributionRegistry(FlavorConfig):
    port = "artifact_registry"
    flavor: Literal["distribution"]
    endpoint: str | None = Field(None, description="registry URL; empty means the registry stand-in")
    username: str = "lastmile"
    password: SecretRefStr = "secret:registry-password"
    repository_prefix: str = "lastmile"

    def where(self, h: Harness) -> str:
        return h.endpoint("registry", self.endpoint)

    def build(self, h: Harness):
        from adapters.shared.distribution import DistributionRegistry as Adapter

        return Adapter(h.endpoint("registry", self.endpoint), self.username, h.secret(self.password), self.password)


@FAMILY.flavor
class BundleBuilder(FlavorConfig):
    """Builds without Docker: a deterministic OCI artifact bundle per deployable."""

    port = "image_builder"
    flavor: Literal["bundle"]

    def build(self, h: Harness):
        from adapters.local.bundle_builder import BundleImageBuilder

        return BundleImageBuilder(h.artifact_registry, getattr(h.settings.ports.artifact_registry,
                                                               "repository_prefix", "lastmile"))


@FAMILY.flavor
class SubprocessJobs(JobRunnerConfig):
    flavor: Literal["subprocess"]

    def build(self, h: Harness):
        """Jobs get the profile's endpoints and credentials through the runner's environment, never through
        the :class:`~harness.domain.records.JobSpec`, which is journaled."""
        from adapters.local.jobs import SubprocessJobRunner

        return SubprocessJobRunner(h.artifact_registry, h.settings.state_dir, env=job_environment(h),
                                   max_timeout_s=self.timeout_s)


@FAMILY.flavor
class MlflowRegistry(FlavorConfig):
    port = "model_registry"
    flavor: Literal["mlflow"]
    tracking_uri: str | None = Field(None, description="MLflow URL; empty means the MLflow stand-in")
    username: str = "lastmile"
    password: SecretRefStr | None = Field("secret:mlflow-password",
                                          description="basic-auth password; null for a server without auth")

    def where(self, h: Harness) -> str:
        return h.endpoint("mlflow", self.tracking_uri)

    def build(self, h: Harness):
        from adapters.local.mlflow_registry import MlflowModelRegistry

        endpoint = h.endpoint("mlflow", self.tracking_uri)  # first: no stand-in up says more than a missing secret
        username, password = mlflow_credentials(h) or ("lastmile", None)
        return MlflowModelRegistry(endpoint, username, password,
                                   client_settings=mlflow_client_settings(h))


@FAMILY.flavor
class LocalDeployer(DeployerConfig):
    """The OKE stand-in: the local deployment controller's admin API."""

    flavor: Literal["local"]
    endpoint: str | None = Field(None, description="the controller's admin API; empty means the deployer stand-in")
    balancer: Literal["haproxy", "python"] = Field(
        "haproxy", description="what serves the stable endpoint: HAProxy driven by the controller, or the slower "
                               "in-process Python proxy (benchmarks/stable_endpoint.py compares them)")
    keeps_model_copies: ClassVar[bool] = True
    warm_standby: ClassVar[bool] = True
    runtime: ClassVar[Literal["process", "container"]] = "process"
    """What a replica is: a ``python -m serving`` process run from the serving bundle, or a container of the
    serving image (the controller's ``--runtime``)."""

    def where(self, h: Harness) -> str:
        return h.endpoint("deployer", self.endpoint)

    def build(self, h: Harness):
        from adapters.local.deployer.client import LocalDeployer as Adapter
        from adapters.local.standins import DEPLOYER_TOKEN

        settings = h.settings
        store = settings.ports.object_store
        # Goes to every replica and into the controller's state: never a secret here. Replicas read the
        # version from local files and write samples to object storage with the controller's credentials.
        env = {"MLFLOW_TRACKING_URI": h.endpoint("mlflow", getattr(settings.ports.model_registry, "tracking_uri",
                                                                   None)),
               "MLFLOW_DISABLE_TELEMETRY": "true",
               "LASTMILE_SERVING_SAMPLES_URI": f"s3://{settings.buckets.predictions}/predictions/"}
        access = store.s3_access(h)
        if access is not None and access.endpoint:
            env["LASTMILE_SERVING_S3_ENDPOINT"] = access.endpoint
        return Adapter(h.endpoint("deployer", self.endpoint), h.secret(str(DEPLOYER_TOKEN)), h.artifact_registry,
                       settings.state_dir / "deployer" / "bundles", env, timeout_s=30.0,
                       mlflow_credentials=mlflow_credentials(h), runtime=self.runtime)


@FAMILY.flavor
class DockerDeployer(LocalDeployer):
    """The containers profile's deployer: the same controller and Service (HAProxy), replicas run as containers of
    the serving image on the local Docker engine (``--runtime container``); the image is the one the ``docker``
    image builder built and pushed on that engine, named by digest.

    It belongs to this family, not to ``containers``, because it is this family's controller and client and
    families never import each other (pyproject.toml's import contracts)."""

    flavor: Literal["docker"]  # type: ignore[assignment]
    runtime: ClassVar[Literal["process", "container"]] = "container"


@FAMILY.flavor
class FileSecrets(FlavorConfig):
    """Secrets by name in a JSON file of mode 0600 under the state dir, plus ``env:VAR`` references."""

    port = "secret_store"
    flavor: Literal["file"]
    path: str = "secrets.json"

    def where(self, h: Harness) -> str:
        return str(h.settings.state_dir / self.path)

    def build(self, h: Harness):
        from adapters.local.secrets import FileSecretStore

        return FileSecretStore(h.settings.state_dir / self.path)


@FAMILY.flavor
class JsonlLogs(FlavorConfig):
    port = "log_sink"
    flavor: Literal["jsonl"]
    path: str = "logs/events.jsonl"

    def where(self, h: Harness) -> str:
        return str(h.settings.state_dir / self.path)

    def build(self, h: Harness):
        from adapters.local.logsink import JsonlLogSink

        return JsonlLogSink(h.settings.state_dir / self.path)


@FAMILY.flavor
class GitTrigger(TriggerConfig):
    """What changed in the git repository holding the project (the config file's directory)."""

    flavor: Literal["git"]

    def where(self, h: Harness) -> str:
        return str(h.settings.root)

    def build(self, h: Harness):
        from adapters.local.git_trigger import GitSourceTrigger

        return GitSourceTrigger(h.settings.root, self.branch)


@FAMILY.flavor
class LocalFaults(FlavorConfig):
    """Faults on the local stand-ins: toxics and HTTP rules on the fault proxy in front of each of them (and of
    each replica), signals to their processes, and changes to their data behind the clients' backs."""

    port = "fault_injector"
    flavor: Literal["local"]

    def where(self, h: Harness) -> str:
        return h.endpoints().urls.get("faults", "")

    def build(self, h: Harness):
        from adapters.local.faults import LocalFaultInjector

        return LocalFaultInjector(h)


def process_standins(h: Harness) -> list[StandIn]:
    from adapters.local.standins import standins

    store = h.settings.ports.object_store
    s3_standin = isinstance(store, S3Store) and not store.endpoint
    return standins(h.settings, _LaterSecrets(h), lambda: {**sample_store_environment(h), **front_door_environment(h)},
                    None if s3_standin else lambda: mlflow_artifact_environment(h), s3_standin=s3_standin)


class _LaterSecrets:
    """The profile's secret store, built when a stand-in first needs it: a vault stand-in (oci-local) is up by
    then, not when the list of stand-ins is made."""

    def __init__(self, h: Harness):
        self._h = h

    def resolve(self, ref: SecretRef) -> Secret:
        return self._h.secret_store.resolve(ref)

    def put(self, ref: SecretRef, value: str) -> None:
        self._h.secret_store.put(ref, value)

    def ensure(self, ref: SecretRef, length: int = 24) -> Secret:
        return self._h.secret_store.ensure(ref, length)


def sample_store_environment(h: Harness) -> dict[str, str]:
    """The credentials the replicas' S3 client needs to ship samples to the profile's object store (they reach the
    deployer stand-in's environment, as a Kubernetes Secret would, never a revision's)."""
    access = h.settings.ports.object_store.s3_access(h)
    if access is None or not (access.access_key_id and access.secret_access_key):
        return {}
    return {"AWS_ACCESS_KEY_ID": access.access_key_id.reveal(), "AWS_SECRET_ACCESS_KEY": access.secret_access_key.reveal(),
            "AWS_DEFAULT_REGION": access.region}


def mlflow_artifact_environment(h: Harness) -> dict[str, str]:
    """MLflow's artifact store on the profile's object store, through its S3 API (on oci-local, OCI's S3
    compatibility API, which refuses the checksums boto3 1.36+ sends unless told to send them only when required);
    empty when that store has no S3 API or no key for it."""
    access = h.settings.ports.object_store.s3_access(h)
    credentials = sample_store_environment(h)
    if access is None or not access.endpoint or not credentials:
        return {}
    return {"MLFLOW_S3_ENDPOINT_URL": access.endpoint, **credentials,
            "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required", "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required"}


def front_door_environment(h: Harness) -> dict[str, str]:
    """With the Kubernetes front door on, replicas load their model version from MLflow themselves (a pod's way),
    so they need MLflow's credentials too (the Secret a cluster would mount); without it they read local files."""
    credentials = mlflow_credentials(h) if h.settings.standins.deployer.kube_port else None
    if credentials is None:
        return {}
    return {"MLFLOW_TRACKING_USERNAME": credentials[0], "MLFLOW_TRACKING_PASSWORD": credentials[1].reveal()}


FAMILY.standins["processes"] = process_standins


# shared by the builders ---------------------------------------------------------------------------
def s3_credentials(store: S3Store, h: Harness) -> tuple[Secret | None, Secret | None]:
    access = h.secret(store.access_key_id) if store.access_key_id else None
    secret = h.secret(store.secret_access_key) if store.secret_access_key else None
    return access, secret
