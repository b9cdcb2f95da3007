"""Flavors that need no adapter, registered by the core itself under the ``lastmile.adapters`` entry point."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from harness.config.flavors import Family, FlavorConfig

if TYPE_CHECKING:
    from harness.bootstrap import Harness

FAMILY = Family("core")


@FAMILY.flavor
class NoFaults(FlavorConfig):
    """For profiles that reach real services: every fault is refused, in one line."""

    port = "fault_injector"
    flavor: Literal["none"]

    def build(self, h: Harness):
        from harness.domain.faults import RefusingFaultInjector

        return RefusingFaultInjector(h.settings.profile)
