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


class FailingSecondMove(MemoryModelRegistry):
    """Once armed, accepts one set_alias call and refuses the next ``fail`` ones (a registry gone mid-move)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: int | None = None
        self.fail = 1

    def arm(self, fail: int = 1) -> None:
        self.calls, self.fail = 0, fail

    def set_alias(self, name, alias, version):
        if self.calls is not None:
            self.calls += 1
            if 1 < self.calls <= 1 + self.fail:
                raise ConnectionError("registry went away")
        super().set_alias(name, alias, version)


def _failing(versions: int, champion: str, previous: str | None = None) -> FailingSecondMove:
    registry = FailingSecondMove()
    for i in range(versions):
        registry.register("m", f"s3://models/{i + 1}")
    for version in filter(None, (previous, champion)):
        promote(registry, "m", version)
    return registry


def test_a_promotion_whose_champion_move_fails_leaves_both_aliases_as_they_were():
    registry = _failing(3, champion="2", previous="1")
    registry.arm()
    with pytest.raises(ConnectionError):
        promote(registry, "m", "3")
    assert _aliases(registry) == {"champion": "2", "previous": "1"}


def test_a_first_replacement_whose_champion_move_fails_leaves_previous_unset():
    registry = _failing(2, champion="1")
    registry.arm()
    with pytest.raises(ConnectionError):
        promote(registry, "m", "2")
    assert _aliases(registry) == {"champion": "1", "previous": None}


def test_a_rollback_whose_champion_move_fails_leaves_both_aliases_as_they_were():
    registry = _failing(2, champion="2", previous="1")
    registry.arm()
    with pytest.raises(ConnectionError):
        rollback(registry, "m")
    assert _aliases(registry) == {"champion": "2", "previous": "1"}


def test_a_failed_undo_says_what_is_left():
    from harness.domain.promotion import HalfMoved

    registry = _failing(3, champion="2", previous="1")
    registry.arm(fail=2)
    with pytest.raises(HalfMoved, match=r"@previous is now 2; check both aliases"):
        promote(registry, "m", "3")
