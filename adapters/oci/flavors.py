"""The oci family's flavors, typed so that `lastmile.yaml` can name them and `lastmile doctor` can judge them.

Built: object storage (``oci``), OCIR (``ocir``), Vault secrets (``vault``), OCI Logging (``oci-logging``), Data
Science job runs (``datascience``), DevOps build runs (``devops``) and OKE (``oke``); each builder imports its
adapter and the ``oci`` SDK only then. Every flavor takes an ``endpoint``: empty means
the region's real service endpoint, a URL points the same profile at a stand-in. Registered under the
``lastmile.adapters`` entry point as ``oci``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, ValidationInfo, field_validator

from harness.config.flavors import (
    DeployerConfig,
    Family,
    FlavorConfig,
    JobRunnerConfig,
    S3Access,
    SecretRefStr,
    Strict,
    TriggerConfig,
)

if TYPE_CHECKING:
    from harness.bootstrap import Harness
    from harness.infra.standin import StandIn

FAMILY = Family("oci", drill_activities=("adapters.oci.drills",))

ENDPOINT = Field(None, description="service endpoint override; empty = the region's real endpoint")


class OciAuth(Strict):
    """How the SDK signs (see :mod:`adapters.oci.auth`): ``api_key`` (a config file profile with a key file),
    ``session_token`` (a profile from ``oci session authenticate``), ``instance_principal`` or
    ``resource_principal``. ``config_file`` and ``profile`` matter for the first two; ``region``, when set, wins
    over the profile's or the principal's."""

    method: Literal["api_key", "session_token", "instance_principal", "resource_principal"] = "api_key"
    config_file: str = "~/.oci/config"
    profile: str = "DEFAULT"
    region: str = ""


STANDIN = "standin"
"""An ``endpoint`` value: the OCI API stand-in that ``lastmile up`` starts (the ``oci-local`` profile); for OCIR,
the registry stand-in."""


def _service(endpoint: str | None, h: Harness, route: str = "oci") -> str | None:
    """The endpoint a client uses: the stand-in's when ``endpoint`` says so, else the override (or None: the
    region's real endpoint)."""
    return h.endpoint(route, None) if endpoint == STANDIN else endpoint


def _auth(auth: OciAuth, h: Harness) -> OciAuth:
    """``{state_dir}`` in the config file's path is the profile's state dir (where the stand-in writes its key)."""
    if "{state_dir}" not in auth.config_file:
        return auth
    return auth.model_copy(update={"config_file": auth.config_file.replace("{state_dir}", str(h.settings.state_dir))})


def _region_url(template: str, region: str) -> str:
    return template.format(region=region or "<region>")


@FAMILY.flavor
class OciObjectStore(FlavorConfig):
    """OCI Object Storage's native API; objects over ``multipart_threshold_mib`` go up in parts."""

    port = "object_store"
    flavor: Literal["oci"]
    namespace: str = Field("", description="the tenancy's Object Storage namespace; empty = ask the service")
    region: str
    compartment_id: str
    auth: OciAuth = OciAuth()
    endpoint: str | None = ENDPOINT
    multipart_threshold_mib: int = Field(64, ge=1)
    part_size_mib: int = Field(16, ge=1)

    s3_endpoint: str | None = Field(None, description="the S3 compatibility API (what the training job reads with); "
                                                      "empty = https://<namespace>.compat.objectstorage.<region>"
                                                      ".oraclecloud.com, standin = the stand-in's")
    s3_access_key_id: SecretRefStr | None = Field(None, description="a customer secret key's access key id")
    s3_secret_key: SecretRefStr | None = Field(None, description="that customer secret key's secret")

    def where(self, h: Harness) -> str:
        return _service(self.endpoint, h) or _region_url("https://objectstorage.{region}.oraclecloud.com", self.region)

    def s3_access(self, h: Harness) -> S3Access:
        """OCI's S3 compatibility API on the same buckets, signed with a customer secret key (SigV4)."""
        if self.s3_endpoint == STANDIN:
            endpoint = h.endpoint("oci", None) + "/s3"
        else:
            endpoint = self.s3_endpoint or f"https://{self.namespace or '<namespace>'}.compat.objectstorage." \
                                           f"{self.region}.oraclecloud.com"
        access = h.secret(self.s3_access_key_id) if self.s3_access_key_id else None
        secret = h.secret(self.s3_secret_key) if self.s3_secret_key else None
        return S3Access(endpoint, self.region, access, secret)

    def build(self, h: Harness):
        return self.open_at(h, _service(self.endpoint, h))

    def open_at(self, h: Harness, endpoint: str | None):
        """The adapter on ``endpoint`` (None: the region's), e.g. a stand-in's own address during its setup."""
        from adapters.oci.auth import credentials
        from adapters.oci.objectstore import MIB, open_store

        return open_store(credentials(_auth(self.auth, h), self.region), endpoint, self.namespace, self.compartment_id,
                          self.multipart_threshold_mib * MIB, self.part_size_mib * MIB)


