"""The two Dockerfiles, built and run: the training image answers ``--help``, and the serving image serves a real
model version from a mounted ``LASTMILE_SERVING_MODEL_DIR`` with the model's own offline predictions.

The images are built by ``scripts/build-images.sh`` (python:3.11-slim when the engine has it, else the local
stand-in from ``scripts/local-base-image.sh``); Docker's layer cache makes that a second or so once they exist,
a few minutes the first time. Skipped when no Docker engine answers. Containers publish on 127.0.0.1 only and are
removed at the end whatever happens.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.component.serving_fixtures import RegisteredModel, register

# A cold build (base image, then both images) takes minutes; the default 300 s would cut it short.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
SERVING_IMAGE = "lastmile-serving:dev"
TRAINING_IMAGE = "lastmile-training:dev"
IMAGE_UID = "10001"
READY_WITHIN = 120.0


def engine_problem() -> str | None:
    """Why no Docker engine can be used from here, or None when one answers and the CLI the scripts use exists.
    The ``docker`` package is always installed: MLflow depends on it."""
    import docker

    address = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=10)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # DockerException, requests' ConnectionError...: all mean "not usable"
        return f"no Docker engine: nothing answers at {address} ({type(exc).__name__}: {exc})"
    if shutil.which("docker") is None:
        return "no docker CLI on PATH: scripts/build-images.sh needs it (apt-get install docker.io)"
    return None


def docker_cli(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {done.returncode}:\n{done.stdout[-2000:]}"
                             f"\n{done.stderr[-2000:]}")
    return done


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    problem = engine_problem()
    if problem:
        pytest.skip(problem)
    started = time.monotonic()
    done = subprocess.run(["bash", str(ROOT / "scripts" / "build-images.sh")], cwd=ROOT, capture_output=True,
                          text=True, timeout=1700)
    if done.returncode != 0:
        pytest.fail(f"scripts/build-images.sh exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    print(f"\n{done.stderr.strip()}\n{done.stdout.strip()}\nimages ready in {time.monotonic() - started:.1f}s")
    return {"serving": SERVING_IMAGE, "training": TRAINING_IMAGE}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> RegisteredModel:
    return register(tmp_path_factory.mktemp("registered"))


@pytest.fixture
def containers():
    """Names of the containers a test starts; each is removed afterwards, passed or failed."""
    names: list[str] = []
    yield names
    for name in names:
        docker_cli("rm", "--force", "--volumes", name, check=False, timeout=60)


def readable_copy(source: Path, destination: Path) -> Path:
    """``source`` copied to ``destination`` with every directory 0755 and file 0644, for the image's uid 10001."""
    shutil.copytree(source, destination)
    os.chmod(destination, 0o755)
    for directory, subdirectories, files in os.walk(destination):
        for name in subdirectories:
            os.chmod(Path(directory, name), 0o755)
        for name in files:
            os.chmod(Path(directory, name), 0o644)
    return destination


def http(method: str, url: str, body: dict | None = None, timeout: float = 10) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_training_image_prints_its_usage(images, containers):
    name = f"lastmile-test-training-{uuid.uuid4().hex[:8]}"
    containers.append(name)
    assert docker_cli("image", "inspect", "--format", "{{.Config.User}}", images["training"]).stdout.strip() \
        == IMAGE_UID
    done = docker_cli("run", "--name", name, "--network", "none", images["training"], "--help", check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--data-uri" in done.stdout
    assert done.stdout.startswith("usage: python -m training.train")


def test_serving_image_serves_a_mounted_model_version(images, containers, model, tmp_path):
    model_dir = readable_copy(Path(model.model_dir), tmp_path / "model")
    uri = f"models:/{model.name}/{model.champion_version}"
    name = f"lastmile-test-serving-{uuid.uuid4().hex[:8]}"
    containers.append(name)
    assert docker_cli("image", "inspect", "--format", "{{.Config.User}}", images["serving"]).stdout.strip() \
        == IMAGE_UID
    started = time.monotonic()
    docker_cli("run", "--detach", "--name", name, "--publish", "127.0.0.1::8080",
               "--volume", f"{model_dir}:/model:ro",
               "--env", "LASTMILE_SERVING_MODEL_DIR=/model", "--env", f"LASTMILE_SERVING_MODEL_URI={uri}",
               "--env", "LASTMILE_SERVING_BUILD_DIGEST=test-images", images["serving"])
    port = docker_cli("port", name, "8080/tcp").stdout.split()[0].rsplit(":", 1)[1]
    base = f"http://127.0.0.1:{port}"

    ready, last = None, None
    while time.monotonic() - started < READY_WITHIN:
        try:
            status, body = http("GET", f"{base}/ready", timeout=2)
            if status == 200:
                ready = body
                break
            last = f"{status} {body}"
        except (OSError, ValueError) as exc:  # not listening yet, or the connection dropped during start
            last = repr(exc)
        if docker_cli("inspect", "--format", "{{.State.Running}}", name).stdout.strip() != "true":
            break
        time.sleep(0.2)
    if ready is None:
        logs = docker_cli("logs", name, check=False)
        pytest.fail(f"{name} was not ready within {READY_WITHIN:.0f}s (last answer: {last}); its output:\n"
                    f"{logs.stdout[-3000:]}\n{logs.stderr[-3000:]}")
    print(f"\nserving container ready {time.monotonic() - started:.1f}s after docker run")
    assert ready["model_version"] == model.champion_version

    status, answer = http("POST", f"{base}/invocations", {"dataframe_records": model.records()})
    assert status == 200, answer
    assert answer["predictions"] == model.predictions

    status, version = http("GET", f"{base}/version")
    assert status == 200, version
    assert (version["model_name"], version["model_version"]) == (model.name, model.champion_version)
    assert version["model_uri"] == uri
    assert version["build_digest"] == "test-images"
