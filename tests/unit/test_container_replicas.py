"""The container runtime's pieces without an engine: the ``docker run`` of a replica (names, labels, environment by
name only, the model copy mounted read-only), exit statuses, the checks that refuse a revision, the client's deploy
request, the ``docker`` deployer flavor's wiring, and what ``doctor`` says of ``kind``."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tempfile
from pathlib import Path

import pytest

from adapters.containers import flavors as containers_flavors
from adapters.local.deployer.client import LocalDeployer
from adapters.local.deployer.containers import (
    LABEL_DEPLOYMENT,
    LABEL_OWNER,
    LABEL_REPLICA,
    LABEL_STATE_DIR,
    CannotRun,
    ContainerRuntime,
    _after_registry,
    exit_status,
    state_key,
)
from adapters.local.flavors import DockerDeployer
from adapters.local.flavors import LocalDeployer as LocalDeployerConfig
from adapters.local.standins import DeployerStandIn
from harness.config.settings import load_settings
from harness.domain.records import ArtifactRef, DeploymentSpec, ModelVersion, Reference, Secret
from harness.infra.standin import Endpoints

CONFIG = Path(__file__).resolve().parents[2] / "lastmile.yaml"
IMAGE = "127.0.0.1:5055/lastmile/serving@sha256:" + "a" * 64
SECRET_VALUE = "s3cr3t-value-never-on-a-command-line"


def _command(tmp_path: Path, interactive: bool = False, environ: dict[str, str] | None = None):
    runtime = ContainerRuntime(tmp_path / "deployer", "iris")
    model_dir = str(tmp_path / "models" / "iris" / "1")
    replica_env = {"LASTMILE_SERVING_MODEL_DIR": model_dir, "LASTMILE_SERVING_REPLICA": "iris-r1-1",
                   "LASTMILE_SERVING_REFERENCE": '{"rows": [], "predictions": []}',
                   "MLFLOW_TRACKING_URI": "http://127.0.0.1:5555"}
    environ = environ if environ is not None else {
        "PATH": "/usr/bin", "HOME": "/root", "DOCKER_HOST": "unix:///var/run/docker.sock",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": SECRET_VALUE,
        "MLFLOW_TRACKING_PASSWORD": SECRET_VALUE, "LASTMILE_SERVING_S3_ENDPOINT": "http://127.0.0.1:9900",
        "UNRELATED": "stays on the host"}
    run = runtime.command(IMAGE, "iris-r1-1", ["--port", "41000"], replica_env, interactive, environ=environ)
    return runtime, run, model_dir


def test_a_replica_runs_the_image_with_pythons_server_on_loopback_of_the_hosts_network(tmp_path):
    _, run, _ = _command(tmp_path)
    argv = run.argv
    assert argv[:2] == ["docker", "run"]
    for flag in ("--rm", "--init"):
        assert flag in argv
    assert argv[argv.index("--pull") + 1] == "never"
    assert argv[argv.index("--network") + 1] == "host"
    assert argv[-8:] == [IMAGE, "python", "-m", "serving", "--host", "127.0.0.1", "--port", "41000"]
    assert "--user" not in argv and "-u" not in argv  # the image's own user
    assert "--interactive" not in argv


def test_the_standby_keeps_its_stdin_attached(tmp_path):
    _, run, _ = _command(tmp_path, interactive=True)
    assert "--interactive" in run.argv


def test_it_is_named_and_labelled_after_its_deployment_replica_and_state_dir(tmp_path):
    _, run, _ = _command(tmp_path)
    labels = dict(run.argv[i + 1].split("=", 1) for i, a in enumerate(run.argv) if a == "--label")
    key = hashlib.sha256(str((tmp_path / "deployer").resolve()).encode()).hexdigest()[:12]
    assert labels == {LABEL_DEPLOYMENT: "iris", LABEL_REPLICA: "iris-r1-1", LABEL_STATE_DIR: key, LABEL_OWNER: key}
    assert run.argv[run.argv.index("--name") + 1] == run.name
    assert run.name.startswith("lastmile-iris-r1-1-") and len(run.name) == len("lastmile-iris-r1-1-") + 6


def test_each_start_gets_a_name_of_its_own(tmp_path):
    runtime = ContainerRuntime(tmp_path, "my deployment")
    names = {runtime.container_name("my deployment-r1-1") for _ in range(20)}
    assert len(names) == 20
    assert all(n.startswith("lastmile-my-deployment-r1-1-") for n in names)


def test_environment_values_reach_the_client_never_its_command_line(tmp_path):
    _, run, _ = _command(tmp_path)
    assert SECRET_VALUE not in " ".join(run.argv)
    assert "AKIDEXAMPLE" not in " ".join(run.argv)
    names = [run.argv[i + 1] for i, a in enumerate(run.argv) if a == "--env"]
    assert all("=" not in n for n in names)
    # what a serving process reads, from the revision, the replica and the controller's environment
    assert set(names) == {"LASTMILE_SERVING_MODEL_DIR", "LASTMILE_SERVING_REPLICA", "LASTMILE_SERVING_REFERENCE",
                          "MLFLOW_TRACKING_URI", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                          "MLFLOW_TRACKING_PASSWORD", "LASTMILE_SERVING_S3_ENDPOINT"}
    assert run.env["AWS_SECRET_ACCESS_KEY"] == SECRET_VALUE
    # the host's own variables stay the client's: its PATH would break the image's
    assert {"PATH", "HOME", "UNRELATED"}.isdisjoint(names)
    assert run.env["DOCKER_HOST"] == "unix:///var/run/docker.sock"


def test_the_revision_and_replica_win_over_the_controllers_environment(tmp_path):
    _, run, _ = _command(tmp_path, environ={"LASTMILE_SERVING_REPLICA": "from-the-controller"})
    assert run.env["LASTMILE_SERVING_REPLICA"] == "iris-r1-1"


def test_the_model_copy_is_mounted_read_only_at_its_own_path(tmp_path):
    _, run, model_dir = _command(tmp_path)
    volumes = [run.argv[i + 1] for i, a in enumerate(run.argv) if a == "--volume"]
    assert volumes == [f"{model_dir}:{model_dir}:ro"]


def test_a_revision_without_an_image_is_refused(tmp_path):
    with pytest.raises(CannotRun, match="needs the deploy request's `image`"):
        ContainerRuntime(tmp_path, "iris").command("", "iris-r1-1", [], {}, False, environ={})


@pytest.mark.parametrize("code,status", [(None, None), (0, 0), (3, 3), (125, 125), (137, -9), (143, -15),
                                         (-9, -9), (255, 255)])
def test_a_containers_death_by_signal_reads_as_a_processs(code, status):
    assert exit_status(code) == status


def test_the_state_key_is_the_state_dirs_and_stable(tmp_path):
    assert state_key(tmp_path / "a") == state_key(tmp_path / "a" / ".." / "a")
    assert state_key(tmp_path / "a") != state_key(tmp_path / "b")


@pytest.mark.parametrize("reference,rest", [
    ("127.0.0.1:5055/lastmile/serving@sha256:ab", "lastmile/serving@sha256:ab"),
    ("registry.example.com/lastmile/serving@sha256:ab", "lastmile/serving@sha256:ab"),
    ("lastmile/serving@sha256:ab", None),
    ("sha256:ab", None),
])
def test_a_reference_by_digest_is_compared_without_its_registry_address(reference, rest):
    assert _after_registry(reference) == rest


def test_a_model_copy_the_images_user_cannot_read_is_refused():
    root = Path(tempfile.mkdtemp(prefix="lastmile-unit-"))  # pytest's own tmp dirs are private (0700)
    try:
        model = root / "models" / "iris" / "1"
        model.mkdir(parents=True)
        (model / "MLmodel").write_text("flavors: {}")
        for directory in [root, root / "models", model.parent, model]:
            directory.chmod(0o755)
        (model / "MLmodel").chmod(0o644)
        ContainerRuntime.check_model_dir(str(model))  # readable by anyone: accepted
        (model / "MLmodel").chmod(0o600)
        with pytest.raises(CannotRun, match="chmod -R o\\+rX"):
            ContainerRuntime.check_model_dir(str(model))
        (model / "MLmodel").chmod(0o644)
        (root / "models").chmod(0o700)
        with pytest.raises(CannotRun, match="not searchable by other users"):
            ContainerRuntime.check_model_dir(str(model))
    finally:
        shutil.rmtree(root, ignore_errors=True)


class _Recorder(LocalDeployer):
    def __init__(self, tmp_path: Path, runtime: str):
        super().__init__("http://127.0.0.1:1", Secret("token"), registry=None, bundles_dir=tmp_path / "bundles",
                         env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:5555"}, timeout_s=1, runtime=runtime)
        self.calls: list[dict] = []
        self.model_copy = tmp_path / "models" / "iris" / "1"
        self.model_copy.mkdir(parents=True)
        (self.model_copy / "MLmodel").write_text("flavors: {}")
        (self.model_copy / "MLmodel").chmod(0o600)

    def _model_dir(self, model):
        return self.model_copy

    def _bundle(self, spec):
        raise AssertionError("a container deployer pulls no bundle")

    def _call(self, method, path, **kwargs):
        self.calls.append(kwargs["json"])
        return {"revision": {"number": 1, "serving_digest": "sha256:" + "a" * 64, "model_version": "1"}}


def test_a_container_deployers_request_names_the_image_and_pulls_no_bundle(tmp_path):
    client = _Recorder(tmp_path, "container")
    artifact = ArtifactRef("127.0.0.1:5055", "lastmile/serving", "sha256:" + "a" * 64)
    spec = DeploymentSpec("iris", artifact, ModelVersion("iris", "1", "run", "source", {}), Reference((), ()), 2)
    client.deploy(spec)
    body = client.calls[0]
    assert body["image"] == str(artifact) == IMAGE
    assert "bundle_dir" not in body
    assert body["env"]["LASTMILE_SERVING_MODEL_DIR"] == str(client.model_copy)
    assert (client.model_copy / "MLmodel").stat().st_mode & 0o004  # readable by the image's user now


def test_the_containers_profiles_deployer_is_the_docker_flavor_with_container_replicas(tmp_path):
    settings = load_settings(CONFIG, "containers", environ={"LASTMILE_STATE_DIR": str(tmp_path)})
    deployer = settings.ports.deployer
    assert isinstance(deployer, DockerDeployer) and isinstance(deployer, LocalDeployerConfig)
    assert deployer.runtime == "container" and DockerDeployer.built()
    assert LocalDeployerConfig.runtime == "process"


@pytest.mark.parametrize("profile,runtime", [("containers", "container"), ("local", "process")])
def test_the_deployer_stand_in_starts_the_controller_with_the_flavors_runtime(tmp_path, profile, runtime):
    settings = load_settings(CONFIG, profile, environ={"LASTMILE_STATE_DIR": str(tmp_path)})
    standin = DeployerStandIn(5070, tmp_path, 8080, "lastmile", settings.ports.deployer, secrets=None)
    command = standin.command(5070, Endpoints({}))
    assert command[command.index("--runtime") + 1] == runtime


def test_doctor_says_what_kind_lacks_and_which_deployer_is_available(monkeypatch):
    monkeypatch.setattr(containers_flavors, "_node_image", lambda: "not in the Docker engine")
    monkeypatch.setattr("shutil.which", lambda name: None)
    ports = [("deployer", containers_flavors.KindDeployer(flavor="kind"))]
    [said] = containers_flavors._doctor(ports)
    assert "needs the `kind` binary (not on PATH) and its node image kindest/node (not in the Docker engine)" in said
    assert "the deployer flavor `docker`" in said and "is the one available" in said
    assert containers_flavors._doctor([("deployer", DockerDeployer(flavor="docker"))]) == []


def test_a_standby_container_activated_writes_to_its_replicas_log(tmp_path):
    """The order a container standby gets names no log file (it cannot open the controller's): its output keeps
    coming to the controller, which switches it to the replica's log."""
    from adapters.local.deployer.replicas import Launcher, Replica, RevisionSpec, Standby

    class Stdin:
        def __init__(self):
            self.written = b""

        def write(self, data):
            self.written += data

        async def drain(self):
            pass

        def close(self):
            pass

    class FakeContainer:
        pid, returncode, stdin = 1, None, Stdin()

    async def go():
        launcher = Launcher(tmp_path / "logs", lambda: None, containers=None)
        standby = Standby(1, FakeContainer(), sink=tmp_path / "logs" / "iris-standby.log")  # type: ignore[arg-type]
        pod = Replica("iris-r1-1", 1, 41000)
        await launcher.start(RevisionSpec(1, "sha256:x", "", "iris", "1", image=IMAGE), pod, standby)
        return standby

    standby = asyncio.run(go())
    assert b'"log": ""' in standby.proc.stdin.written
    assert standby.sink == tmp_path / "logs" / "iris-r1-1.log"
