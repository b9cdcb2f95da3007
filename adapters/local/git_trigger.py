"""The ``git`` source trigger: what changed in a local git repository since the last good run.

Only committed changes count (a pipeline run builds a commit); the working tree is never read.
Runs the ``git`` CLI, which must be on PATH.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.domain.errors import UserError
from harness.domain.records import ChangeSet
from harness.infra.git import git


class GitSourceTrigger:
    """The :class:`~harness.domain.ports.SourceTrigger` over the git repository that contains ``repo_root``.

    Paths in a :class:`ChangeSet` are relative to the repository's top level, with ``/`` separators.
    """

    def __init__(self, repo_root: Path, branch: str = "main"):
        self.repo_root = Path(repo_root)
        self.branch = branch

    def head(self) -> str:
        """The full sha of the commit HEAD points at."""
        self._require_repo()
        sha = self._resolve("HEAD")
        if sha is None:
            raise UserError(f"git repository {self.repo_root} has no commits yet", hint="commit your code first")
        return sha

    def current_branch(self) -> str | None:
        """The branch HEAD is on, or None when HEAD is detached."""
        self._require_repo()
        out = self._git("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        return (out.stdout.strip() or None) if out.returncode == 0 else None

    def changes(self, since: str | None) -> ChangeSet:
        """Paths changed by the commits between ``since`` and HEAD.

        A rename counts as both its old and its new path. When ``since`` is None, unknown, or not an
        ancestor of HEAD (history was rewritten), this is a first run: ``base`` is None and ``paths``
        holds every file tracked at HEAD.
        """
        head = self.head()
        base = self._ancestor(since, head) if since else None
        if base is None:
            listing = self._git("ls-tree", "-r", "-z", "--name-only", "--full-tree", head)
            return ChangeSet(head=head, base=None, paths=_split(listing.stdout))
        diff = self._git("diff", "--name-only", "--no-renames", "--no-ext-diff", "-z", base, head)
        return ChangeSet(head=head, base=base, paths=_split(diff.stdout))

    def _ancestor(self, since: str, head: str) -> str | None:
        """``since`` as a full sha when it names a commit that HEAD descends from, else None."""
        if since.startswith("-"):
            return None
        sha = self._resolve(since)
        if sha is None:
            return None
        check = self._git("merge-base", "--is-ancestor", sha, head, check=False)
        return sha if check.returncode == 0 else None

    def _resolve(self, rev: str) -> str | None:
        out = self._git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        return out.stdout.strip() if out.returncode == 0 else None

    def _require_repo(self) -> None:
        if not self.repo_root.is_dir():
            raise UserError(f"{self.repo_root} is not a directory, so not a git repository")
        if self._git("rev-parse", "--git-dir", check=False).returncode != 0:
            raise UserError(f"{self.repo_root} is not inside a git repository", hint="run `git init` and commit")

    def _git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return git(self.repo_root, *args, check=check)


def _split(nul_separated: str) -> tuple[str, ...]:
    return tuple(sorted({path for path in nul_separated.split("\0") if path}))
