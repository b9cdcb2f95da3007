"""Stages 1-5 on the real stand-ins, from a git repository of the project's own layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.bootstrap import build
from harness.config.settings import load_settings
from harness.domain.errors import UnreachableError
from harness.infra.processes import free_port
from harness.pipeline.runner import Pipeline, StageFailed
from tests.integration.conftest import make_project
from tests.support import git

pytestmark = pytest.mark.integration


@pytest.fixture
def project(tmp_path, stack):
    """A fresh git repo holding training/, serving/ and lastmile.yaml, wired to the session's stand-ins."""
    repo = tmp_path / "project"
    return repo, make_project(repo, stack, "it")


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
    assert champion.tags["lastmile.build_digest"] == first.summary["builds"]["training"]["digest"]
    assert champion.tags["lastmile.dataset_sha256"] == first.summary["dataset"]["sha256"]
    assert first.stages["observation"].outputs["prediction_samples"] >= 1, "the replicas shipped their samples"
    events = [e.event for e in h.log_sink.events(first.run_id)]
    assert events[0] == "run.started" and events[-1] == "run.finished" and events.count("stage.succeeded") == 7
    assert first.summary["ports"]["deployer"] == "local"
    assert (first.summary["champion"], first.summary["previous"], first.summary["deployed_version"]) == ("1", None, "1")
    assert first.stages["registry"].outputs["champion"] == first.stages["deployment"].outputs["model_version"] == "1"

    second = Pipeline(_harness(repo, environ)).run()
    assert second.status == "nothing-to-do"

    (repo / "training" / "NOTES.txt").write_text("a training change\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "touch training")
    third = Pipeline(_harness(repo, environ)).run()
    assert third.status == "succeeded"
    builds = third.stages["build"].outputs
    assert builds["training"]["rebuilt"] and builds["training"]["digest"] != first.summary["builds"]["training"]["digest"]
    assert not builds["serving"]["rebuilt"]
    assert builds["serving"]["digest"] == first.summary["builds"]["serving"]["digest"]
    assert third.summary["model_version"] == "2"

    journal = (h.settings.state_dir / "runs" / third.run_id / "journal.json").read_text()
    secrets = json.loads((stack.settings.state_dir / "secrets.json").read_text())
    assert {"mlflow-password", "registry-password", "s3-secret-access-key", "deployer-token"} <= set(secrets)
    for value in secrets.values():
        assert value not in journal
    # Nor in any log, job record, controller state or stand-in file, of the run's project or of the stand-ins.
    # An access key id is an identifier, not a secret: every signed S3 request names it (Credential=...).
    secrets.pop("s3-access-key-id")
    for root in (h.settings.state_dir, stack.settings.state_dir):
        for path in root.rglob("*"):
            if path.is_file() and path.name != "secrets.json" and path.stat().st_size < 64 * 1024 * 1024:
                data = path.read_bytes()
                leaked = [name for name, value in secrets.items() if value.encode() in data]
                assert not leaked, f"{path.relative_to(root)} holds the value of {leaked}"


def test_failing_training_fails_at_stage_four(project):
    repo, environ = project
    train = repo / "training" / "train.py"
    train.write_text(train.read_text().replace("def main(", "def main(*_a, **_k):\n    raise SystemExit('boom: "
                                                               "injected failure')\n\n\ndef _unused_main("))
    git(repo, "commit", "-qam", "break training")
    h = _harness(repo, environ)
    with pytest.raises(StageFailed) as caught:
        Pipeline(h).run()
    assert "training job FAILED" in str(caught.value) and "boom: injected failure" in str(caught.value)
    assert h.model_registry.by_alias(h.settings.model.name, "champion") is None
    [journal] = (h.settings.state_dir / "runs").glob("*/journal.json")
    training = json.loads(journal.read_text())["stages"]["training"]
    assert training["diagnosis"] == {"cause": "model code", "evidence": "boom: injected failure"}


def test_unreachable_mlflow_names_the_endpoint(project):
    repo, environ = project
    dead = f"http://127.0.0.1:{free_port()}"
    h = _harness(repo, {**environ, "LASTMILE_PORTS__MODEL_REGISTRY__TRACKING_URI": dead})
    with pytest.raises(UnreachableError, match=f"MLflow at {dead} did not answer"):
        Pipeline(h).run()
    [journal] = (h.settings.state_dir / "runs").glob("*/journal.json")
    summary = json.loads(journal.read_text())["summary"]
    assert summary["diagnosis"] == {"stage": "training", "cause": "network reachability", "evidence": dead}


def test_unreachable_registry_names_the_endpoint(project):
    repo, environ = project
    dead = f"http://127.0.0.1:{free_port()}"
    h = _harness(repo, {**environ, "LASTMILE_PORTS__ARTIFACT_REGISTRY__ENDPOINT": dead})
    with pytest.raises(UnreachableError, match=f"registry at {dead} did not answer"):
        Pipeline(h).run()
