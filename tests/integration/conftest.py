"""Real stand-ins on loopback, in a state dir of their own and on free ports, once per session."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from harness.config import load_settings
from harness.supervisor import free_port
from harness.wiring import Harness, build

ROOT = Path(__file__).resolve().parents[2]


def settings_for(state_dir: Path, **extra: str):
    environ = {
        "LASTMILE_STATE_DIR": str(state_dir),
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


def git(repo: Path, *args: str) -> str:
    """git in a test repository, blind to the user's global and system config."""
    env = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "PATH": "/usr/bin:/bin",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


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
