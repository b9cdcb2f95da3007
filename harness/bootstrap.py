"""The composition root: builds a :class:`Harness` (the ports of one profile) from its settings.

Each port is built on first use by its flavor config's ``build`` (see :mod:`harness.config.flavors`), which
imports the adapter only then, so the ``oci`` or ``docker`` packages load only for profiles that name them.
The adapter families come from entry points: this module names none. Tests pass fakes explicitly with
:class:`Given`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from harness.config.flavors import families
from harness.config.settings import Settings
from harness.domain.errors import UserError
from harness.domain.ports import (
    ArtifactRegistry,
    Deployer,
    FaultInjector,
    ImageBuilder,
    JobRunner,
    LogSink,
    ModelRegistry,
    ObjectStore,
    SecretStore,
    SourceTrigger,
)
from harness.domain.records import Secret, SecretRef
from harness.infra.standin import Endpoints, StandIn
from harness.infra.supervisor import Supervisor


@dataclass(frozen=True)
class Given:
    """Ports handed in rather than built from config: how tests pass fakes (the rest are still built)."""

    object_store: ObjectStore | None = None
    artifact_registry: ArtifactRegistry | None = None
    image_builder: ImageBuilder | None = None
    job_runner: JobRunner | None = None
    model_registry: ModelRegistry | None = None
    deployer: Deployer | None = None
    secret_store: SecretStore | None = None
    log_sink: LogSink | None = None
    source_trigger: SourceTrigger | None = None
    fault_injector: FaultInjector | None = None




class Harness:
    """The ports of one profile, each built once on first use, plus endpoint and secret lookup."""

    def __init__(self, settings: Settings, given: Given = Given()):
        self.settings = settings
        self.supervisor = Supervisor(settings.state_dir)
        self._given = given

    @cached_property
    def object_store(self) -> ObjectStore:
        return self._port("object_store", ObjectStore)

    @cached_property
    def artifact_registry(self) -> ArtifactRegistry:
        return self._port("artifact_registry", ArtifactRegistry)

    @cached_property
    def image_builder(self) -> ImageBuilder:
        return self._port("image_builder", ImageBuilder)

    @cached_property
    def job_runner(self) -> JobRunner:
        return self._port("job_runner", JobRunner)

    @cached_property
    def model_registry(self) -> ModelRegistry:
        return self._port("model_registry", ModelRegistry)

    @cached_property
    def deployer(self) -> Deployer:
        return self._port("deployer", Deployer)

    @cached_property
    def secret_store(self) -> SecretStore:
        return self._port("secret_store", SecretStore)

    @cached_property
    def log_sink(self) -> LogSink:
        return self._port("log_sink", LogSink)

    @cached_property
    def source_trigger(self) -> SourceTrigger:
        return self._port("source_trigger", SourceTrigger)

    @cached_property
    def fault_injector(self) -> FaultInjector:
        return self._port("fault_injector", FaultInjector)

    def _port(self, name: str, role: Any) -> Any:
        given = getattr(self._given, name)
        if given is not None:
            return given
        adapter: Any = getattr(self.settings.ports, name).build(self)
        if not isinstance(adapter, role):
            raise TypeError(f"{name}: the {type(adapter).__name__} built for flavor "
                            f"'{getattr(self.settings.ports, name).flavor}' is not a {role.__name__}")
        return adapter

    def endpoint(self, standin: str, configured: str | None) -> str:
        """Where a client should connect: the configured URL, else the running stand-in's.

        This is the one place endpoints are looked up, so a drill can put a fault proxy in between."""
        if configured:
            return configured
        url = self.supervisor.endpoints().urls.get(standin)
        if url is None:
            raise UserError(f"no {standin} endpoint: the stand-ins are not up", hint="run `lastmile up`")
        return url

    def secret(self, ref: str) -> Secret:
        return self.secret_store.resolve(SecretRef.parse(ref))

    def standins(self) -> list[StandIn]:
        mode = self.settings.standins.mode
        if mode == "none":
            return []
        offered = [family.standins[mode] for family in families() if mode in family.standins]
        if offered:  # each family adds what this profile needs of it; waves order their start
            return [standin for build in offered for standin in build(self)]
        raise UserError(f"profile '{self.settings.profile}': stand-ins in {mode} are not built in this version",
                        hint="use the local profile")

    def endpoints(self) -> Endpoints:
        return self.supervisor.endpoints()


def build(settings: Settings, given: Given = Given()) -> Harness:
    """The bootstrap. Nothing is imported or connected until a port is used."""
    return Harness(settings, given)
