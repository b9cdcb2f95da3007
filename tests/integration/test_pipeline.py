"""Stages 1-5 on the real stand-ins, from a git repository of the project's own layout."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from harness.config import load_settings
from harness.errors import UnreachableError
from harness.pipeline import Pipeline, RunOptions, StageFailed
from harness.supervisor import free_port
from harness.wiring import build
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration


def _git(repo: Path, *args: str) -> str:
    env = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "PATH": "/usr/bin:/bin",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def project(tmp_path, stack):
    """A fresh git repo holding training/, serving/ and lastmile.yaml, wired to the session's stand-ins."""
    repo = tmp_path / "project"
    repo.mkdir()
    for folder in ("training", "serving"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "lastmile.yaml", repo / "lastmile.yaml")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "initial")
    urls = stack.endpoints()
    environ = {
        "LASTMILE_PORTS__OBJECT_STORE__ENDPOINT": urls["object_store"],
        "LASTMILE_PORTS__ARTIFACT_REGISTRY__ENDPOINT": urls["registry"],
        "LASTMILE_PORTS__MODEL_REGISTRY__TRACKING_URI": urls["mlflow"],
        "LASTMILE_PORTS__DEPLOYER__ENDPOINT": urls["deployer"],
        "LASTMILE_PORTS__SECRET_STORE__PATH": str(stack.settings.state_dir / "secrets.json"),
        "LASTMILE_MODEL__NAME": f"it-{uuid.uuid4().hex[:8]}",
    }
    return repo, environ


def _harness(repo: Path, environ: dict):
    return build(load_settings(repo / "lastmile.yaml", "local", environ))


def test_run_then_nothing_to_do_then_training_change(project, stack):
    repo, environ = project
    h = _harness(repo, environ)
    first = Pipeline(h).run()
    assert first.status == "succeeded", first.stages
    name = h.settings.model.name
    champion = h.model_registry.by_alias(name, "champion")
    assert champion.version == str(first.summary["model_version"]) == "1"
    tags = h.model_registry.get_run(champion.run_id).tags
    assert tags["lastmile.build_digest"] == first.summary["builds"]["training"]["digest"]
    assert tags["lastmile.dataset_sha256"] == first.summary["dataset"]["sha256"]

    second = Pipeline(_harness(repo, environ)).run()
    assert second.status == "nothing-to-do"

    (repo / "training" / "NOTES.txt").write_text("a training change\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "touch training")
    third = Pipeline(_harness(repo, environ)).run()
    assert third.status == "succeeded"
    builds = third.stages["build"].outputs
    assert builds["training"]["rebuilt"] and builds["training"]["digest"] != first.summary["builds"]["training"]["digest"]
    assert not builds["serving"]["rebuilt"]
    assert builds["serving"]["digest"] == first.summary["builds"]["serving"]["digest"]
    assert third.summary["model_version"] == "2"

    journal = (h.settings.state_dir / "runs" / third.run_id / "journal.json").read_text()
    for value in json.loads((stack.settings.state_dir / "secrets.json").read_text()).values():
        assert value not in journal


def test_failing_training_fails_at_stage_four(project):
    repo, environ = project
    train = repo / "training" / "train.py"
    train.write_text(train.read_text().replace("def main(", "def main(*_a, **_k):\n    raise SystemExit('boom: "
                                                               "injected failure')\n\n\ndef _unused_main("))
    _git(repo, "commit", "-qam", "break training")
    h = _harness(repo, environ)
    with pytest.raises(StageFailed) as caught:
        Pipeline(h).run()
    assert "training job FAILED" in str(caught.value) and "boom: injected failure" in str(caught.value)
    assert h.model_registry.by_alias(h.settings.model.name, "champion") is None


def test_unreachable_mlflow_names_the_endpoint(project):
    repo, environ = project
    dead = f"http://127.0.0.1:{free_port()}"
    h = _harness(repo, {**environ, "LASTMILE_PORTS__MODEL_REGISTRY__TRACKING_URI": dead})
    with pytest.raises(UnreachableError, match=f"MLflow at {dead} did not answer"):
        Pipeline(h).run()


def test_unreachable_registry_names_the_endpoint(project):
    repo, environ = project
    dead = f"http://127.0.0.1:{free_port()}"
    h = _harness(repo, {**environ, "LASTMILE_PORTS__ARTIFACT_REGISTRY__ENDPOINT": dead})
    with pytest.raises(UnreachableError, match=f"registry at {dead} did not answer"):
        Pipeline(h).run()
