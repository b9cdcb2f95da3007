"""`standins.mode: containers`: the S3 stand-in, the registry and MLflow in containers of their images, behind the
same fault proxy front as processes, through `lastmile up / status / down`.

Skipped, with the reason, where no Docker engine answers or an image is missing and its base cannot be had; an
image whose base is there is built (scripts/build-images.sh), and a failing build fails the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from harness.bootstrap import build
from harness.config.settings import load_settings
from harness.domain.errors import UserError
from harness.infra import containers
from harness.infra.processes import free_port
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration

IMAGES = {"object_store": "lastmile-objectstore:dev", "mlflow": "lastmile-mlflow:dev", "registry": "lastmile-registry:dev"}
BASES = ("python:3.11-slim", "debian:bookworm-slim", "lastmile/python:3.11-slim-local")


def _environ(state_dir: Path, **extra: str) -> dict[str, str]:
    ports = ("FAULTS__PORT", "OBJECT_STORE__PORT", "REGISTRY__PORT", "MLFLOW__PORT", "DEPLOYER__PORT",
             "DEPLOYER__SERVICE_PORT")
    return {"LASTMILE_STATE_DIR": str(state_dir), **{f"LASTMILE_STANDINS__{p}": str(free_port()) for p in ports},
            **extra}


def _settings(environ: dict[str, str]):
    return load_settings(ROOT / "lastmile.yaml", "containers", environ)


def _ours(state_dir: Path) -> list:
    """Every container labelled with this state dir, running or not."""
    return containers.docker_client().containers.list(
        all=True, filters={"label": f"{containers.STATE_LABEL}={containers.state_key(state_dir)}"})


@pytest.fixture(scope="module")
def images() -> None:
    try:
        client = containers.docker_client()
    except UserError as e:
        pytest.skip(f"no Docker engine answers: {e}")
    missing = [image for image in IMAGES.values() if not client.images.list(name=image)]
    if not missing:
        return
    if not any(client.images.list(name=base) for base in BASES):
        pytest.skip(f"{', '.join(missing)} missing and no base image to build them on ({', '.join(BASES)})")
    names = " ".join(image.split(":")[0].removeprefix("lastmile-") for image in missing)
    built = subprocess.run(["bash", "scripts/build-images.sh"], cwd=ROOT, env={**os.environ, "IMAGES": names},
                           capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stderr[-2000:]


@pytest.fixture(scope="module")
def stack(images, tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("containers") / ".lastmile"
    environ = _environ(state_dir)
    h = build(_settings(environ))
    started = time.monotonic()
    try:
        h.supervisor.up(h.standins())
        print(f"\ncontainers: stand-ins up and ready in {time.monotonic() - started:.1f} s")
        yield h, environ
    finally:
        h.supervisor.down()
        for leftover in _ours(state_dir):  # whatever a failed test left: ours by label, so ours to remove
            leftover.remove(force=True)


def _cli(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LASTMILE_")}
    return subprocess.run([sys.executable, "-m", "harness.cli", "--profile", "containers", *args], cwd=ROOT,
                          env={**env, **environ}, capture_output=True, text=True, timeout=120)


def test_status_json_reports_the_containers_healthy(stack):
    h, environ = stack
    result = _cli(environ, "status", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = {s["name"]: s for s in json.loads(result.stdout)}
    assert set(report) == {"faults", "object_store", "registry", "mlflow", "deployer"}
    assert {s["state"] for s in report.values()} == {"healthy"}
    assert all(set(s) == set(report["faults"]) for s in report.values())  # one shape for processes and containers
    for name in IMAGES:
        assert report[name]["pid"] is None
        container = containers.docker_client().containers.get(report[name]["container"])
        assert container.image.tags == [IMAGES[name]]
        assert container.labels[containers.STATE_LABEL] == containers.state_key(h.settings.state_dir)
        published = {b["HostIp"] for bindings in container.ports.values() for b in bindings or []}
        assert published == {"127.0.0.1"}
    assert report["faults"]["container"] is None and report["faults"]["pid"]
    assert report["deployer"]["container"] is None and report["deployer"]["pid"]


def test_up_again_reuses_the_containers_and_restarts_a_dead_one(stack, budget):
    h, _ = stack
    first = {s.name: s for s in h.supervisor.status(h.standins())}
    started = time.monotonic()
    again = {s.name: s for s in h.supervisor.up(h.standins())}
    budget("a warm `up` of the containers profile (everything reused)", time.monotonic() - started, 3.0)
    assert {n: (s.container, s.action) for n, s in again.items()} == {n: (s.container, "reused") for n, s in first.items()}

    containers.docker_client().containers.get(first["registry"].container).kill()
    assert {s.name: s.state for s in h.supervisor.status(h.standins())}["registry"] == "dead"
    healed = {s.name: s for s in h.supervisor.up(h.standins())}
    assert healed["registry"].action == "restarted" and healed["registry"].container != first["registry"].container
    assert not containers.exists(first["registry"].container)  # the dead one is removed, not left behind
    assert healed["mlflow"].container == first["mlflow"].container
    assert httpx.get(f"{h.endpoints()['registry']}/v2/").status_code == 401  # the front routes to the new one


def test_s3_answers_boto3_through_the_front(stack):
    import boto3

    h, _ = stack
    url = h.endpoints()["object_store"]
    assert url == f"http://127.0.0.1:{h.settings.standins.object_store.port}"  # the front's public port
    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                      aws_access_key_id=h.secret("secret:s3-access-key-id").reveal(),
                      aws_secret_access_key=h.secret("secret:s3-secret-access-key").reveal())
    key = f"it/{uuid.uuid4().hex}.bin"
    s3.put_object(Bucket=h.settings.buckets.data, Key=key, Body=b"\x00in a container\xff")
    assert s3.get_object(Bucket=h.settings.buckets.data, Key=key)["Body"].read() == b"\x00in a container\xff"


def test_registry_refuses_anonymous_and_takes_a_push(stack):
    h, _ = stack
    url = h.endpoints()["registry"]
    assert httpx.get(f"{url}/v2/").status_code == 401
    digest = h.artifact_registry.push_blob("lastmile/in-container", b"layer bytes")
    assert h.artifact_registry.has_blob("lastmile/in-container", digest)


def test_mlflow_answers_with_auth_and_proxies_artifacts_to_the_s3_container(stack):
    from mlflow.tracking import MlflowClient

    h, _ = stack
    url = h.endpoints()["mlflow"]
    password = h.secret(h.settings.ports.model_registry.password).reveal()
    search = f"{url}/api/2.0/mlflow/experiments/search"
    assert httpx.get(f"{url}/health").status_code == 200
    assert httpx.get(search, params={"max_results": 1}).status_code == 401
    assert httpx.get(search, params={"max_results": 1}, auth=("lastmile", password)).status_code == 200

    h.model_registry.by_alias("none", "champion")  # the adapter hands the credentials to MLflow's client
    client = MlflowClient(url)
    run = client.create_run(client.create_experiment(f"containers-{uuid.uuid4().hex[:8]}")).info
    client.log_text(run.run_id, "hello", "notes/hello.txt")
    keys = [ref.key for ref in h.object_store.list(h.settings.buckets.artifacts)]
    assert any(key.endswith(f"{run.run_id}/artifacts/notes/hello.txt") for key in keys), keys


def test_down_removes_exactly_its_containers(stack):
    """Runs last in this module: a stranger with a name and labels like ours survives `down`."""
    h, environ = stack
    state_dir = h.settings.state_dir
    recorded = {r.container for r in h.supervisor.running().values() if r.container}
    assert len(recorded) == 3
    client = containers.docker_client()
    stranger = client.containers.run(
        IMAGES["registry"], ["sleep", "300"], detach=True,
        name=containers.container_name(state_dir, "registry") + f"-stranger-{uuid.uuid4().hex[:6]}",
        labels={containers.OWNER_LABEL: f"lastmile-test-stranger-{uuid.uuid4().hex[:8]}"})
    try:
        result = _cli(environ, "down")
        assert result.returncode == 0, result.stdout + result.stderr
        gone = [cid for cid in recorded if containers.exists(cid)]
        assert gone == []
        stranger.reload()
        assert stranger.status == "running"
        assert not client.networks.list(names=[containers.network_name(state_dir)])
        status = _cli(environ, "status", "--json")
        assert {s["state"] for s in json.loads(status.stdout)} == {"stopped"}
    finally:
        stranger.remove(force=True)


def test_a_failed_start_leaves_no_container(images, tmp_path):
    """The registry "image" is the S3 stand-in's, which has no docker-registry: the container is created, cannot
    start, and is removed; so are the stand-ins started before it."""
    state_dir = tmp_path / ".lastmile"
    h = build(_settings(_environ(state_dir, LASTMILE_STANDINS__IMAGES__REGISTRY=IMAGES["object_store"])))
    try:
        with pytest.raises(UserError, match=r"registry: its container .* did not start: .*docker-registry"):
            h.supervisor.up(h.standins())
        assert _ours(state_dir) == []
        assert h.supervisor.running() == {}
        assert not containers.docker_client().networks.list(names=[containers.network_name(state_dir)])
    finally:
        h.supervisor.down()
        for leftover in _ours(state_dir):
            leftover.remove(force=True)


def test_a_missing_image_is_one_line_before_anything_starts(images, tmp_path):
    state_dir = tmp_path / ".lastmile"
    environ = _environ(state_dir, LASTMILE_STANDINS__IMAGES__MLFLOW=f"lastmile-no-such-image:{uuid.uuid4().hex[:8]}")
    result = _cli(environ, "up")
    assert result.returncode != 0
    assert "lastmile-no-such-image" in result.stderr and "scripts/build-images.sh" in result.stderr
    assert "Traceback" not in result.stderr
    assert _ours(state_dir) == []
    assert not (state_dir / "standins.json").exists() or json.loads((state_dir / "standins.json").read_text()) == {}


def _compose_cli() -> list[str] | None:
    """`docker compose` (v2) or `docker-compose` (Debian's v1), whichever answers."""
    for command in (["docker", "compose"], ["docker-compose"]):
        try:
            if subprocess.run([*command, "version"], capture_output=True, timeout=30).returncode == 0:
                return command
        except FileNotFoundError:
            continue
    return None


def test_lastmile_adopts_the_standins_compose_started_and_leaves_them_to_compose(images, tmp_path):
    compose_cli = _compose_cli()
    if compose_cli is None:
        pytest.skip("no compose CLI here (neither `docker compose` nor `docker-compose`); "
                    "tests/component/test_compose_file.py still checks the file")
    state_dir = tmp_path / ".lastmile"
    environ = _environ(state_dir)
    prepared = _cli(environ, "up", "--prepare-only")
    assert prepared.returncode == 0, prepared.stdout + prepared.stderr
    env_file = state_dir / "compose" / "compose.env"
    compose = [*compose_cli, "--env-file", str(env_file), "-f", str(ROOT / "compose" / "compose.yaml")]
    try:
        started = subprocess.run([*compose, "up", "-d", "--no-build"], capture_output=True, text=True, timeout=300)
        assert started.returncode == 0, started.stderr[-2000:]
        composed = {c.id for c in _ours(state_dir)}
        assert len(composed) == 3

        up = _cli(environ, "up")
        assert up.returncode == 0, up.stdout + up.stderr
        report = {s["name"]: s for s in json.loads(_cli(environ, "status", "--json").stdout)}
        assert {report[name]["container"] for name in IMAGES} == composed
        assert {report[name]["action"] for name in IMAGES} == {"adopted"}
        assert {s["state"] for s in report.values()} == {"healthy"}
        h = build(_settings(environ))
        assert httpx.get(f"{h.endpoints()['registry']}/v2/").status_code == 401  # through the front
        buckets = {b["Name"] for b in h.object_store._client.list_buckets()["Buckets"]}
        assert set(h.settings.buckets.model_dump().values()) <= buckets  # made at adoption, as at a start

        down = _cli(environ, "down")
        assert down.returncode == 0, down.stdout + down.stderr
        assert {c.id for c in _ours(state_dir) if c.status == "running"} == composed
    finally:
        subprocess.run([*compose, "down", "--timeout", "5"], capture_output=True, timeout=300)
        _cli(environ, "down")
        for leftover in _ours(state_dir):
            leftover.remove(force=True)
