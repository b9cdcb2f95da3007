"""The deployment controller with ``--runtime container``: its replicas (and its warm standby) are containers of the
serving image, behind the same HAProxy Service.

Two replicas of a real registered model roll out; the stable endpoint answers ``/invocations`` with the model's own
predictions and names both replicas; a replica container killed from outside (``docker kill``) is noticed and
replaced while the endpoint keeps answering; a second revision rolls out; and once the controller stops, normally or
by SIGKILL, no container carrying its state dir's label is left.

The image is ``lastmile-serving:dev`` (``scripts/build-images.sh``), named by its image id as a revision names its
image by digest. Skipped, saying why, when no Docker engine answers or that image is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from adapters.local.deployer.containers import LABEL_REPLICA, LABEL_STATE_DIR, state_key
from harness.infra.processes import free_port, stop_group
from tests.component.serving_fixtures import RegisteredModel, register

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
SERVING_IMAGE = "lastmile-serving:dev"
TOKEN = "container-replicas-token"
NAME = "iris"
SETTLE_S = 180.0


def _engine_problem() -> str | None:
    import docker

    address = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=10)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # DockerException, requests' ConnectionError...: all mean "not usable"
        return f"no Docker engine answers at {address} ({type(exc).__name__})"
    if shutil.which("docker") is None:
        return "no docker CLI on PATH: the container runtime runs replicas with it"
    return None


@pytest.fixture(scope="module")
def image() -> str:
    """The serving image's id (``sha256:...``): a reference by digest to an image this engine has."""
    problem = _engine_problem()
    if problem:
        pytest.skip(problem)
    done = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", SERVING_IMAGE],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        pytest.skip(f"the serving image {SERVING_IMAGE} is missing: scripts/build-images.sh builds it")
    return done.stdout.strip()


@pytest.fixture(scope="module")
def model() -> Iterator[RegisteredModel]:
    """The test model, registered under a directory any user can read: the containers run as the image's user.
    Next to its copy of the champion (version 1) goes a copy of version 2, as a deployer downloads each version."""
    root = Path(tempfile.mkdtemp(prefix="lastmile-container-replicas-"))
    try:
        root.chmod(0o755)
        registered = register(root)
        latest = root / "latest"
        shutil.copytree(registered.model_dir, latest)
        record = json.loads((latest / "version.json").read_text())
        (latest / "version.json").write_text(json.dumps({**record, "version": registered.latest_version}))
        for entry in [root, *root.rglob("*")]:
            entry.chmod(entry.stat().st_mode | (0o555 if entry.is_dir() else 0o444))
        yield registered
    finally:
        shutil.rmtree(root, ignore_errors=True)


def model_dir(model: RegisteredModel, version: str) -> str:
    return model.model_dir if version == model.champion_version else str(Path(model.model_dir).parents[1] / "latest")


def containers_of(state_dir: Path) -> list[dict]:
    """The containers (any state) labelled with the controller's state dir: name, labels, user, network, state."""
    import docker
    from docker.errors import NotFound

    client = docker.from_env(timeout=30)
    found = []
    try:
        for summary in client.api.containers(all=True, filters={"label": f"{LABEL_STATE_DIR}={state_key(state_dir)}"}):
            try:
                c = client.api.inspect_container(summary["Id"])
            except NotFound:  # removed (--rm) since the listing
                continue
            found.append({"name": c["Name"].lstrip("/"), "labels": c["Config"]["Labels"], "user": c["Config"]["User"],
                          "network": c["HostConfig"]["NetworkMode"], "status": c["State"]["Status"],
                          "mounts": c["Mounts"], "args": c["Args"]})
    finally:
        client.close()
    return found


