"""standins.mode containers, without a Docker engine: which stand-ins run in containers and how, names and labels
per state dir, the state the supervisor keeps for a container, and what `down` removes (the engine faked where
the supervisor asks it)."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from adapters.containers.standins import InContainer
from harness.bootstrap import build
from harness.config.settings import load_settings
from harness.domain.errors import ConfigError, UserError
from harness.infra import containers
from harness.infra.standin import Endpoints, StandIn, network_alias
from harness.infra.supervisor import Running, Supervisor

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "lastmile.yaml"
IMAGES = {"object_store": "lastmile-objectstore:dev", "registry": "lastmile-registry:dev", "mlflow": "lastmile-mlflow:dev"}


def _harness(tmp_path, **environ: str):
    return build(load_settings(CONFIG, "containers", environ={"LASTMILE_STATE_DIR": str(tmp_path), **environ}))


def test_the_s3_registry_and_mlflow_standins_run_in_their_images_the_front_and_controller_as_processes(tmp_path):
    standins = _harness(tmp_path).standins()
    assert [s.name for s in standins] == ["faults", "object_store", "registry", "mlflow", "deployer"]
    assert {s.name: s.image for s in standins} == {**IMAGES, "faults": None, "deployer": None}


def test_the_images_are_config(tmp_path):
    standins = _harness(tmp_path, LASTMILE_STANDINS__IMAGES__MLFLOW="example.org/mlflow:3").standins()
    assert {s.name: s.image for s in standins}["mlflow"] == "example.org/mlflow:3"
    with pytest.raises(ConfigError, match="images"):
        _harness(tmp_path, LASTMILE_STANDINS__IMAGES__KAFKA="kafka:4")


class Echo(StandIn):
    """A process stand-in as the local family writes them: host interpreter, loopback, a peer's URL."""

    name = "echo"
    start_timeout_s = 42.0

    def command(self, port, endpoints):
        return [sys.executable, "-m", "echo", "--host", "127.0.0.1", "--port", str(port), "--peer", endpoints["peer"]]

    def environment(self, endpoints):
        return {"PEER_URL": endpoints["peer"], "TOKEN": "t0k3n"}


def test_in_a_container_the_command_is_the_processs_with_the_images_python_on_every_interface(tmp_path):
    inner = Echo(7000, tmp_path)
    boxed = InContainer(inner, "echo:dev", lambda port: {"LISTEN": f"0.0.0.0:{port}"})
    spec = boxed.container(7001, Endpoints({"peer": "http://peer:7002"}))
    assert spec.image == "echo:dev"
    assert spec.command == ("python", "-m", "echo", "--host", "0.0.0.0", "--port", "7001", "--peer", "http://peer:7002")
    assert spec.environment == {"PEER_URL": "http://peer:7002", "TOKEN": "t0k3n", "LISTEN": "0.0.0.0:7001"}
    assert spec.mounts == (tmp_path / "echo",)
    assert (boxed.name, boxed.home, boxed.start_timeout_s) == ("echo", inner.home, 42.0)
    assert "t0k3n" not in repr(spec)


def test_the_registry_container_listens_on_every_interface(tmp_path):
    registry = {s.name: s for s in _harness(tmp_path).standins()}["registry"]
    spec = registry.container(5100, Endpoints({}))
    assert spec.command == ("docker-registry", "serve", str(tmp_path / "registry" / "config.yml"))
    assert spec.environment == {"REGISTRY_HTTP_ADDR": "0.0.0.0:5100"}


def test_names_and_labels_are_per_state_dir(tmp_path):
    a, b = tmp_path / "a" / ".lastmile", tmp_path / "b" / ".lastmile"
    assert containers.state_key(a) != containers.state_key(b)
    assert containers.state_key(a) == containers.state_key(tmp_path / "a" / "x" / ".." / ".lastmile")
    assert re.fullmatch(r"lastmile-[0-9a-f]{12}-object-store", containers.container_name(a, "object_store"))
    assert containers.labels(a, "mlflow") == {"lastmile.state-dir": containers.state_key(a), "lastmile.standin": "mlflow",
                                              "lastmile.owner": f"lastmile-standins-{containers.state_key(a)}"}
    assert network_alias("object_store") == "object-store"


def test_a_container_is_published_on_loopback_at_its_own_port_as_the_host_user(tmp_path):
    spec = InContainer(Echo(7000, tmp_path), "echo:dev").container(7001, Endpoints({"peer": "x"}))
    options = containers.run_options(spec, name="echo", state_dir=tmp_path, port=7001, aliases=["echo"])
    assert options.ports == {"7001/tcp": ("127.0.0.1", 7001)}
    assert options.volumes == {str(tmp_path / "echo"): str(tmp_path / "echo")}
    assert re.fullmatch(r"\d+:\d+", options.user)


def _running(name: str, container: str = "", adopted: bool = False, tmp_path: Path = Path("/nowhere")) -> Running:
    return Running(name, 0 if container else 999_999, 0.0, 9000, "http://127.0.0.1:9000",
                   str(tmp_path / "logs" / f"{name}.log"), str(tmp_path / name), {name: [9000, 9001]},
                   "http://127.0.0.1:9001", container=container, adopted=adopted)


def _save(state_dir: Path, *runs: Running) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "standins.json").write_text(json.dumps({r.name: asdict(r) for r in runs}))


