"""Moving ``@champion`` (and keeping the one before as ``@previous``) through the ModelRegistry port.

The order of alias moves is chosen so that an interruption leaves a consistent registry: ``@previous``
is set first, then ``@champion`` in one call; at no point does ``@champion`` point nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.domain.errors import UserError
from harness.domain.ports import ModelRegistry

CHAMPION, PREVIOUS = "champion", "previous"


@dataclass(frozen=True)
class AliasMove:
    champion: str
    previous: str | None


def promote(registry: ModelRegistry, name: str, version: str) -> AliasMove:
    """Make ``version`` the champion; the old champion becomes ``@previous``."""
    registry.get_version(name, version)  # NotFound before anything moves
    current = registry.by_alias(name, CHAMPION)
    if current is not None and current.version == version:
        previous = registry.by_alias(name, PREVIOUS)
        return AliasMove(version, previous.version if previous else None)
    if current is not None:
        registry.set_alias(name, PREVIOUS, current.version)
    registry.set_alias(name, CHAMPION, version)
    return AliasMove(version, current.version if current else None)


def rollback(registry: ModelRegistry, name: str) -> AliasMove:
    """Swap back: ``@previous`` becomes the champion again and the demoted one becomes ``@previous``."""
    previous = registry.by_alias(name, PREVIOUS)
    if previous is None:
        raise UserError(f"model {name} has no @previous version to roll back to")
    current = registry.by_alias(name, CHAMPION)
    if current is not None:
        registry.set_alias(name, PREVIOUS, current.version)
    else:
        registry.delete_alias(name, PREVIOUS)
    registry.set_alias(name, CHAMPION, previous.version)
    return AliasMove(previous.version, current.version if current else None)
