"""The wiring factory for ``("source_trigger", "git")``."""

from __future__ import annotations

from typing import Any

from harness import flavors


def git_source_trigger(cfg: flavors.GitTrigger, h: Any):
    """A :class:`GitSourceTrigger` over the repository holding the project (the config file's directory)."""
    from adapters.local.git_trigger import GitSourceTrigger

    return GitSourceTrigger(h.settings.root, cfg.branch)