@FAMILY.flavor
class Ocir(FlavorConfig):
    """OCI Container Registry, logged in as ``<namespace>/<username>`` with an auth token from the secret store.
    Repositories live under the namespace: ``repository_prefix`` gets it in front when it does not start with it
    (``lastmile`` becomes ``<namespace>/lastmile``), so every ref pushed is a full, pullable OCIR path."""

    port = "artifact_registry"
    flavor: Literal["ocir"]
    region: str
    namespace: str
    username: str
    auth_token: SecretRefStr
    repository_prefix: str = "lastmile"
    endpoint: str | None = Field(None, description="registry URL override; empty = https://<region-key>.ocir.io")

    @field_validator("repository_prefix")
    @classmethod
    def _under_the_namespace(cls, prefix: str, info: ValidationInfo) -> str:
        namespace, prefix = info.data.get("namespace", ""), prefix.strip("/")
        return prefix if not namespace or prefix.startswith(namespace + "/") else f"{namespace}/{prefix}"

    def where(self, h: Harness) -> str:
        from adapters.oci.ocir import ocir_host

        return _service(self.endpoint, h, "registry") or f"https://{ocir_host(self.region)}"

    def build(self, h: Harness):
        from adapters.oci.ocir import open_registry

        return open_registry(self.region, self.namespace, self.username, h.secret(self.auth_token),
                             self.auth_token, _service(self.endpoint, h, "registry"))


@FAMILY.flavor
class DevOpsBuilder(FlavorConfig):
    """Stage 2 on OCI DevOps: a build run of the build pipeline (``build_spec.yaml``) per deployable, for the
    commit the context is at, pushing to the profile's OCIR registry (``artifact_registry`` must be ``ocir``);
    a tree the registry already holds is not built again. Build logs are read back from the Logging log the
    pipeline writes to (``log_id`` with its group and compartment). With ``endpoint: standin`` the pipeline is
    registered in the OCI API stand-in at ``lastmile up``, over this repository and the registry stand-in."""

    port = "image_builder"
    flavor: Literal["devops"]
    build_pipeline_id: str
    project_id: str = ""
    compartment_id: str = ""
    repository_url: str = Field("", description="the GitHub repository the pipeline builds (commitInfo)")
    branch: str = "main"
    log_id: str = ""
    log_group_id: str = ""
    timeout_s: float = Field(1800.0, gt=0, description="how long a build run may take before it is canceled")
    region: str = ""
    auth: OciAuth = OciAuth()
    endpoint: str | None = ENDPOINT
    search_endpoint: str | None = Field(None, description="Logging Search endpoint; empty = the region's")

    def where(self, h: Harness) -> str:
        return _service(self.endpoint, h) or _region_url("https://devops.{region}.oci.oraclecloud.com",
                                                         self.region or self.auth.region)

    def build(self, h: Harness):
        """The builder; the registry's URL and OCIR login go with every run as build run arguments (the
        pipeline's ``OCIR_REGISTRY`` and ``OCIR_USERNAME`` parameters), so runs push where lastmile reads."""
        from adapters.oci.auth import credentials
        from adapters.oci.devops import open_builder
        from adapters.oci.ocir import ocir_login

        registry_config, registry = h.settings.ports.artifact_registry, h.artifact_registry
        arguments = {"OCIR_REGISTRY": str(getattr(registry, "endpoint", ""))}
        if isinstance(registry_config, Ocir):
            arguments["OCIR_USERNAME"] = ocir_login(registry_config.namespace, registry_config.username)
        log_path = "/".join((self.compartment_id, self.log_group_id, self.log_id)) if self.log_id else ""
        return open_builder(credentials(_auth(self.auth, h), self.region), _service(self.endpoint, h),
                            self.build_pipeline_id, registry, getattr(registry_config, "repository_prefix", "lastmile"),
                            log_path=log_path,
                            search_endpoint=_service(self.search_endpoint, h) or _service(self.endpoint, h),
                            repository_url=self.repository_url, branch=self.branch, timeout_s=self.timeout_s,
                            arguments=arguments)

    def register_in_standin(self, state: Path, h: Harness) -> None:
        """The build pipeline in the OCI API stand-in (``lastmile up``): builds of this repository's commits,
        logged in ``log_id``."""
        from adapters.oci.standin.devops_store import register_pipeline

        register_pipeline(state, self.build_pipeline_id, self.project_id or self.build_pipeline_id + ".project",
                          self.compartment_id, h.settings.root, self.repository_url, self.log_id or None)


