"""Real stand-ins on loopback, in a state dir of their own and on free ports, once per session."""

from __future__ import annotations

import shutil
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
