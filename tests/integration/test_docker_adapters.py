"""The containers family's ImageBuilder ``docker`` and JobRunner ``container``, on the Docker engine and a real
registry stand-in (Debian's docker-registry with htpasswd auth, started here on a free port).

Builds start from the base image the builder chooses (python:3.11-slim when the engine has it, else the local
stand-in from ``scripts/local-base-image.sh``); the training image reuses Docker's layer cache, so only its
first build on a machine installs its requirements. Every image is pushed under a repository prefix of this
session's own and every container is labelled with its runner's state dir: both are removed at the end, whatever
happens, and nothing else is touched. Skipped, naming the reason, when no Docker engine answers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

from adapters.containers.builder import DockerImageBuilder, RegistryLogin
from adapters.containers.engine import STATE_DIR_LABEL, docker_client, state_dir_label
from adapters.containers.jobs import RUN_LABEL, ContainerJobRunner
from adapters.local.secrets import FileSecretStore
from adapters.local.standins import RegistryStandIn
from adapters.shared.distribution import DistributionRegistry
from harness.domain.errors import BuildFailed, UnreachableError, UserError
from harness.domain.records import JobSpec, JobState, SecretRef
from harness.infra.bundle import source_digest
from harness.infra.processes import free_port
from harness.infra.supervisor import Supervisor
from tests.contracts.image_builder import ImageBuilderContract
from tests.contracts.job_runner import GOING_DOWN, HELLO, JobRunnerContract

# A first build of the training image on a machine installs its requirements: minutes, not the default 300 s.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[2]
PASSWORD_REF = "secret:registry-password"
SECRET_VALUE = f"runner-secret-{uuid.uuid4().hex}"
MANIFEST_TYPES = ("application/vnd.docker.distribution.manifest.v2+json, "
                  "application/vnd.oci.image.manifest.v1+json")

JOB = f'''
import hashlib, json, os, sys, time, urllib.error, urllib.request
kind = sys.argv[1]
if kind == "succeed":
    print({HELLO!r})
elif kind == "fail":
    print({GOING_DOWN!r}, file=sys.stderr)
    sys.exit(3)
elif kind == "lines":
    print("\\n".join(f"line {{i}}" for i in range(1, 31)))
elif kind == "env":
    secret = os.environ.get("RUNNER_SECRET", "").encode()
    print(json.dumps({{"uid": os.getuid(), "runner_secret_sha256": hashlib.sha256(secret).hexdigest(),
                      "from_spec": os.environ.get("FROM_SPEC")}}))
elif kind == "probe":
    try:
        status = urllib.request.urlopen(sys.argv[2], timeout=5).status
    except urllib.error.HTTPError as exc:
        status = exc.code
    print(json.dumps({{"status": status}}))
else:
    print("hanging", flush=True)
    time.sleep(60)
'''

JOB_DOCKERFILE = """ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY contractjob /app/contractjob
USER 10001
ENTRYPOINT ["python", "-m", "contractjob.main"]
"""

PKG_DOCKERFILE = """ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
WORKDIR /app
COPY . /app/pkg/
USER 10001
ENTRYPOINT ["python", "-m", "pkg"]
"""


# the engine, the registry and clean-up --------------------------------------------------------------
@pytest.fixture(scope="module")
def client():
    try:
        engine = docker_client(timeout_s=300)
    except UnreachableError as exc:
        pytest.skip(f"no Docker engine answers: {exc}")
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def standin(tmp_path_factory, client):
    if not shutil.which("docker-registry"):
        pytest.fail("docker-registry is not on PATH: `make test` installs it (apt-get install docker-registry)")
    state = tmp_path_factory.mktemp("docker-adapters") / ".lastmile"
    secrets = FileSecretStore(state / "secrets.json")
    supervisor = Supervisor(state)
    [status] = supervisor.up([RegistryStandIn(free_port(), state, "lastmile", PASSWORD_REF, secrets)])
    try:
        yield status.url, secrets.resolve(SecretRef.parse(PASSWORD_REF)), state
    finally:
        supervisor.down()


@pytest.fixture(scope="module")
def registry(standin):
    url, password, _ = standin
    return DistributionRegistry(url, "lastmile", password, PASSWORD_REF)


@pytest.fixture(scope="module")
def login(standin):
    return RegistryLogin("lastmile", standin[1], PASSWORD_REF)


@pytest.fixture(scope="module")
def made(client, registry):
    """``made(prefix)``: note a repository prefix this module pushes under; every image tagged under it is
    removed at the end (the tags name this session's registry port, so no one else's image has them)."""
    prefixes: list[str] = []
    yield lambda prefix: prefixes.append(prefix) or prefix
    for prefix in prefixes:
        remove_images(client, f"{registry.registry}/{prefix}/")


def remove_images(client, under: str) -> None:
    """Remove every image named under ``under``: by tag, and by digest for those only pulled by digest."""
    import docker

    for image in client.images.list():
        names = [*image.tags, *(image.attrs.get("RepoDigests") or ())]
        for name in (name for name in names if name.startswith(under)):
            try:
                client.images.remove(name)
            except docker.errors.NotFound:
                pass  # gone with an earlier name of the same image


def remove_containers(client, state_dir: Path) -> None:
    for container in client.containers.list(all=True, filters={"label": f"{STATE_DIR_LABEL}="
                                                                        f"{state_dir_label(state_dir)}"}):
        container.remove(force=True)


def registry_digest(standin, repository: str, reference: str) -> str | None:
    """The digest the registry reports for a tag or digest (as ``docker pull`` asks it)."""
    url, password, _ = standin
    response = httpx.head(f"{url}/v2/{repository}/manifests/{reference}", auth=("lastmile", password.reveal()),
                          headers={"Accept": MANIFEST_TYPES}, timeout=10)
    return response.headers.get("docker-content-digest") if response.status_code == 200 else None


def image_config(registry, ref) -> dict:
    """An image's config, read from the registry by its manifest digest."""
    manifest = registry.fetch_manifest(ref.artifact.repository, ref.artifact.digest)
    return json.loads(registry.fetch_blob(ref.artifact.repository, manifest["config"]["digest"]))["config"]