@dataclass
class Controller:
    proc: subprocess.Popen
    admin: str
    endpoint: str
    state_dir: Path
    log: Path

    def call(self, method: str, path: str, **kwargs) -> httpx.Response:
        return httpx.request(method, f"{self.admin}{path}", headers={"Authorization": f"Bearer {TOKEN}"},
                             timeout=30, **kwargs)

    def status(self) -> dict:
        return self.call("GET", f"/deployments/{NAME}").json()

    def deploy(self, image: str, model: RegisteredModel, version: str, replicas: int) -> httpx.Response:
        return self.call("PUT", f"/deployments/{NAME}", json={
            "serving_digest": image, "image": image, "model_name": model.name, "model_version": version,
            "replicas": replicas, "env": {"MLFLOW_TRACKING_URI": model.tracking_uri,
                                          "LASTMILE_SERVING_MODEL_DIR": model_dir(model, version),
                                          "LASTMILE_SERVING_PREDICTION_SAMPLE_RATE": "0"}})

    def wait(self, condition: Callable[[dict], bool], what: str, timeout_s: float = SETTLE_S) -> dict:
        deadline = time.monotonic() + timeout_s
        status: dict = {}
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the controller exited ({self.proc.returncode}):\n{self.tail()}"
            try:
                status = self.status()
                if condition(status):
                    return status
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise AssertionError(f"{what}: not within {timeout_s:.0f}s; last status {status}\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def start_controller(state_dir: Path, replicas: int) -> Controller:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "token.sha256").write_text(hashlib.sha256(TOKEN.encode()).hexdigest())
    port, service = free_port(), free_port()
    log = state_dir / "controller.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "adapters.local.deployer", "--port", str(port), "--service-port", str(service),
             "--state-dir", str(state_dir), "--token-sha256-file", str(state_dir / "token.sha256"), "--name", NAME,
             "--replicas", str(replicas), "--runtime", "container"],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    running = Controller(proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{service}", state_dir, log)
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"the controller exited ({proc.returncode}):\n{running.tail()}"
        try:
            if httpx.get(f"{running.admin}/healthz", timeout=1).status_code == 200:
                return running
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"the controller's admin API never answered:\n{running.tail()}"
        time.sleep(0.2)


def remove_containers(state_dir: Path) -> None:
    """Teardown whatever happened: the containers this test's controller labelled, and nothing else."""
    for container in containers_of(state_dir):
        subprocess.run(["docker", "rm", "--force", container["name"]], capture_output=True, timeout=60)


def rolled_out(revision: int, replicas: int) -> Callable[[dict], bool]:
    def check(status: dict) -> bool:
        pods = status["replicas"]
        return status["revision"] is not None and status["revision"]["number"] == revision and \
            status["ready"] == replicas and len(pods) == replicas and \
            all(p["state"] == "ready" and p["revision"] == revision for p in pods) and not status["message"]
    return check


class Traffic:
    """Predictions sent through the endpoint, one after another, on a thread, until stopped: what failed."""

    def __init__(self, endpoint: str, body: dict):
        self.endpoint, self.body = endpoint, body
        self.answered, self.failed = 0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                try:
                    response = client.post(f"{self.endpoint}/invocations", json=self.body)
                    if response.status_code == 200:
                        self.answered += 1
                    else:
                        self.failed.append(f"{response.status_code} {response.text[:200]}")
                except httpx.HTTPError as exc:
                    self.failed.append(repr(exc))
                time.sleep(0.02)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)


@pytest.fixture(scope="module")
def deployed(image, model, tmp_path_factory) -> Iterator[Controller]:
    state_dir = tmp_path_factory.mktemp("container-replicas") / "deployer"
    running = start_controller(state_dir, replicas=2)
    try:
        answer = running.deploy(image, model, model.champion_version, replicas=2)
        assert answer.status_code == 200, answer.text
        running.wait(rolled_out(1, 2), "two replica containers ready")
        yield running
    finally:
        stop_group(running.proc.pid, reap=running.proc.poll)
        running.proc.wait(30)
        left = containers_of(state_dir)
        remove_containers(state_dir)
        assert not left, f"containers left after the controller stopped: {[c['name'] for c in left]}"


def _body(model: RegisteredModel) -> dict:
    return {"dataframe_records": model.records()}


def test_replicas_are_containers_of_the_image_as_its_user_on_the_hosts_network(deployed, image, model):
    status = deployed.status()
    running = {c["labels"][LABEL_REPLICA]: c for c in containers_of(deployed.state_dir) if c["status"] == "running"}
    for pod in status["replicas"]:
        container = running[pod["name"]]
        assert container["name"] == pod["container"]
        assert container["name"].startswith(f"lastmile-{NAME}-")
        assert container["labels"]["lastmile.deployment"] == NAME
        assert container["user"] == "10001"  # the image's; nothing overrides it
        assert container["network"] == "host"
        assert container["args"][-4:] == ["--host", "127.0.0.1", "--port", pod["address"].rsplit(":", 1)[1]]
        assert [(m["Source"], m["Destination"], m["RW"]) for m in container["mounts"]] == \
            [(model.model_dir, model.model_dir, False)]


def test_the_endpoint_answers_with_the_models_predictions_from_both_replicas(deployed, model):
    names = {p["name"] for p in deployed.status()["replicas"]}
    with httpx.Client(timeout=10) as client:
        answers = [client.post(f"{deployed.endpoint}/invocations", json=_body(model)) for _ in range(12)]
    assert [a.status_code for a in answers] == [200] * 12, [a.text for a in answers if a.status_code != 200]
    assert all(a.json()["predictions"] == model.predictions for a in answers)
    assert {a.headers["x-lastmile-replica"] for a in answers} == names


