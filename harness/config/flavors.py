"""Flavors: each adapter family declares the flavors it offers, with a typed config and a builder.

A family (``adapters.local``, ``adapters.oci``...) registers itself under the ``lastmile.adapters`` entry
point group (see ``pyproject.toml``); :func:`families` finds them, so the core never names an adapter, not
even as a string. A flavor is one :class:`FlavorConfig` subclass: its ``flavor`` literal is the tag that
``lastmile.yaml`` names, its fields are the flavor's typed settings, and :meth:`FlavorConfig.build` makes
the adapter (importing its SDK only then). Adding a flavor touches its adapter module and one decorated
config class in its family.

The port-role bases (:class:`TriggerConfig`, :class:`JobRunnerConfig`, :class:`DeployerConfig`) hold the
settings the pipeline itself reads, so every flavor of that port carries them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from harness.domain.errors import NotBuilt
from harness.domain.ports import PORTS
from harness.domain.records import Secret, SecretRef

if TYPE_CHECKING:
    from harness.bootstrap import Harness
    from harness.infra.standin import StandIn

ENTRY_POINT_GROUP = "lastmile.adapters"


def _must_be_ref(value: str) -> str:
    SecretRef.parse(value)
    return value


SecretRefStr = Annotated[str, AfterValidator(_must_be_ref)]
"""A config field that holds a secret reference (``secret:NAME``, ``vault:OCID``, ``env:VAR``), never a value."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FlavorConfig(Strict):
    """The typed config of one flavor of one port. Subclasses set ``port`` and a ``flavor`` literal."""

    port: ClassVar[str] = ""
    flavor: str

    def build(self, h: Harness) -> Any:
        """Make the adapter. Flavors whose adapters are not written yet keep this default."""
        raise NotBuilt(f"{self.port}: flavor '{self.flavor}' is typed in config but its adapter is not built "
                       f"in this version of lastmile")

    def where(self, h: Harness) -> str:
        """Where this port's adapter goes (an endpoint, a file); empty for one that runs in this process."""
        return ""

    def s3_access(self, h: Harness) -> S3Access | None:
        """An object store's S3 API, for the processes that reach it with an S3 client of their own (the training
        job, the replicas shipping samples); None when it has none."""
        return None

    @classmethod
    def built(cls) -> bool:
        return cls.build is not FlavorConfig.build


@dataclass(frozen=True)
class S3Access:
    """How an S3 client reaches an object store: endpoint (None: AWS's own), region and credentials."""

    endpoint: str | None
    region: str
    access_key_id: Secret | None
    secret_access_key: Secret | None


class TriggerConfig(FlavorConfig):
    """What every source trigger carries: the path filters that decide the builds (OCI DevOps semantics)."""

    port: ClassVar[str] = "source_trigger"
    branch: str = "main"
    training_paths: tuple[str, ...] = ("training/**",)
    serving_paths: tuple[str, ...] = ("serving/**",)
    exclude: tuple[str, ...] = ("**/*.md",)


class JobRunnerConfig(FlavorConfig):
    port: ClassVar[str] = "job_runner"
    timeout_s: float = Field(600.0, gt=0)


class DeployerConfig(FlavorConfig):
    """The rollout every deployer performs; the harness's rollout policy enforces ``ready_deadline_s``."""

    port: ClassVar[str] = "deployer"
    replicas: int = Field(2, ge=1, le=16)
    max_surge: int = Field(1, ge=0)
    max_unavailable: int = Field(0, ge=0)
    ready_deadline_s: float = Field(60.0, gt=0)
    keeps_model_copies: ClassVar[bool] = False
    """The deployer downloads a version once and hands every replica that copy (else each replica fetches the
    version from the registry when it starts, as pods do on Kubernetes)."""
    warm_standby: ClassVar[bool] = False
    """The deployer keeps a warm standby replica to replace a dead one (a Kubernetes Deployment keeps none: the
    kubelet restarts a dead container in place) and reports it in ``DeploymentStatus.standby``."""


StandInsBuilder = Callable[["Harness"], "list[StandIn]"]


