"""The one bootstrap: builds a :class:`Harness` from a profile.

Each ``(port, flavor)`` maps to a factory that imports its adapter only when first used, so the
``oci`` or ``docker`` packages load only for profiles that name them. Config names flavors,
never import paths; the import paths live here.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from harness.config import Settings
from harness.errors import UserError
from harness.records import SecretRef
from harness.standin import Endpoints, StandIn
from harness.supervisor import Supervisor

Factory = Callable[[Any, "Harness"], Any]


def _lazy(target: str) -> Factory:
    module, _, name = target.partition(":")

    def factory(cfg: Any, harness: "Harness") -> Any:
        return getattr(importlib.import_module(module), name)(cfg, harness)

    return factory


FACTORIES: dict[tuple[str, str], Factory] = {
    ("object_store", "s3"): _lazy("adapters.local.factories:s3_object_store"),
    ("artifact_registry", "distribution"): _lazy("adapters.local.factories:distribution_registry"),
    ("model_registry", "mlflow"): _lazy("adapters.local.factories:mlflow_registry"),
    ("secret_store", "file"): _lazy("adapters.local.factories:file_secret_store"),
    ("log_sink", "jsonl"): _lazy("adapters.local.factories:jsonl_log_sink"),
    ("source_trigger", "git"): _lazy("adapters.local.trigger_factory:git_source_trigger"),
    ("image_builder", "bundle"): _lazy("adapters.local.build_factory:bundle_image_builder"),
    ("job_runner", "subprocess"): _lazy("adapters.local.jobs_factory:subprocess_job_runner"),
    ("deployer", "local"): _lazy("adapters.local.factories:local_deployer"),
}
"""What this build can wire. A flavor that config accepts but is missing here is not built yet."""

STANDINS: dict[str, Callable[["Harness"], list[StandIn]]] = {
    "processes": lambda h: _lazy("adapters.local.factories:process_standins")(None, h),
}


class Harness:
    """The ports of one profile, built on first use. ``h.object_store``, ``h.model_registry``, ..."""

    def __init__(self, settings: Settings, factories: dict[tuple[str, str], Factory] | None = None):
        self.settings = settings
        self.supervisor = Supervisor(settings.state_dir)
        self._factories = FACTORIES if factories is None else factories
        self._built: dict[str, Any] = {}

    def port(self, name: str) -> Any:
        if name not in self._built:
            cfg = getattr(self.settings.ports, name)
            factory = self._factories.get((name, cfg.flavor))
            if factory is None:
                raise UserError(f"{name}: flavor '{cfg.flavor}' of profile '{self.settings.profile}' is not built "
                                f"in this version of lastmile", hint="use the local profile")
            self._built[name] = factory(cfg, self)
        return self._built[name]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in type(self.settings.ports).model_fields:
            raise AttributeError(name)
        return self.port(name)

    def endpoint(self, standin: str, configured: str | None) -> str:
        """Where a client should connect: the configured URL, else the running stand-in's.

        This is the one place endpoints are looked up, so a drill can put a fault proxy in between."""
        if configured:
            return configured
        url = self.supervisor.endpoints().urls.get(standin)
        if url is None:
            raise UserError(f"no {standin} endpoint: the stand-ins are not up", hint="run `lastmile up`")
        return url

    def secret(self, ref: str):
        scheme, _, name = ref.partition(":")
        return self.port("secret_store").resolve(SecretRef(scheme, name))

    def standins(self) -> list[StandIn]:
        mode = self.settings.standins.mode
        if mode == "none":
            return []
        if mode not in STANDINS:
            raise UserError(f"profile '{self.settings.profile}': stand-ins in {mode} are not built in this version",
                            hint="use the local profile")
        return STANDINS[mode](self)

    def endpoints(self) -> Endpoints:
        return self.supervisor.endpoints()


def build(settings: Settings) -> Harness:
    """The bootstrap. Nothing is imported or connected until a port is used."""
    return Harness(settings)