@FAMILY.flavor
class DataScienceJobs(JobRunnerConfig):
    """OCI Data Science bring-your-own-container job runs (:mod:`adapters.oci.jobs`): one job per training build
    (its OCIR image by digest), a job run per training, logging to ``log_id`` of ``log_group_id``, read back with
    Logging Search (``search_endpoint``). Runs get the profile's MLflow and object storage endpoints and
    credentials as environment variables, as local jobs do. ``subnet_id`` puts the runs in that subnet
    (STANDALONE); empty uses Data Science's managed egress (ME_STANDALONE)."""

    flavor: Literal["datascience"]
    compartment_id: str
    project_id: str
    log_group_id: str
    log_id: str
    shape: str = "VM.Standard.E4.Flex"
    ocpus: float = Field(1.0, gt=0, description="for a Flex shape")
    memory_gb: float = Field(16.0, gt=0, description="for a Flex shape")
    subnet_id: str | None = None
    region: str = ""
    poll_s: float = Field(2.0, gt=0, description="the first pause between two GetJobRun; it grows to max_poll_s")
    max_poll_s: float = Field(15.0, gt=0)
    auth: OciAuth = OciAuth()
    endpoint: str | None = ENDPOINT
    search_endpoint: str | None = Field(None, description="Logging Search endpoint; empty = `endpoint` when set, "
                                                          "else the region's")

    def where(self, h: Harness) -> str:
        return _service(self.endpoint, h) or _region_url("https://datascience.{region}.oci.oraclecloud.com",
                                            self.region or self.auth.region)

    def build(self, h: Harness):
        """The job environment (endpoints and credentials) goes to each run's environment variables, never to
        the :class:`~harness.domain.records.JobSpec`, which is journaled."""
        from adapters.oci.auth import credentials
        from adapters.oci.jobs import open_runner
        from adapters.shared.jobenv import job_environment

        search = _service(self.search_endpoint, h) or _service(self.endpoint, h)
        return open_runner(credentials(_auth(self.auth, h), self.region), _service(self.endpoint, h), search,
                           compartment_id=self.compartment_id, project_id=self.project_id,
                           log_group_id=self.log_group_id, log_id=self.log_id, shape=self.shape, ocpus=self.ocpus,
                           memory_gb=self.memory_gb, subnet_id=self.subnet_id, env=job_environment(h),
                           poll_s=self.poll_s, max_poll_s=self.max_poll_s)


