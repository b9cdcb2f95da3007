"""Real stand-ins on loopback, in a state dir of their own and on free ports, once per session."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from harness.bootstrap import Harness, build
from harness.config.settings import load_settings
from harness.domain.records import DeploymentSpec, Reference
from harness.infra.processes import free_port
from harness.pipeline.delivery import reference_of
from tests.contracts.deployer import DeployerContract
from tests.support import git

ROOT = Path(__file__).resolve().parents[2]


def settings_for(state_dir: Path, **extra: str):
    environ = {
        "LASTMILE_STATE_DIR": str(state_dir),
        "LASTMILE_STANDINS__FAULTS__PORT": str(free_port()),
        "LASTMILE_STANDINS__OBJECT_STORE__PORT": str(free_port()),
        "LASTMILE_STANDINS__REGISTRY__PORT": str(free_port()),
        "LASTMILE_STANDINS__MLFLOW__PORT": str(free_port()),
        "LASTMILE_STANDINS__DEPLOYER__PORT": str(free_port()),
        "LASTMILE_STANDINS__DEPLOYER__SERVICE_PORT": str(free_port()),
        **extra,
    }
    return load_settings(ROOT / "lastmile.yaml", "local", environ)


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Harness:
    if not shutil.which("docker-registry"):
        pytest.fail("docker-registry is not on PATH: `make test` installs it (apt-get install docker-registry)")
    h = build(settings_for(tmp_path_factory.mktemp("stack") / ".lastmile"))
    h.supervisor.up(h.standins())
    yield h
    h.supervisor.down()


def make_project(repo: Path, stack: Harness, model_prefix: str) -> dict[str, str]:
    """A fresh git repository with the project's training/, serving/ and lastmile.yaml, and the environment
    that points its harness at the session's stand-ins (with a model name of its own)."""
    repo.mkdir(parents=True)
    for folder in ("training", "serving"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "lastmile.yaml", repo / "lastmile.yaml")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "initial")
    urls = stack.endpoints()
    return {
        "LASTMILE_PORTS__OBJECT_STORE__ENDPOINT": urls["object_store"],
        "LASTMILE_PORTS__ARTIFACT_REGISTRY__ENDPOINT": urls["registry"],
        "LASTMILE_PORTS__MODEL_REGISTRY__TRACKING_URI": urls["mlflow"],
        "LASTMILE_PORTS__DEPLOYER__ENDPOINT": urls["deployer"],
        "LASTMILE_PORTS__SECRET_STORE__PATH": str(stack.settings.state_dir / "secrets.json"),
        "LASTMILE_MODEL__NAME": f"{model_prefix}-{uuid.uuid4().hex[:8]}",
    }


@pytest.fixture(scope="session")
def trained_version(stack: Harness):
    """One model version trained by the real training job (the pipeline's stage 4 without the pipeline), with
    its ``lastmile.reference`` tag, and the serving build to deploy it with."""
    import json as _json

    from harness.domain.records import JobSpec, JobState
    from harness.pipeline import datasets

    dataset, _ = datasets.seed(stack.object_store, stack.settings.buckets.data)
    training = stack.image_builder.build("training", ROOT / "training")
    serving = stack.image_builder.build("serving", ROOT / "serving")
    name = f"contract-model-{uuid.uuid4().hex[:8]}"
    result_uri = f"s3://{stack.settings.buckets.data}/results/{name}/training.json"
    args = ("--data-uri", dataset.uri, "--data-sha256", dataset.sha256, "--model-name", name,
            "--experiment", "lastmile-it", "--git-commit", "0" * 40, "--build-digest", training.artifact.digest,
            "--result-uri", result_uri)
    run = stack.job_runner.submit(JobSpec("train", training.artifact, args, timeout_s=240))
    done = stack.job_runner.wait(run.run_id, 240)
    assert done.state is JobState.SUCCEEDED, stack.job_runner.log_tail(run.run_id, 40)
    result = _json.loads(stack.object_store.get(stack.settings.buckets.data, f"results/{name}/training.json"))
    return stack.model_registry.get_version(name, result["model_version"]), serving


class DeployerOnTrainedVersion(DeployerContract):
    """The Deployer contract's specs for every real deployer: the stand-ins' trained version, with its reference
    (``good_spec``) or a reference no model reproduces (``broken_spec``)."""

    @pytest.fixture
    def name(self):
        return "contract"

    @pytest.fixture
    def good_spec(self, trained_version):
        version, serving = trained_version
        return lambda name: DeploymentSpec(name, serving.artifact, version, reference_of(version))

    @pytest.fixture
    def broken_spec(self, trained_version):
        version, serving = trained_version
        reference = reference_of(version)
        wrong = Reference(reference.rows, tuple("no-such-class" for _ in reference.predictions))
        return lambda name: DeploymentSpec(name, serving.artifact, version, wrong)