def test_a_state_file_from_before_containers_still_loads(tmp_path):
    old = {k: v for k, v in asdict(_running("registry")).items() if k not in ("container", "adopted")}
    (tmp_path / "standins.json").write_text(json.dumps({"registry": old}))
    assert Supervisor(tmp_path).running() == {}  # pid 999999 is nobody's
    assert Supervisor(tmp_path)._load()["registry"].container == ""


class Engine:
    """The Docker engine as the supervisor sees it: which container ids run; what was removed."""

    def __init__(self, monkeypatch, running: set[str]):
        self.running, self.removed, self.networks_removed = running, [], 0
        monkeypatch.setattr(containers, "running", lambda cid: cid in self.running)
        monkeypatch.setattr(containers, "remove", lambda ids, logs, timeout=10.0: self.removed.extend(ids))
        monkeypatch.setattr(containers, "remove_network", self._network)

    def _network(self, state_dir):
        self.networks_removed += 1


def test_status_reports_a_container_by_id_and_no_pid(tmp_path, monkeypatch):
    Engine(monkeypatch, running=set())
    _save(tmp_path, _running("object_store", container="c0ffee", tmp_path=tmp_path))
    h = _harness(tmp_path)
    (status,) = [s for s in h.supervisor.status(h.standins()) if s.name == "object_store"]
    assert (status.state, status.pid, status.container) == ("dead", None, "c0ffee")
    assert set(asdict(status)) == {"name", "state", "url", "pid", "log", "action", "container"}


def test_down_removes_exactly_the_containers_it_started_and_leaves_composes(tmp_path, monkeypatch):
    engine = Engine(monkeypatch, running={"ours1", "ours2", "composes"})
    _save(tmp_path, _running("object_store", "ours1", tmp_path=tmp_path), _running("registry", "ours2", tmp_path=tmp_path),
          _running("mlflow", "composes", adopted=True, tmp_path=tmp_path))
    assert Supervisor(tmp_path).down() == ["mlflow", "object_store", "registry"]
    assert sorted(engine.removed) == ["ours1", "ours2"]
    assert engine.networks_removed == 1
    assert Supervisor(tmp_path)._load() == {}


def test_the_processes_profile_never_asks_docker(tmp_path, monkeypatch):
    def no_docker(*args, **kwargs):
        raise AssertionError("the processes profile asked Docker")

    monkeypatch.setattr(containers, "docker_client", no_docker)
    _save(tmp_path, _running("registry", tmp_path=tmp_path))
    h = build(load_settings(CONFIG, "local", environ={"LASTMILE_STATE_DIR": str(tmp_path)}))
    assert {s.name: s.state for s in h.supervisor.status(h.standins())}["registry"] == "dead"


def test_a_container_that_exits_during_start_is_reported_like_a_process(monkeypatch):
    states = {"up": {"Running": True}, "crashed": {"Running": False, "ExitCode": 3}}
    monkeypatch.setattr(containers, "inspect_state", states.get)
    assert containers.Handle("up").poll() is None
    assert containers.Handle("crashed").poll() == 3
    assert containers.Handle("gone").poll() == -1


def test_preparing_for_compose_needs_container_standins_that_are_not_up(tmp_path):
    local = build(load_settings(CONFIG, "local", environ={"LASTMILE_STATE_DIR": str(tmp_path)}))
    with pytest.raises(UserError, match="no stand-in of this profile runs in a container"):
        local.supervisor.prepare(local.standins())
    _save(tmp_path, _running("mlflow", "abc", adopted=True, tmp_path=tmp_path))
    h = _harness(tmp_path)
    with pytest.raises(UserError, match="mlflow already up"):
        h.supervisor.prepare(h.standins())


# the images ----------------------------------------------------------------------------------------------------
def _pins(path: Path) -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return {re.sub(r"[-_.]+", "-", name).lower(): version
            for name, _, version in (line.partition("==") for line in lines if "==" in line)}


@pytest.mark.parametrize("image,must", [("objectstore", {"moto", "flask", "boto3"}),
                                        ("mlflow", {"mlflow", "flask-wtf", "boto3", "sqlalchemy", "alembic"})])
def test_the_standin_images_pin_what_constraints_pins(image, must):
    pins = _pins(ROOT / "compose" / "images" / image / "requirements.txt")
    constraints = _pins(ROOT / "constraints.txt")
    assert must <= set(pins)
    assert {name: pins[name] for name in pins} == {name: constraints.get(name) for name in pins}


@pytest.mark.parametrize("image,base", [("objectstore", "python:3.11-slim"), ("mlflow", "python:3.11-slim"),
                                        ("registry", "debian:bookworm-slim")])
def test_the_standin_images_take_their_base_as_an_argument_and_keep_no_caches(image, base):
    dockerfile = (ROOT / "compose" / "images" / image / "Dockerfile").read_text()
    assert f"ARG BASE_IMAGE={base}\nFROM ${{BASE_IMAGE}}" in dockerfile
    if image == "registry":
        assert "--no-install-recommends docker-registry" in dockerfile and "rm -rf /var/lib/apt/lists/*" in dockerfile
    else:
        assert "PIP_NO_CACHE_DIR=1" in dockerfile and "pip install --no-deps -r" in dockerfile