class Spy:
    """Counts the builder's image builds (the engine's ``docker build``), passing each on."""

    def __init__(self, builder: DockerImageBuilder):
        self.builds = 0
        real = builder._build_image

        def counted(*args, **kwargs):
            self.builds += 1
            return real(*args, **kwargs)
        builder._build_image = counted  # type: ignore[method-assign]


# the training image through the builder -------------------------------------------------------------
@pytest.fixture(scope="module")
def builder(registry, login, standin, made):
    return DockerImageBuilder(registry, login, standin[2], made(f"it-{uuid.uuid4().hex[:8]}"))


@pytest.fixture(scope="module")
def training(builder):
    started = time.monotonic()
    ref = builder.build("training", ROOT / "training")
    return ref, time.monotonic() - started


def test_the_training_build_is_pushed_as_the_registrys_manifest_digest(training, builder, registry, standin):
    ref, seconds = training
    print(f"training image built and pushed in {seconds:.1f} s")
    assert ref.pushed and ref.run_id.startswith("build-")
    assert ref.artifact.registry == registry.registry
    assert ref.artifact.repository == builder.repository("training")
    tag = ref.source_digest.split(":")[1][:12]
    assert registry_digest(standin, ref.artifact.repository, tag) == ref.artifact.digest
    assert ref.source_digest == source_digest(ROOT / "training")  # what the bundle flavor calls the source
    config = image_config(registry, ref)
    assert config["Entrypoint"] == ["python", "-m", "training.train"] and config["User"] == "10001"
    assert config["Labels"]["lastmile.source-digest"] == ref.source_digest
    assert "pushed" in builder.log_tail(ref.run_id, 5)


def test_an_unchanged_context_is_neither_built_nor_pushed_again(training, builder, budget):
    spy = Spy(builder)
    started = time.monotonic()
    again = builder.build("training", ROOT / "training")
    budget("an unchanged training context, checked", time.monotonic() - started, 5.0)
    assert spy.builds == 0
    assert again.artifact == training[0].artifact and not again.pushed and again.run_id == ""


def test_an_image_the_registry_lacks_is_pushed_again_without_a_build(training, registry, login, standin, made):
    elsewhere = DockerImageBuilder(registry, login, standin[2], made(f"it-{uuid.uuid4().hex[:8]}"))
    spy = Spy(elsewhere)
    ref = elsewhere.build("training", ROOT / "training")
    assert spy.builds == 0 and ref.pushed
    assert ref.artifact.repository != training[0].artifact.repository
    assert registry_digest(standin, ref.artifact.repository, ref.artifact.digest) == ref.artifact.digest