@FAMILY.flavor
class OkeDeployer(DeployerConfig):
    """A Deployment and a LoadBalancer Service on an OKE cluster, through its Kubernetes API (``adapters.oci.oke``).

    The kubeconfig comes from Container Engine's CreateKubeconfig (``endpoint``: empty = the region's, ``standin`` =
    the OCI API stand-in), the bearer token from the SDK's signer; no ``oci`` CLI. On ``standin`` the stand-in's
    cluster ``cluster_id`` has its API server at ``standin_api_server``, by default the deployer stand-in's Kubernetes
    front door (``standins.deployer.kube_port``)."""

    flavor: Literal["oke"]
    cluster_id: str
    region: str = ""
    namespace: str = "lastmile"
    auth: OciAuth = OciAuth()
    endpoint: str | None = Field(None, description="Container Engine endpoint; empty = the region's, standin = the "
                                                   "OCI API stand-in's")
    standin_api_server: str | None = Field(None, description="with endpoint standin: the Kubernetes API server "
                                                             "the stand-in's kubeconfig names; empty = the "
                                                             "deployer stand-in's front door (its kube_port)")
    progress_deadline_s: int = Field(300, ge=1)
    cpu_request: str = "250m"
    memory_request: str = "512Mi"
    cpu_limit: str = "1"
    memory_limit: str = "1Gi"
    secret_env_from: str | None = Field(None, description="a Kubernetes Secret of the namespace whose keys become "
                                                          "the replicas' environment (object storage credentials)")
    image_pull_secret: str | None = Field(None, description="a Kubernetes Secret of type dockerconfigjson for OCIR")
    lb_shape_min_mbps: int = Field(10, ge=10, le=8000)
    lb_shape_max_mbps: int = Field(100, ge=10, le=8000)
    lb_security_list_management: Literal["All", "Frontend", "None"] = "None"
    lb_internal: bool = False

    def where(self, h: Harness) -> str:
        return _service(self.endpoint, h) or _region_url("https://containerengine.{region}.oraclecloud.com",
                                                         self.region or self.auth.region)

    def build(self, h: Harness):
        from adapters.oci.auth import credentials
        from adapters.oci.k8s.manifests import ManifestSettings
        from adapters.oci.k8s.node import bundle_stager
        from adapters.oci.oke import open_deployer

        settings = h.settings
        env = {"MLFLOW_TRACKING_URI": h.endpoint("mlflow", getattr(settings.ports.model_registry, "tracking_uri",
                                                                   None)),
               "MLFLOW_DISABLE_TELEMETRY": "true",
               "LASTMILE_SERVING_SAMPLES_URI": f"s3://{settings.buckets.predictions}/predictions/"}
        access = settings.ports.object_store.s3_access(h)  # samples go up through the S3 compatibility API
        if access is not None and access.endpoint:
            env["LASTMILE_SERVING_S3_ENDPOINT"] = access.endpoint
        manifest = ManifestSettings(
            namespace=self.namespace, max_surge=self.max_surge, max_unavailable=self.max_unavailable,
            progress_deadline_s=self.progress_deadline_s, cpu_request=self.cpu_request,
            memory_request=self.memory_request, cpu_limit=self.cpu_limit, memory_limit=self.memory_limit, env=env,
            secret_env_from=self.secret_env_from, image_pull_secret=self.image_pull_secret,
            lb_shape_min_mbps=self.lb_shape_min_mbps, lb_shape_max_mbps=self.lb_shape_max_mbps,
            lb_security_list_management=self.lb_security_list_management, lb_internal=self.lb_internal)
        # On the stand-in the "node" is this machine: the deployer pulls the image (bundle) where the front door
        # looks for it. A cluster's nodes pull from OCIR themselves.
        stage = bundle_stager(h.artifact_registry, settings.state_dir / "deployer" / "bundles") \
            if self.endpoint == STANDIN else None
        return open_deployer(credentials(_auth(self.auth, h), self.region), _service(self.endpoint, h),
                             self.cluster_id, manifest, self.replicas, stage)


