"""A git ``post-commit`` hook that runs the pipeline after each commit on the configured branch.

The hook is a small POSIX shell script carrying a marker line, so lastmile only ever replaces or
removes a hook it wrote. It honours ``core.hooksPath``, never fails the commit (it always exits 0
and prints one line when the run fails), and skips commits on other branches and on a detached HEAD.
"""

from __future__ import annotations

import os
import shlex
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.domain.errors import UserError
from harness.infra.git import REPO_ENV, git

__all__ = ["HOOK_NAME", "MARKER", "default_command", "hook_installed", "hook_path", "install_hook", "uninstall_hook"]

HOOK_NAME = "post-commit"
MARKER = "# lastmile-managed-hook: do not edit; remove with lastmile's uninstall"


_SCRIPT = """#!/bin/sh
{marker}
# Runs the lastmile pipeline after a commit on branch {branch_q}; never blocks the commit.
branch=$(git symbolic-ref --quiet --short HEAD 2>/dev/null) || exit 0
[ "$branch" = {branch_q} ] || exit 0
unset {unset}
cd {workdir_q} 2>/dev/null || {{ echo "lastmile: the project directory is gone; post-commit run skipped" >&2; exit 0; }}
{command_q} || echo "lastmile: post-commit run failed (exit $?); the commit is kept" >&2
exit 0
"""


def default_command() -> list[str]:
    """``lastmile run`` with the ``lastmile`` executable of the environment this Python runs in."""
    exe = Path(sys.executable).parent / ("lastmile.exe" if os.name == "nt" else "lastmile")
    if not exe.exists():
        raise UserError(f"no lastmile executable next to {sys.executable}", hint="install lastmile in this environment")
    return [str(exe), "run"]


def hook_path(repo_root: Path) -> Path:
    """Where git looks for the ``post-commit`` hook of the repository at ``repo_root`` (``core.hooksPath`` aware)."""
    hooks = _git(repo_root, "rev-parse", "--git-path", "hooks")
    return (Path(repo_root) / hooks).resolve() / HOOK_NAME


def hook_installed(repo_root: Path) -> bool:
    """True when the repository's ``post-commit`` hook is one lastmile wrote."""
    return _is_ours(hook_path(repo_root))


def install_hook(repo_root: Path, branch: str, command: Sequence[str] | None = None) -> Path:
    """Write the hook (replacing an older lastmile hook) and return its path.

    ``command`` runs in ``repo_root``; it defaults to :func:`default_command`. A hook not written by
    lastmile is left alone and reported as a :class:`UserError`.
    """
    path = hook_path(repo_root)
    if path.exists() and not _is_ours(path):
        raise UserError(f"{path} exists and was not written by lastmile; refusing to replace it",
                        hint="move it away, or call `lastmile run` from it yourself")
    argv = list(command) if command is not None else default_command()
    if not argv:
        raise UserError("the hook command is empty")
    script = _SCRIPT.format(
        marker=MARKER,
        branch_q=shlex.quote(branch),
        unset=" ".join(REPO_ENV),
        workdir_q=shlex.quote(_workdir(repo_root)),
        command_q=shlex.join(argv),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def uninstall_hook(repo_root: Path) -> bool:
    """Remove lastmile's hook; True when one was removed. A foreign hook is never touched."""
    path = hook_path(repo_root)
    if not _is_ours(path):
        return False
    path.unlink()
    return True


def _is_ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(encoding="utf-8", errors="replace").splitlines()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return False


def _workdir(repo_root: Path) -> str:
    """``repo_root`` relative to the top of the work tree, where git runs a post-commit hook."""
    top = Path(_git(repo_root, "rev-parse", "--show-toplevel")).resolve()
    return os.path.relpath(Path(repo_root).resolve(), top)


def _git(repo_root: Path, *args: str) -> str:
    if not Path(repo_root).is_dir():
        raise UserError(f"{repo_root} is not a directory, so not a git repository")
    out = git(repo_root, *args, check=False)
    if out.returncode != 0:
        detail = (out.stderr.strip().splitlines() or ["git failed"])[-1]
        raise UserError(f"{repo_root} is not a git work tree ({detail})", hint="run `git init` first")
    return out.stdout.strip()