@dataclass(eq=False)
class Family:
    """One adapter family: its flavors, the stand-in modes it can start, and what ``doctor`` checks for it."""

    name: str
    configs: list[type[FlavorConfig]] = field(default_factory=list)
    standins: dict[str, StandInsBuilder] = field(default_factory=dict)
    doctor: Callable[[Any], list[str]] | None = None
    """What stops a profile's ports of this family from working, checked without sending a request (the
    argument is the profile's ``ports``); ``lastmile doctor`` prints it."""
    drill_activities: tuple[str, ...] = ()
    """Modules of this family that register drill activities (probes and actions for its own services)."""

    def flavor(self, cls: type[FlavorConfig]) -> type[FlavorConfig]:
        """Class decorator: register a flavor config of this family."""
        if cls.port not in PORTS:
            raise TypeError(f"{cls.__name__}: port {cls.port!r} is not one of {', '.join(PORTS)}")
        self.configs.append(cls)
        return cls


@functools.cache
def families() -> tuple[Family, ...]:
    """Every installed adapter family, by entry point, in name order."""
    found = [ep.load() for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)]
    if not found:
        raise RuntimeError(f"no adapter family is installed (entry point group {ENTRY_POINT_GROUP}); "
                           "reinstall lastmile with `make deps`")
    return tuple(found)


def flavor_configs(port: str, among: tuple[Family, ...] | None = None) -> list[type[FlavorConfig]]:
    return [c for f in (among or families()) for c in f.configs if c.port == port]


def flavor_tag(cls: type[FlavorConfig]) -> str:
    return cls.model_fields["flavor"].annotation.__args__[0]  # type: ignore[union-attr]


class PortsConfig(Strict):
    """The flavor config of every port; the schema that validates it is :func:`ports_model`."""

    object_store: FlavorConfig
    artifact_registry: FlavorConfig
    image_builder: FlavorConfig
    job_runner: JobRunnerConfig
    model_registry: FlavorConfig
    deployer: DeployerConfig
    secret_store: FlavorConfig
    log_sink: FlavorConfig
    source_trigger: TriggerConfig
    fault_injector: FlavorConfig


@functools.cache
def ports_model(among: tuple[Family, ...] | None = None) -> type[PortsConfig]:
    """A :class:`PortsConfig` whose fields accept exactly the registered flavors, chosen by ``flavor``."""
    fields: dict[str, Any] = {}
    for port in PORTS:
        configs = flavor_configs(port, among)
        if not configs:
            raise RuntimeError(f"no installed adapter family offers a flavor of {port}")
        fields[port] = (Annotated[Union[tuple(configs)], Field(discriminator="flavor")], ...)
    return create_model("Ports", __base__=PortsConfig, **fields)


# stand-ins ----------------------------------------------------------------------------------------
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
    kube_port: int | None = Field(None, ge=1, le=65535, description="its Kubernetes API front door (the oke "
                                                                    "deployer on the stand-in); empty = off")


class FaultProxyStandIn(Strict):
    """The fault proxy in front of every stand-in: drills put toxics and HTTP faults on real traffic through it.
    Off, clients talk to the stand-ins directly (one hop less) and network and HTTP faults are unavailable."""

    enabled: bool = True
    port: int = Field(8474, ge=1, le=65535, description="its Toxiproxy-compatible API")


class OciApiStandIn(Strict):
    port: int = Field(8180, ge=1, le=65535, description="the OCI API stand-in (the oci-local profile)")


class StandInImages(Strict):
    """The images of the stand-ins that run as containers (``standins.mode: containers``), built from
    ``compose/images/<name>/`` by ``scripts/build-images.sh``; any image that runs the same server the same way
    (``python -m moto.server``, ``python -m mlflow server``, ``docker-registry serve``) will do."""

    object_store: str = Field("lastmile-objectstore:dev", min_length=1, description="moto's S3 server")
    mlflow: str = Field("lastmile-mlflow:dev", min_length=1, description="MLflow's server with its basic-auth app")
    registry: str = Field("lastmile-registry:dev", min_length=1, description="the Distribution registry")


class StandIns(Strict):
    """What ``lastmile up`` starts: ``processes`` on loopback, ``containers``, or ``none`` (real services)."""

    mode: Literal["processes", "containers", "none"] = "processes"
    images: StandInImages = StandInImages()
    faults: FaultProxyStandIn = FaultProxyStandIn()
    object_store: ObjectStoreStandIn = ObjectStoreStandIn()
    registry: RegistryStandIn = RegistryStandIn()
    mlflow: MlflowStandIn = MlflowStandIn()
    deployer: DeployerStandIn = DeployerStandIn()
    oci: OciApiStandIn = OciApiStandIn()