@FAMILY.flavor
class VaultSecrets(FlavorConfig):
    """Secrets in an OCI Vault, read by name (``vault:NAME``, ``secret:NAME``) or OCID (``vault:OCID``) and
    cached for ``cache_ttl_s``. They are managed in the tenancy (Terraform); with ``key_id`` lastmile may create
    the ones its stand-ins generate (the oci-local profile), without it a missing one is an error naming it."""

    port = "secret_store"
    flavor: Literal["vault"]
    vault_id: str
    compartment_id: str
    cache_ttl_s: float = Field(60.0, ge=0)
    key_id: str | None = Field(None, description="the vault's master encryption key: lets lastmile create and "
                                                 "rotate secrets (the stand-ins' credentials); empty = read only")
    region: str = ""
    auth: OciAuth = OciAuth()
    endpoint: str | None = Field(None, description="Secrets retrieval endpoint override; empty = the region's")
    management_endpoint: str | None = Field(None, description="Vault management endpoint override; empty = the "
                                                              "region's")

    def where(self, h: Harness) -> str:
        return _service(self.endpoint, h) or _region_url("https://secrets.vaults.{region}.oci.oraclecloud.com",
                                            self.region or self.auth.region)

    def build(self, h: Harness):
        from adapters.oci.auth import credentials
        from adapters.oci.vault import open_store

        return open_store(credentials(_auth(self.auth, h), self.region), _service(self.endpoint, h), self.vault_id,
                          self.cache_ttl_s, _service(self.management_endpoint, h), self.compartment_id, self.key_id)


@FAMILY.flavor
class OciLogging(FlavorConfig):
    """A custom log of OCI Logging: events sent with PutLogs in batches, read back with Logging Search (which
    needs ``log_group_id`` and ``compartment_id`` too)."""

    port = "log_sink"
    flavor: Literal["oci-logging"]
    log_id: str
    log_group_id: str = ""
    compartment_id: str = ""
    source: str = "lastmile"
    batch_size: int = Field(20, ge=1, le=1000)
    max_delay_s: float = Field(5.0, ge=0)
    search_window_days: float = Field(14.0, gt=0)
    region: str = ""
    auth: OciAuth = OciAuth()
    endpoint: str | None = Field(None, description="Logging Ingestion endpoint override; empty = the region's")
    search_endpoint: str | None = Field(None, description="Logging Search endpoint; empty = `endpoint`, else the "
                                                          "region's")

    def where(self, h: Harness) -> str:
        return _service(self.endpoint, h) or _region_url("https://ingestion.logging.{region}.oci.oraclecloud.com",
                                            self.region or self.auth.region)

    def build(self, h: Harness):
        import datetime as dt

        from adapters.oci.auth import credentials
        from adapters.oci.logsink import open_sink

        return open_sink(credentials(_auth(self.auth, h), self.region), _service(self.endpoint, h), self.log_id,
                         search_endpoint=_service(self.search_endpoint, h), log_group_id=self.log_group_id,
                         compartment_id=self.compartment_id, source=self.source, batch_size=self.batch_size,
                         max_delay_s=self.max_delay_s, search_window=dt.timedelta(days=self.search_window_days))


@FAMILY.flavor
class DevOpsTrigger(TriggerConfig):
    """Stage 1 on OCI: a GitHub push to ``branch`` reaches the DevOps triggers of ``project_id`` (one per
    deployable, filtered by ``training_paths`` / ``serving_paths`` and ``exclude``, as the local trigger filters),
    signed with the webhook secret ``webhook_secret``; a matching push starts a build run of the pipeline in OCI,
    not in lastmile. Typed for the oci profile's config; lastmile's own stage 1 on it is not built yet."""

    flavor: Literal["devops"]
    project_id: str
    build_pipeline_id: str = ""
    training_trigger_id: str = ""
    serving_trigger_id: str = ""
    webhook_secret: SecretRefStr | None = Field(None, description="the GitHub webhook's shared secret")
    auth: OciAuth = OciAuth()
    endpoint: str | None = ENDPOINT


def _doctor(ports) -> list[str]:
    """The auth of every port on an OCI flavor, checked offline (config file, key, fingerprint, principals)."""
    from adapters.oci.auth import settings_problems

    return settings_problems((port, config) for port, config in ports if type(config) in FAMILY.configs
                             and getattr(config, "endpoint", None) != STANDIN)  # the stand-in's key comes at `up`


FAMILY.doctor = _doctor


def _standins(h: Harness) -> list[StandIn]:
    """The OCI API stand-in when a port of the profile points at it (see :mod:`adapters.oci.standins`)."""
    from adapters.oci.standins import oci_standins

    return oci_standins(h)


FAMILY.standins["processes"] = _standins
