"""Every port's contract against the real adapters on the real stand-ins (the fakes pass the same ones)."""

from __future__ import annotations

import uuid

import pytest

from adapters.local.bundle_builder import BundleImageBuilder
from adapters.local.flavors import LocalDeployer
from adapters.local.standins import DeployerStandIn
from harness.infra.processes import free_port
from harness.infra.supervisor import Supervisor
from tests.contracts import unique
from tests.contracts.artifact_registry import ArtifactRegistryContract
from tests.contracts.image_builder import ImageBuilderContract
from tests.contracts.model_registry import ModelRegistryContract
from tests.contracts.object_store import ObjectStoreContract
from tests.integration.conftest import DeployerOnTrainedVersion

pytestmark = pytest.mark.integration


class TestS3ObjectStoreOnTheStandIn(ObjectStoreContract):
    @pytest.fixture
    def store(self, stack):
        return stack.object_store

    @pytest.fixture
    def bucket(self, stack):
        return stack.settings.buckets.data

    @pytest.fixture
    def missing_bucket(self):
        return f"absent-{uuid.uuid4().hex[:8]}"

    @pytest.fixture
    def tamper(self, stack):
        def rewrite(bucket, key, data):
            ref = stack.object_store.head(bucket, key)
            stack.object_store._client.put_object(Bucket=bucket, Key=key, Body=data, Metadata={"sha256": ref.sha256})
        return rewrite


class TestDistributionRegistryOnTheStandIn(ArtifactRegistryContract):
    @pytest.fixture
    def registry(self, stack):
        return stack.artifact_registry

    @pytest.fixture
    def repo(self):
        return f"lastmile/{unique('repo')}"


class TestBundleBuilderOnTheRegistryStandIn(ImageBuilderContract):
    @pytest.fixture
    def registry(self, stack):
        return stack.artifact_registry

    @pytest.fixture
    def builder(self, registry):
        return BundleImageBuilder(registry, f"contract-{uuid.uuid4().hex[:8]}")

    @pytest.fixture
    def context(self, tmp_path):
        pkg = tmp_path / "pkg"
        pkg.mkdir()
        (pkg / "__main__.py").write_text(f"print('{uuid.uuid4().hex}')\n")
        return pkg


class TestMlflowModelRegistryOnTheStandIn(ModelRegistryContract):
    @pytest.fixture
    def registry(self, stack):
        return stack.model_registry

    @pytest.fixture
    def add_version(self, stack):
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        stack.model_registry.by_alias("none", "champion")  # hands the credentials to MLflow's client
        client = MlflowClient(stack.endpoints()["mlflow"], stack.endpoints()["mlflow"])

        def add(name, tags=None):
            try:
                client.create_registered_model(name)
            except MlflowException:
                pass
            created = client.create_model_version(name, f"s3://contract/{name}", tags=tags or {})
            return stack.model_registry.get_version(name, str(created.version))
        return add

    @pytest.fixture
    def add_version_with_files(self, stack, tmp_path):
        """A run's artifacts, stored through MLflow's proxy in the S3 stand-in, registered as the version's files."""
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        stack.model_registry.by_alias("none", "champion")  # hands the credentials to MLflow's client
        client = MlflowClient(stack.endpoints()["mlflow"], stack.endpoints()["mlflow"])

        def add(name, files, tags):
            local = tmp_path / name
            for path, data in files.items():
                (local / path).parent.mkdir(parents=True, exist_ok=True)
                (local / path).write_bytes(data)
            run = client.create_run("0")
            client.log_artifacts(run.info.run_id, str(local), "model")
            client.set_terminated(run.info.run_id)
            try:
                client.create_registered_model(name)
            except MlflowException:
                pass
            created = client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id,
                                                  tags=tags)
            return stack.model_registry.get_version(name, str(created.version))
        return add

    @pytest.fixture
    def corrupt(self, stack):
        """Overwrite the object behind one stored file in the bucket MLflow's server proxies artifacts to."""
        def corrupt(name, version, path, data):
            source = stack.model_registry.get_version(name, version).source  # mlflow-artifacts:/<exp>/<run>/...
            key = f"{source.removeprefix('mlflow-artifacts:').lstrip('/')}/{path}"
            stack.object_store.put(stack.settings.buckets.artifacts, key, data)
        return corrupt


class TestLocalDeployerOnItsController(DeployerOnTrainedVersion):
    """A controller of its own for each test, with one replica by default, on the session's stand-ins."""

    @pytest.fixture
    def deployer(self, stack, tmp_path):
        state = tmp_path / ".lastmile"
        config = LocalDeployer(flavor="local", replicas=1)
        standin = DeployerStandIn(free_port(), state, free_port(), "contract", config, stack.secret_store)
        supervisor = Supervisor(state)
        [running] = supervisor.up([standin])
        try:
            yield LocalDeployer(flavor="local", replicas=1, endpoint=running.url).build(stack)
        finally:
            supervisor.down()
