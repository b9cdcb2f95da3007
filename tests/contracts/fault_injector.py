"""The FaultInjector contract: faults are listed while active, reverted once, and say whether they met anything."""

from __future__ import annotations

import pytest

from harness.domain.errors import NotFound, UserError
from harness.domain.records import FaultSpec


class FaultInjectorContract:
    """Fixtures: ``injector``; ``harmless_fault`` (a FaultSpec that is safe to inject, with no traffic);
    ``make_it_meet(handle)``, which sends traffic or otherwise makes the fault meet something."""

    def test_an_injected_fault_is_active_until_reverted(self, injector, harmless_fault):
        handle = injector.inject(harmless_fault)
        assert handle.id in [f.id for f in injector.active()]
        assert handle.spec == harmless_fault
        injector.revert(handle.id)
        assert handle.id not in [f.id for f in injector.active()]

    def test_a_fault_nothing_met_says_so(self, injector, harmless_fault):
        handle = injector.inject(harmless_fault)
        try:
            assert not injector.evidence(handle.id).took_effect
        finally:
            assert not injector.revert(handle.id).took_effect

    def test_a_fault_that_met_something_says_what(self, injector, harmless_fault, make_it_meet):
        handle = injector.inject(harmless_fault)
        try:
            make_it_meet(handle)
            evidence = injector.evidence(handle.id)
            assert evidence.took_effect and evidence.detail
        finally:
            injector.revert(handle.id)

    def test_reverting_twice_is_harmless(self, injector, harmless_fault):
        handle = injector.inject(harmless_fault)
        injector.revert(handle.id)
        injector.revert(handle.id)
        assert handle.id not in [f.id for f in injector.active()]

    def test_an_unknown_fault_is_not_found(self, injector):
        with pytest.raises(NotFound):
            injector.evidence("fault-that-never-was")

    @pytest.mark.parametrize("spec", [FaultSpec("weather", "mlflow", "rain"), FaultSpec("network", "mlflow", "rain")])
    def test_an_unknown_kind_or_action_is_refused_naming_the_allowed_ones(self, injector, spec):
        with pytest.raises(UserError, match="is not one of"):
            injector.inject(spec)
