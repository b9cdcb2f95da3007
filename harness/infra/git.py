"""The one ``git`` helper: runs the git CLI in a repository, blind to the variables a hook inherits."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from harness.domain.errors import UserError

REPO_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY", "GIT_PREFIX")
"""Variables git sets for hooks: they would point git at another repository or index than the one asked for."""


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``git -C repo args...``; a missing git is a :class:`UserError`, a failure (with ``check``) a RuntimeError."""
    env = {k: v for k, v in os.environ.items() if k not in REPO_ENV}
    try:
        out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, encoding="utf-8",
                             errors="surrogateescape", env=env)
    except FileNotFoundError:
        raise UserError("git is not installed or not on PATH", hint="install git") from None
    if check and out.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {repo}: {out.stderr.strip()}")
    return out