def test_a_changed_context_gets_a_new_digest(training, builder, tmp_path):
    context = tmp_path / "training"
    shutil.copytree(ROOT / "training", context, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    with open(context / "train.py", "a") as source:
        source.write("\n# changed by test_a_changed_context_gets_a_new_digest\n")
    spy = Spy(builder)
    changed = builder.build("training", context)
    assert spy.builds == 1 and changed.pushed
    assert changed.source_digest != training[0].source_digest
    assert changed.artifact.digest != training[0].artifact.digest


def test_a_failing_build_raises_with_its_log_tail_and_no_secret(builder, tmp_path, standin):
    context = tmp_path / "broken"
    context.mkdir()
    (context / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo about to fail && exit 7\n")
    with pytest.raises(BuildFailed) as caught:
        builder.build("broken", context)
    message = str(caught.value)
    assert "about to fail" in message and "7" in message
    password = standin[1].reveal()
    assert password not in message
    assert all(password not in log.read_text() for log in (standin[2] / "builds").glob("*.log"))


def test_a_context_without_a_dockerfile_is_a_user_error(builder, tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(UserError, match="no Dockerfile"):
        builder.build("plain", tmp_path / "plain")


# the ImageBuilder contract -------------------------------------------------------------------------
class TestDockerImageBuilderContract(ImageBuilderContract):
    @pytest.fixture
    def builder(self, registry, login, standin, made):
        return DockerImageBuilder(registry, login, standin[2], made(f"contract-{uuid.uuid4().hex[:8]}"))

    @pytest.fixture
    def context(self, tmp_path):
        pkg = tmp_path / "pkg"
        pkg.mkdir()
        (pkg / "__main__.py").write_text(f"print('{uuid.uuid4().hex}')\n")
        (pkg / "Dockerfile").write_text(PKG_DOCKERFILE)
        return pkg

    @pytest.fixture
    def entrypoint(self, registry):
        def from_image_config(ref):
            words = image_config(registry, ref)["Entrypoint"]
            assert words[:2] == ["python", "-m"]
            return words[2]
        return from_image_config


# container jobs --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def job_image(tmp_path_factory, registry, login, standin, made):
    """A tiny job image (``python -m contractjob.main <kind>``) built by the builder and pushed."""
    context = tmp_path_factory.mktemp("jobimage")
    (context / "contractjob").mkdir()
    (context / "contractjob" / "__init__.py").write_text("")
    (context / "contractjob" / "main.py").write_text(JOB)
    (context / "Dockerfile").write_text(JOB_DOCKERFILE)
    return DockerImageBuilder(registry, login, standin[2], made(f"jobs-{uuid.uuid4().hex[:8]}")).build(
        "contractjob", context).artifact


@pytest.fixture
def runner(tmp_path, client, login):
    state = tmp_path / "state"
    made = ContainerJobRunner(state, login, env={"RUNNER_SECRET": SECRET_VALUE}, grace_s=2)
    try:
        yield made
    finally:
        remove_containers(client, state)


def containers_of(client, run_id: str) -> list:
    return client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})


class TestContainerJobRunnerContract(JobRunnerContract):
    @pytest.fixture
    def spec(self, job_image):
        return lambda kind: JobSpec(kind, job_image, args=(kind,), timeout_s=60)


def test_the_training_image_runs_by_digest_with_its_arguments(runner, training):
    run = runner.wait(runner.submit(JobSpec("train", training[0].artifact, ("--help",), timeout_s=120)).run_id, 120)
    assert (run.state, run.exit_code) == (JobState.SUCCEEDED, 0), runner.log_tail(run.run_id, 40)
    assert "--data-uri" in runner.log_tail(run.run_id, 60)


def test_env_reaches_the_job_as_its_user_and_is_written_nowhere(runner, job_image, client):
    run = runner.submit(JobSpec("env", job_image, ("env",), env={"FROM_SPEC": "spec-value"}, timeout_s=60))
    done = runner.wait(run.run_id, 60)
    assert done.state is JobState.SUCCEEDED, runner.log_tail(run.run_id, 40)
    assert runner.result(run.run_id) == {"uid": 10001, "from_spec": "spec-value",
                                         "runner_secret_sha256": hashlib.sha256(SECRET_VALUE.encode()).hexdigest()}
    assert "RUNNER_SECRET" in runner.log_tail(run.run_id, 50)  # its name is, its value is not
    for path in runner.state_dir.rglob("*"):
        if path.is_file():
            assert SECRET_VALUE not in path.read_text(errors="replace"), path
    assert containers_of(client, run.run_id) == []


def test_the_job_shares_the_hosts_loopback(runner, job_image, standin):
    run = runner.wait(runner.submit(JobSpec("probe", job_image, ("probe", f"{standin[0]}/v2/"))).run_id, 60)
    assert run.state is JobState.SUCCEEDED, runner.log_tail(run.run_id, 40)
    assert runner.result(run.run_id) == {"status": 401}  # the registry stand-in on 127.0.0.1 asked for a login


def test_a_job_over_its_time_limit_fails_and_its_container_goes(runner, job_image, client):
    run = runner.submit(JobSpec("hang", job_image, ("hang",), timeout_s=3))
    done = runner.wait(run.run_id, 30)
    assert (done.state, done.message) == (JobState.FAILED, "timed out after 3 s")
    assert "hanging" in runner.log_tail(run.run_id, 10)
    assert containers_of(client, run.run_id) == []


def test_cancel_removes_the_container_and_keeps_its_output(runner, job_image, client):
    run = runner.submit(JobSpec("hang", job_image, ("hang",), timeout_s=60))
    assert runner.wait(run.run_id, 0.5).state is JobState.IN_PROGRESS
    time.sleep(0.5)  # let it print
    started = time.monotonic()
    assert runner.cancel(run.run_id).state is JobState.CANCELED
    assert time.monotonic() - started < runner.grace_s + 1, "the job ignored SIGTERM: the stop waited for SIGKILL"
    assert containers_of(client, run.run_id) == []
    assert "hanging" in runner.log_tail(run.run_id, 10)


def test_a_container_killed_from_outside_ends_failed(runner, job_image, client):
    run = runner.submit(JobSpec("hang", job_image, ("hang",), timeout_s=60))
    [container] = containers_of(client, run.run_id)
    container.kill()
    done = runner.wait(run.run_id, 30)
    assert (done.state, done.exit_code) == (JobState.FAILED, 137)
    assert "137" in done.message


def test_a_container_removed_from_outside_ends_failed(runner, job_image, client):
    run = runner.submit(JobSpec("hang", job_image, ("hang",), timeout_s=60))
    [container] = containers_of(client, run.run_id)
    container.remove(force=True)
    done = runner.get(run.run_id)
    assert done.state is JobState.FAILED and "removed" in done.message


def test_the_record_names_the_jobs_own_process_for_process_faults(runner, job_image, client):
    run = runner.submit(JobSpec("hang", job_image, ("hang",), timeout_s=60))
    record = json.loads((runner.state_dir / "jobs" / run.run_id / "run.json").read_text())
    [container] = containers_of(client, run.run_id)
    if not psutil.pid_exists(container.attrs["State"]["Pid"]):
        pytest.skip("the engine's processes are not in this machine's process table (an engine in a VM)")
    try:
        process = psutil.Process(record["pid"])
        assert process.cmdline() == ["python", "-m", "contractjob.main", "hang"]
        assert process.create_time() == pytest.approx(record["created"])
        assert record["container_id"] == container.id
    finally:
        runner.cancel(run.run_id)


def job_process(runner, run_id: str, client) -> psutil.Process:
    """The job's own process as run.json names it (for the ``job:current`` process faults); skips when the engine's
    processes are not this machine's."""
    record = json.loads((runner.state_dir / "jobs" / run_id / "run.json").read_text())
    [container] = containers_of(client, run_id)
    if not psutil.pid_exists(container.attrs["State"]["Pid"]) or record.get("pid") is None:
        pytest.skip("the engine's processes are not in this machine's process table (an engine in a VM)")
    return psutil.Process(record["pid"])


def test_a_job_paused_as_the_hung_job_drill_does_times_out_and_leaves_nothing(runner, job_image, client):
    run = runner.submit(JobSpec("hang", job_image, ("hang",), timeout_s=3))
    process = job_process(runner, run.run_id, client)
    os.killpg(process.pid, signal.SIGSTOP)  # what the job:current pause fault sends
    done = runner.wait(run.run_id, 30)
    assert (done.state, done.message) == (JobState.FAILED, "timed out after 3 s")
    assert containers_of(client, run.run_id) == [] and not process.is_running()


def test_a_job_killed_as_the_killed_job_drill_does_ends_failed(runner, job_image, client):
    run = runner.submit(JobSpec("hang", job_image, ("hang",), timeout_s=60))
    os.killpg(job_process(runner, run.run_id, client).pid, signal.SIGKILL)  # the job:current kill fault
    done = runner.wait(run.run_id, 30)
    assert (done.state, done.exit_code) == (JobState.FAILED, 137)


def test_an_image_the_engine_lacks_is_pulled_with_the_registry_login(runner, job_image, client, tmp_path,
                                                                       registry, login, standin, made):
    context = tmp_path / "pulled"
    (context / "contractjob").mkdir(parents=True)
    (context / "contractjob" / "__init__.py").write_text("")
    (context / "contractjob" / "main.py").write_text(JOB + f"\n# {uuid.uuid4().hex}\n")
    (context / "Dockerfile").write_text(JOB_DOCKERFILE)
    prefix = made(f"pull-{uuid.uuid4().hex[:8]}")
    artifact = DockerImageBuilder(registry, login, standin[2], prefix).build("contractjob", context).artifact
    remove_images(client, f"{registry.registry}/{prefix}/")
    run = runner.wait(runner.submit(JobSpec("succeed", artifact, ("succeed",))).run_id, 120)
    assert run.state is JobState.SUCCEEDED, runner.log_tail(run.run_id, 40)
    assert HELLO in runner.log_tail(run.run_id, 5)


def test_a_digest_no_registry_holds_fails_the_run(runner, job_image):
    missing = type(job_image)(job_image.registry, job_image.repository, "sha256:" + "0" * 64)
    run = runner.submit(JobSpec("succeed", missing, ("succeed",)))
    done = runner.get(run.run_id)
    assert done.state is JobState.FAILED and "could not pull image" in done.message


# the flavors -----------------------------------------------------------------------------------------
def test_the_containers_profile_builds_both_adapters_from_config(standin, tmp_path):
    from harness.bootstrap import build
    from harness.config.settings import load_settings

    url, password, state = standin
    secrets = FileSecretStore(state / "secrets.json")
    for name in ("mlflow-password", "s3-access-key-id", "s3-secret-access-key"):
        secrets.ensure(SecretRef.parse(f"secret:{name}"))
    h = build(load_settings(ROOT / "lastmile.yaml", "containers", {
        "LASTMILE_STATE_DIR": str(tmp_path / ".lastmile"),
        "LASTMILE_PORTS__SECRET_STORE__PATH": str(state / "secrets.json"),
        "LASTMILE_PORTS__ARTIFACT_REGISTRY__ENDPOINT": url,
        "LASTMILE_PORTS__OBJECT_STORE__ENDPOINT": "http://127.0.0.1:9",
        "LASTMILE_PORTS__MODEL_REGISTRY__TRACKING_URI": "http://127.0.0.1:9",
        "LASTMILE_PORTS__IMAGE_BUILDER__BASE_IMAGE": "lastmile/python:3.11-slim-local"}))
    builder, runner = h.image_builder, h.job_runner
    assert isinstance(builder, DockerImageBuilder) and isinstance(runner, ContainerJobRunner)
    assert builder.repository("training") == "lastmile/training" and builder.base_image.endswith("slim-local")
    assert (builder.login.username, builder.login.password.reveal()) == ("lastmile", password.reveal())
    assert runner.env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:9" and "AWS_SECRET_ACCESS_KEY" in runner.env
    assert runner.max_timeout_s == h.settings.ports.job_runner.timeout_s
    assert runner.state_dir == h.settings.state_dir


def test_the_training_image_trains_in_a_container_against_the_stand_ins(stack, client):
    """Stage 4 as the containers profile runs it: the image the docker builder pushed to the stand-ins' registry
    (through the fault proxy), run by digest with the pipeline's arguments, reaches MLflow and object storage on
    127.0.0.1 and registers a model version."""
    from adapters.containers.flavors import ContainerJobs, DockerBuilder
    from harness.pipeline import datasets

    registry = stack.artifact_registry.registry
    try:
        training = DockerBuilder(flavor="docker").build(stack).build("training", ROOT / "training")
        runner = ContainerJobs(flavor="container").build(stack)
        dataset, _ = datasets.seed(stack.object_store, stack.settings.buckets.data)
        name = f"container-model-{uuid.uuid4().hex[:8]}"
        result_key = f"results/{name}/training.json"
        args = ("--data-uri", dataset.uri, "--data-sha256", dataset.sha256, "--model-name", name,
                "--experiment", "lastmile-it", "--git-commit", "0" * 40, "--build-digest", training.artifact.digest,
                "--result-uri", f"s3://{stack.settings.buckets.data}/{result_key}")
        run = runner.wait(runner.submit(JobSpec("train", training.artifact, args, timeout_s=240)).run_id, 240)
        assert run.state is JobState.SUCCEEDED, runner.log_tail(run.run_id, 40)
        result = json.loads(stack.object_store.get(stack.settings.buckets.data, result_key))
        assert stack.model_registry.get_version(name, str(result["model_version"])).name == name
        assert containers_of(client, run.run_id) == []
    finally:
        remove_containers(client, stack.settings.state_dir)
        remove_images(client, f"{registry}/")
