import pytest

from harness.domain.errors import NotFound, UserError
from harness.domain.promotion import promote, rollback
from tests.fakes import MemoryModelRegistry


def _registry(versions: int) -> MemoryModelRegistry:
    registry = MemoryModelRegistry()
    for i in range(versions):
        registry.register("m", f"s3://models/{i + 1}")
    return registry


def _aliases(registry):
    return {alias: (registry.by_alias("m", alias) or type("N", (), {"version": None})).version
            for alias in ("champion", "previous")}


def test_first_promotion_has_no_previous():
    registry = _registry(1)
    move = promote(registry, "m", "1")
    assert (move.champion, move.previous) == ("1", None)
    assert _aliases(registry) == {"champion": "1", "previous": None}


def test_promotion_keeps_the_old_champion_as_previous():
    registry = _registry(2)
    promote(registry, "m", "1")
    promote(registry, "m", "2")
    assert _aliases(registry) == {"champion": "2", "previous": "1"}


def test_promoting_the_champion_again_changes_nothing():
    registry = _registry(2)
    promote(registry, "m", "1")
    promote(registry, "m", "2")
    promote(registry, "m", "2")
    assert _aliases(registry) == {"champion": "2", "previous": "1"}


def test_promoting_a_missing_version_moves_nothing():
    registry = _registry(1)
    promote(registry, "m", "1")
    with pytest.raises(NotFound):
        promote(registry, "m", "7")
    assert _aliases(registry) == {"champion": "1", "previous": None}


def test_rollback_swaps_champion_and_previous():
    registry = _registry(2)
    promote(registry, "m", "1")
    promote(registry, "m", "2")
    move = rollback(registry, "m")
    assert (move.champion, move.previous) == ("1", "2")
    assert _aliases(registry) == {"champion": "1", "previous": "2"}


def test_rollback_without_previous_is_a_user_error():
    registry = _registry(1)
    promote(registry, "m", "1")
    with pytest.raises(UserError, match="no @previous"):
        rollback(registry, "m")
    assert _aliases(registry) == {"champion": "1", "previous": None}
