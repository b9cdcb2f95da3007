"""Moving ``@champion`` (and keeping the one before as ``@previous``) through the ModelRegistry port.

A move is two alias calls, ``@previous`` first, then ``@champion``, so that at no point does ``@champion``
point nowhere. It is all-or-nothing: when the second call fails, the first is undone (``@previous`` goes back to
where it was) before the error is raised, so the registry never shows a half-moved pair. Only when the undo
fails too does the error say what is left and how to repair it.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.domain.errors import LastmileError, UserError
from harness.domain.ports import ModelRegistry

CHAMPION, PREVIOUS = "champion", "previous"


@dataclass(frozen=True)
class AliasMove:
    """Where ``@champion`` and ``@previous`` point after a move (``previous`` None: not set)."""

    champion: str
    previous: str | None


class HalfMoved(LastmileError):
    """The second alias move failed and undoing the first failed too; the message says how to repair it."""


def promote(registry: ModelRegistry, name: str, version: str) -> AliasMove:
    """Make ``version`` the champion; the old champion becomes ``@previous``."""
    registry.get_version(name, version)  # NotFound before anything moves
    current = registry.by_alias(name, CHAMPION)
    if current is not None and current.version == version:
        previous = registry.by_alias(name, PREVIOUS)
        return AliasMove(version, previous.version if previous else None)
    if current is None:
        registry.set_alias(name, CHAMPION, version)
        return AliasMove(version, None)
    _move_pair(registry, name, champion=version, previous=current.version)
    return AliasMove(version, current.version)


def rollback(registry: ModelRegistry, name: str) -> AliasMove:
    """Swap back: ``@previous`` becomes the champion again and the demoted one becomes ``@previous``."""
    previous = registry.by_alias(name, PREVIOUS)
    if previous is None:
        raise UserError(f"model {name} has no @previous version to roll back to")
    current = registry.by_alias(name, CHAMPION)
    _move_pair(registry, name, champion=previous.version, previous=current.version if current else None)
    return AliasMove(previous.version, current.version if current else None)


def _move_pair(registry: ModelRegistry, name: str, *, champion: str, previous: str | None) -> None:
    """Point ``@previous`` (None: delete it), then ``@champion``; undo the first when the second fails."""
    before = registry.by_alias(name, PREVIOUS)
    _point(registry, name, PREVIOUS, previous)
    try:
        registry.set_alias(name, CHAMPION, champion)
    except BaseException as exc:
        try:
            _point(registry, name, PREVIOUS, before.version if before else None)
        except Exception as undo:
            raise HalfMoved(
                f"model {name}: moving @{CHAMPION} to {champion} failed ({exc}) and @{PREVIOUS} could not be put "
                f"back to {before.version if before else 'unset'} ({undo}); @{PREVIOUS} is now {previous or 'unset'}; "
                f"check both aliases with the registry and set them by hand") from exc
        raise


def _point(registry: ModelRegistry, name: str, alias: str, version: str | None) -> None:
    if version is None:
        registry.delete_alias(name, alias)
    else:
        registry.set_alias(name, alias, version)
