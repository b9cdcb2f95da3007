"""The git source trigger and the post-commit hook, against real temporary git repositories."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.local.git_trigger import GitSourceTrigger
from harness.domain.errors import UserError
from harness.domain.ports import SourceTrigger
from harness.infra.git_hook import MARKER, default_command, hook_installed, install_hook, uninstall_hook

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="the git CLI is not installed")


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch, tmp_path):
    """Keep the user's git config and any hook environment away from the test repositories."""
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "empty-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str = "change") -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def init(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "ci@example.com")
    git(path, "config", "user.name", "CI")
    git(path, "config", "commit.gpgsign", "false")
    return path


@pytest.fixture
def repo(tmp_path) -> Path:
    return init(tmp_path / "repo")


@pytest.fixture
def first(repo) -> str:
    return commit(repo, {"training/train.py": "fit()\n", "serving/app.py": "serve()\n", "README.md": "# x\n"})


# source trigger ---------------------------------------------------------------------------------
def test_is_a_source_trigger(repo):
    assert isinstance(GitSourceTrigger(repo, "main"), SourceTrigger)


def test_head_is_the_head_commit(repo, first):
    second = commit(repo, {"serving/app.py": "serve(2)\n"})
    assert GitSourceTrigger(repo, "main").head() == second != first


def test_changes_since_a_commit_lists_both_sides_of_a_rename(repo, first):
    commit(repo, {"serving/app.py": "serve(2)\n"})
    git(repo, "mv", "training/train.py", "training/fit.py")
    head = commit(repo, {}, "rename")
    changes = GitSourceTrigger(repo, "main").changes(first)
    assert (changes.head, changes.base) == (head, first)
    assert changes.paths == ("serving/app.py", "training/fit.py", "training/train.py")


def test_changes_since_head_is_empty(repo, first):
    changes = GitSourceTrigger(repo, "main").changes(first)
    assert (changes.head, changes.base, changes.paths) == (first, first, ())


def test_uncommitted_changes_are_ignored(repo, first):
    (repo / "training/train.py").write_text("edited but not committed\n")
    (repo / "serving/new.py").write_text("staged only\n")
    git(repo, "add", "serving/new.py")
    assert GitSourceTrigger(repo, "main").changes(first).paths == ()


def test_no_base_is_a_first_run_with_every_tracked_file(repo, first):
    (repo / "untracked.txt").write_text("not in git\n")
    changes = GitSourceTrigger(repo, "main").changes(None)
    assert changes.base is None
    assert changes.paths == ("README.md", "serving/app.py", "training/train.py")


def test_unknown_base_is_a_first_run(repo, first):
    changes = GitSourceTrigger(repo, "main").changes("0123456789abcdef0123456789abcdef01234567")
    assert (changes.head, changes.base) == (first, None)
    assert "training/train.py" in changes.paths


def test_base_dropped_by_a_history_rewrite_is_a_first_run(repo, first):
    dropped = commit(repo, {"serving/app.py": "serve(2)\n"})
    git(repo, "reset", "-q", "--hard", first)
    commit(repo, {"training/train.py": "fit(2)\n"})
    changes = GitSourceTrigger(repo, "main").changes(dropped)
    assert changes.base is None
    assert len(changes.paths) == 3


def test_option_like_base_is_not_passed_to_git(repo, first):
    assert GitSourceTrigger(repo, "main").changes("--output=oops").base is None
    assert not (repo / "oops").exists()


def test_current_branch(repo, first):
    trigger = GitSourceTrigger(repo, "main")
    assert trigger.current_branch() == "main"
    git(repo, "checkout", "-q", "--detach")
    assert trigger.current_branch() is None


def test_not_a_repository_is_a_user_error(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(UserError, match="not inside a git repository"):
        GitSourceTrigger(plain, "main").head()


def test_repository_without_commits_is_a_user_error(repo):
    with pytest.raises(UserError, match="has no commits yet"):
        GitSourceTrigger(repo, "main").changes(None)


# post-commit hook -------------------------------------------------------------------------------
def write_marker_command(marker: Path) -> list[str]:
    """A hook command that records the directory it ran in."""
    code = "import os, pathlib, sys; pathlib.Path(sys.argv[1]).write_text(os.getcwd())"
    return [sys.executable, "-c", code, str(marker)]


def test_install_writes_an_executable_marked_hook(repo):
    path = install_hook(repo, "main", command=["true"])
    assert path == (repo / ".git" / "hooks" / "post-commit").resolve()
    assert MARKER in path.read_text().splitlines()
    assert path.stat().st_mode & stat.S_IXUSR
    assert hook_installed(repo)


def test_uninstall_removes_only_our_hook(repo):
    path = install_hook(repo, "main", command=["true"])
    assert uninstall_hook(repo) is True
    assert not path.exists() and not hook_installed(repo)
    assert uninstall_hook(repo) is False


def test_foreign_hook_is_never_replaced_or_removed(repo):
    foreign = repo / ".git" / "hooks" / "post-commit"
    foreign.write_text("#!/bin/sh\necho mine\n")
    with pytest.raises(UserError, match="post-commit exists and was not written by lastmile"):
        install_hook(repo, "main", command=["true"])
    assert uninstall_hook(repo) is False
    assert foreign.read_text() == "#!/bin/sh\necho mine\n"
    assert not hook_installed(repo)


def test_reinstall_replaces_our_own_hook(repo):
    install_hook(repo, "main", command=["true"])
    path = install_hook(repo, "release", command=["true"])
    assert "release" in path.read_text() and "main" not in path.read_text()


def test_core_hooks_path_is_respected(repo):
    git(repo, "config", "core.hooksPath", ".githooks")
    path = install_hook(repo, "main", command=["true"])
    assert path == (repo / ".githooks" / "post-commit").resolve()
    assert not (repo / ".git" / "hooks" / "post-commit").exists()


def test_hook_runs_on_the_configured_branch_only(repo, first, tmp_path):
    marker = tmp_path / "hook-ran"
    install_hook(repo, "main", command=write_marker_command(marker))
    commit(repo, {"training/train.py": "fit(2)\n"})
    assert Path(marker.read_text()).resolve() == repo.resolve()
    marker.unlink()
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, {"training/train.py": "fit(3)\n"})
    assert not marker.exists()


def test_hook_runs_in_the_project_directory_inside_the_repo(repo, first, tmp_path):
    project = repo / "ml"
    project.mkdir()
    marker = tmp_path / "hook-ran"
    install_hook(project, "main", command=write_marker_command(marker))
    commit(repo, {"ml/lastmile.yaml": "profiles: {}\n"})
    assert Path(marker.read_text()).resolve() == project.resolve()


def test_a_failing_run_does_not_block_the_commit(repo, first):
    install_hook(repo, "main", command=[sys.executable, "-c", "raise SystemExit(3)"])
    (repo / "serving/app.py").write_text("serve(2)\n")
    git(repo, "add", "-A")
    done = subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "x"], capture_output=True, text=True)
    assert done.returncode == 0
    assert "post-commit run failed (exit 3)" in done.stderr
    assert git(repo, "rev-parse", "HEAD") != first


def test_install_outside_a_repository_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not a git work tree"):
        install_hook(tmp_path, "main", command=["true"])


def test_default_command_is_lastmile_run_from_this_environment():
    if not (Path(sys.executable).parent / ("lastmile.exe" if os.name == "nt" else "lastmile")).exists():
        pytest.skip("lastmile is not installed in this environment")
    exe, *args = default_command()
    assert Path(exe).parent == Path(sys.executable).parent
    assert args == ["run"]
