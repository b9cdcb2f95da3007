"""Every port's contract, run against its in-memory fake (and the local adapters that need no process)."""

from __future__ import annotations

import inspect

import pytest

from adapters.local.bundle_builder import BundleImageBuilder
from adapters.local.logsink import JsonlLogSink
from adapters.local.secrets import FileSecretStore
from harness.domain import ports
from harness.domain.records import ArtifactRef, DeploymentSpec, FaultSpec, JobSpec, ModelVersion, Reference
from tests.contracts import unique
from tests.contracts.artifact_registry import ArtifactRegistryContract
from tests.contracts.deployer import DeployerContract
from tests.contracts.fault_injector import FaultInjectorContract
from tests.contracts.image_builder import ImageBuilderContract
from tests.contracts.job_runner import GOING_DOWN, HELLO, JobRunnerContract
from tests.contracts.log_sink import LogSinkContract
from tests.contracts.model_registry import ModelRegistryContract
from tests.contracts.object_store import ObjectStoreContract
from tests.contracts.secret_store import SecretStoreContract
from tests.contracts.source_trigger import SourceTriggerContract
from tests.fakes import (
    MemoryDeployer,
    MemoryFaultInjector,
    MemoryJobRunner,
    MemoryLogSink,
    MemoryModelRegistry,
    MemoryObjectStore,
    MemoryRegistry,
    MemorySecretStore,
    MemorySourceTrigger,
)

FAKES = {
    "object_store": MemoryObjectStore,
    "artifact_registry": MemoryRegistry,
    "image_builder": lambda: BundleImageBuilder(MemoryRegistry()),
    "job_runner": MemoryJobRunner,
    "model_registry": MemoryModelRegistry,
    "deployer": MemoryDeployer,
    "secret_store": MemorySecretStore,
    "log_sink": MemoryLogSink,
    "source_trigger": MemorySourceTrigger,
    "fault_injector": MemoryFaultInjector,
}


def test_every_port_has_a_fake():
    assert set(FAKES) == set(ports.PORTS)


@pytest.mark.parametrize("port", sorted(ports.PORTS))
def test_each_fake_has_its_port_s_methods_with_the_same_parameters(port):
    fake, protocol = FAKES[port](), ports.PORTS[port]
    assert isinstance(fake, protocol)
    for name, member in vars(protocol).items():
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            assert isinstance(getattr(type(fake), name), property), name
        else:
            expected = list(inspect.signature(member).parameters)[1:]
            assert list(inspect.signature(getattr(fake, name)).parameters) == expected, name


class TestMemoryObjectStore(ObjectStoreContract):
    @pytest.fixture
    def store(self):
        return MemoryObjectStore()

    @pytest.fixture
    def bucket(self, store):
        store.ensure_bucket("contract-bucket")
        return "contract-bucket"

    @pytest.fixture
    def missing_bucket(self):
        return "no-such-bucket"

    @pytest.fixture
    def tamper(self, store):
        def change(bucket, key, data):
            store.objects[bucket, key] = data
        return change


class TestMemoryRegistry(ArtifactRegistryContract):
    @pytest.fixture
    def registry(self):
        return MemoryRegistry()

    @pytest.fixture
    def repo(self):
        return unique("repo")


class TestBundleBuilderOverMemoryRegistry(ImageBuilderContract):
    @pytest.fixture
    def registry(self):
        return MemoryRegistry()

    @pytest.fixture
    def builder(self, registry):
        return BundleImageBuilder(registry, "contract")

    @pytest.fixture
    def context(self, tmp_path):
        pkg = tmp_path / "pkg"
        pkg.mkdir()
        (pkg / "__main__.py").write_text("print('hello')\n")
        return pkg


def _behaviour(spec: JobSpec):
    if spec.name == "succeed":
        return 0, HELLO
    if spec.name == "fail":
        return 3, GOING_DOWN
    if spec.name == "lines":
        return 0, "\n".join(f"line {i}" for i in range(1, 31))
    return None  # hang


class TestMemoryJobRunner(JobRunnerContract):
    @pytest.fixture
    def runner(self):
        return MemoryJobRunner(_behaviour)

    @pytest.fixture
    def spec(self):
        return lambda kind: JobSpec(kind, ArtifactRef("memory.invalid", "jobs", "sha256:" + "0" * 64))


class TestMemoryModelRegistry(ModelRegistryContract):
    @pytest.fixture
    def registry(self):
        return MemoryModelRegistry()

    @pytest.fixture
    def add_version(self, registry):
        return lambda name, tags=None: registry.register(name, f"s3://contract/{name}", tags=tags)

    @pytest.fixture
    def add_version_with_files(self, registry):
        return lambda name, files, tags: registry.register(name, f"s3://contract/{name}", tags=tags, files=files)

    @pytest.fixture
    def corrupt(self, registry):
        def corrupt(name, version, path, data):
            registry.files[name, version][path] = data
        return corrupt


def _spec(name: str, digest: str) -> DeploymentSpec:
    model = ModelVersion("model", "1", None, "s3://contract/model")
    return DeploymentSpec(name, ArtifactRef("memory.invalid", "serving", digest), model, Reference(({"x": 1.0},), (0,)))


class TestMemoryDeployer(DeployerContract):
    @pytest.fixture
    def deployer(self):
        fake = MemoryDeployer()
        fake.broken.add(("sha256:" + "b" * 64, "1"))
        return fake

    @pytest.fixture
    def name(self):
        return unique("deployment")

    @pytest.fixture
    def good_spec(self):
        return lambda name: _spec(name, "sha256:" + "a" * 64)

    @pytest.fixture
    def broken_spec(self):
        return lambda name: _spec(name, "sha256:" + "b" * 64)


class TestMemorySecretStore(SecretStoreContract):
    @pytest.fixture
    def store(self):
        return MemorySecretStore()

    @pytest.fixture
    def scheme(self):
        return "secret"


class TestFileSecretStore(SecretStoreContract):
    @pytest.fixture
    def store(self, tmp_path):
        return FileSecretStore(tmp_path / "secrets.json")

    @pytest.fixture
    def scheme(self):
        return "secret"


class TestMemoryLogSink(LogSinkContract):
    @pytest.fixture
    def sink(self):
        return MemoryLogSink()


class TestJsonlLogSink(LogSinkContract):
    @pytest.fixture
    def sink(self, tmp_path):
        return JsonlLogSink(tmp_path / "events.jsonl")


class TestMemorySourceTrigger(SourceTriggerContract):
    @pytest.fixture
    def trigger(self):
        return MemorySourceTrigger()

    @pytest.fixture
    def commit(self, trigger):
        def add(paths):
            sha = f"{len(trigger.commits) + 1:040x}"
            trigger.commits.append((sha, tuple(paths)))
            return sha
        return add


class TestMemoryFaultInjector(FaultInjectorContract):
    @pytest.fixture
    def injector(self):
        return MemoryFaultInjector()

    @pytest.fixture
    def harmless_fault(self):
        return FaultSpec("network", "mlflow", "latency", {"latency": 10})

    @pytest.fixture
    def make_it_meet(self, injector):
        def meet(handle):
            injector.met[handle.id] = "3 connections through the mlflow proxy"
        return meet