def test_a_container_killed_from_outside_is_replaced_while_the_endpoint_answers(deployed, model):
    deployed.wait(lambda s: s["standby"] == "warm", "a warm standby container")
    victim = deployed.status()["replicas"][0]
    with Traffic(deployed.endpoint, _body(model)) as traffic:
        time.sleep(0.5)
        killed = subprocess.run(["docker", "kill", victim["container"]], capture_output=True, text=True, timeout=60)
        assert killed.returncode == 0, killed.stderr

        def replaced(status: dict) -> bool:
            pod = next((p for p in status["replicas"] if p["name"] == victim["name"]), None)
            return pod is not None and pod["restarts"] >= 1 and pod["state"] == "ready" and status["ready"] == 2
        status = deployed.wait(replaced, f"{victim['name']} replaced after docker kill", timeout_s=90)
        time.sleep(1.0)
    pod = next(p for p in status["replicas"] if p["name"] == victim["name"])
    assert pod["container"] != victim["container"]  # the standby's container took its place, renamed
    assert pod["container"].startswith(f"lastmile-{victim['name']}-")
    assert "killed by SIGKILL" in pod["detail"]
    assert traffic.answered > 10
    assert traffic.failed == []
    # The activated standby's output reaches the replica's log, which the controller copies from its container.
    assert "activated as" in (deployed.state_dir / "logs" / f"{victim['name']}.log").read_text(errors="replace")


def test_a_replicas_docker_client_killed_takes_its_container_with_it(deployed, model):
    """A process fault on the replica's pid hits the ``docker run`` client: its container must not outlive it."""
    victim = deployed.status()["replicas"][-1]
    with Traffic(deployed.endpoint, _body(model)) as traffic:
        os.kill(victim["pid"], signal.SIGKILL)

        def replaced(status: dict) -> bool:
            pod = next((p for p in status["replicas"] if p["name"] == victim["name"]), None)
            return pod is not None and pod["restarts"] > victim["restarts"] and pod["state"] == "ready" and \
                status["ready"] == 2
        deployed.wait(replaced, f"{victim['name']} replaced after its client was killed", timeout_s=90)
    assert victim["container"] not in {c["name"] for c in containers_of(deployed.state_dir)}
    assert traffic.failed == []


def test_a_second_revision_rolls_out_as_containers(deployed, image, model):
    before = {p["container"] for p in deployed.status()["replicas"]}
    with Traffic(deployed.endpoint, _body(model)) as traffic:
        answer = deployed.deploy(image, model, model.latest_version, replicas=2)
        assert answer.status_code == 200, answer.text
        number = answer.json()["revision"]["number"]
        deployed.wait(rolled_out(number, 2), f"revision {number} rolled out")
    status = deployed.status()
    assert status["revision"]["model_version"] == model.latest_version
    assert before.isdisjoint({p["container"] for p in status["replicas"]})
    assert traffic.failed == []
    with httpx.Client(timeout=10) as client:
        versions = {client.get(f"{deployed.endpoint}/version").json()["model_version"] for _ in range(6)}
    assert versions == {model.latest_version}


def test_a_revision_whose_image_is_missing_is_refused(deployed, model):
    answer = deployed.deploy("sha256:" + "0" * 64, model, model.champion_version, replicas=2)
    assert answer.status_code == 422
    assert "is not in this Docker engine" in answer.json()["detail"]


def test_a_sigkilled_controllers_containers_are_removed(image, model, tmp_path):
    state_dir = tmp_path / "deployer"
    running = start_controller(state_dir, replicas=1)
    try:
        assert running.deploy(image, model, model.champion_version, replicas=1).status_code == 200
        deadline = time.monotonic() + SETTLE_S
        while not [c for c in containers_of(state_dir) if c["status"] == "running"]:
            assert time.monotonic() < deadline, f"no replica container started:\n{running.tail()}"
            time.sleep(0.25)
        os.kill(running.proc.pid, signal.SIGKILL)
        running.proc.wait(10)
        deadline = time.monotonic() + 60
        while left := containers_of(state_dir):
            assert time.monotonic() < deadline, f"containers left 60 s after the controller was SIGKILLed: {left}"
            time.sleep(0.5)
    finally:
        stop_group(running.proc.pid, reap=running.proc.poll)
        remove_containers(state_dir)
