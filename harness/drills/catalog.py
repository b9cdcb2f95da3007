"""The registry of the activities lastmile offers to drills: every probe and action, by name.

A drill names an activity as a Chaos Toolkit python provider (``module`` and ``func``); registering it here
with :func:`probe` or :func:`action` is what makes it part of lastmile's extension: ``lastmile drill activities``
lists it, and a unit test checks that each one takes ``configuration`` and returns JSON. A later module (load
during a drill, the slowest replica, drift) adds its activities the same way: decorate the function, and add
the module to :data:`MODULES` so the catalog imports it.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

MODULES: tuple[str, ...] = ("harness.drills.actions", "harness.drills.probes", "harness.drills.serving_activities",
                             "harness.drills.pipeline_activities")
"""The modules that register activities; :func:`activities` imports them."""


@dataclass(frozen=True)
class Activity:
    """One probe or action: what a drill writes in its provider block, and what it does."""

    type: str  # probe | action
    module: str
    func: str
    signature: str
    doc: str

    def provider(self, **arguments: Any) -> dict[str, Any]:
        """The Chaos Toolkit provider block that calls this activity with ``arguments``."""
        block: dict[str, Any] = {"type": "python", "module": self.module, "func": self.func}
        if arguments:
            block["arguments"] = arguments
        return block


REGISTRY: dict[str, Activity] = {}
"""Every registered activity by function name (names are unique across modules)."""


def _register(kind: str) -> Callable[[F], F]:
    def register(func: F) -> F:
        name = func.__name__
        if name in REGISTRY and REGISTRY[name].module != func.__module__:
            raise ValueError(f"activity {name!r} is registered twice ({REGISTRY[name].module}, {func.__module__})")
        parameters = [p.name if p.default is inspect.Parameter.empty else f"{p.name}={p.default!r}"
                      for p in inspect.signature(func).parameters.values() if p.name != "configuration"]
        signature = f"{name}({', '.join(parameters)})"
        doc = inspect.getdoc(func) or ""
        REGISTRY[name] = Activity(kind, func.__module__, name, signature, doc)
        return func
    return register


probe = _register("probe")
"""Decorator: register a probe (reads the system, changes nothing)."""
action = _register("action")
"""Decorator: register an action (changes the system: a fault, a pipeline run, an alias move)."""


def activities() -> dict[str, Activity]:
    """Every activity of lastmile's extension, importing the modules that register them: the core's, then those
    each adapter family declares (``Family.drill_activities``)."""
    from harness.config.flavors import families

    for module in (*MODULES, *(m for family in families() for m in family.drill_activities)):
        importlib.import_module(module)
    return dict(sorted(REGISTRY.items(), key=lambda item: (item[1].type, item[0])))
