"""The contracts of the local adapters that run subprocesses: git for the source trigger, and jobs."""

from __future__ import annotations

import pytest

from adapters.local.git_trigger import GitSourceTrigger
from adapters.local.jobs import SubprocessJobRunner
from harness.domain.records import JobSpec
from harness.infra.bundle import build_bundle
from tests.contracts.job_runner import GOING_DOWN, HELLO, JobRunnerContract
from tests.contracts.source_trigger import SourceTriggerContract
from tests.fakes import MemoryRegistry
from tests.support import git

JOB = f'''
import sys, time
kind = sys.argv[1]
if kind == "succeed":
    print({HELLO!r})
elif kind == "fail":
    print({GOING_DOWN!r}, file=sys.stderr)
    sys.exit(3)
elif kind == "lines":
    print("\\n".join(f"line {{i}}" for i in range(1, 31)))
else:
    time.sleep(60)
'''


class TestSubprocessJobRunner(JobRunnerContract):
    @pytest.fixture
    def registry(self):
        return MemoryRegistry()

    @pytest.fixture
    def runner(self, registry, tmp_path):
        return SubprocessJobRunner(registry, tmp_path / "state", grace_s=2)

    @pytest.fixture
    def spec(self, registry, tmp_path):
        pkg = tmp_path / "src" / "contractjob"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "main.py").write_text(JOB)
        artifact = build_bundle(registry, "contractjob", pkg, "lastmile/contractjob", entrypoint="contractjob.main").artifact
        return lambda kind: JobSpec(kind, artifact, args=(kind,), timeout_s=60)


class TestGitSourceTrigger(SourceTriggerContract):
    @pytest.fixture
    def repo(self, tmp_path):
        repo = tmp_path / "repo"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        return repo

    @pytest.fixture
    def trigger(self, repo):
        return GitSourceTrigger(repo)

    @pytest.fixture
    def commit(self, repo):
        def add(paths):
            for path in paths:
                (repo / path).parent.mkdir(parents=True, exist_ok=True)
                (repo / path).write_text(path)
            git(repo, "add", *paths)
            git(repo, "commit", "-q", "-m", f"add {', '.join(paths)}")
            return git(repo, "rev-parse", "HEAD").strip()
        return add
