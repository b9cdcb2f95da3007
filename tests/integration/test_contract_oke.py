"""The Deployer contract for the oke deployer, on the local controller through its Kubernetes front door.

The controller runs with ``--kube-port``; the deployer pulls the serving bundle under its ``--bundles-dir`` first (the
stand-in node's image pull), and the replicas load the model version from MLflow with the credentials in the controller's
environment (a Kubernetes Secret's part)."""

from __future__ import annotations

import pytest
from kubernetes import client

from adapters.local.flavors import LocalDeployer, mlflow_credentials
from adapters.local.standins import DEPLOYER_TOKEN, DeployerStandIn
from adapters.oci.k8s.manifests import ManifestSettings
from adapters.oci.k8s.node import bundle_stager
from adapters.oci.oke import OkeDeployer
from harness.infra.processes import free_port
from harness.infra.supervisor import Supervisor
from tests.integration.conftest import DeployerOnTrainedVersion

pytestmark = pytest.mark.integration


class KubeDeployerStandIn(DeployerStandIn):
    """The deployer stand-in with its Kubernetes front door on ``kube_port``."""

    def __init__(self, *args, kube_port: int, bundles: str, mlflow: tuple[str, str] | None, **kwargs):
        super().__init__(*args, **kwargs)
        self.kube_port, self.bundles, self.mlflow = kube_port, bundles, mlflow

    def command(self, port, endpoints):
        return [*super().command(port, endpoints), "--kube-port", str(self.kube_port), "--bundles-dir", self.bundles]

    def environment(self, endpoints):
        extra = {"MLFLOW_TRACKING_USERNAME": self.mlflow[0], "MLFLOW_TRACKING_PASSWORD": self.mlflow[1]} \
            if self.mlflow else {}
        return {**super().environment(endpoints), **extra}


class TestOkeDeployerOnTheFrontDoor(DeployerOnTrainedVersion):
    @pytest.fixture
    def bundles(self, tmp_path):
        return tmp_path / "bundles"

    @pytest.fixture
    def deployer(self, stack, tmp_path, bundles):
        state = tmp_path / ".lastmile"
        kube_port = free_port()
        user_password = mlflow_credentials(stack)
        mlflow = (user_password[0], user_password[1].reveal()) if user_password else None
        standin = KubeDeployerStandIn(free_port(), state, free_port(), "contract",
                                      LocalDeployer(flavor="local", replicas=1), stack.secret_store,
                                      kube_port=kube_port, bundles=str(bundles), mlflow=mlflow)
        supervisor = Supervisor(state)
        supervisor.up([standin])
        config = client.Configuration()
        config.host = f"http://127.0.0.1:{kube_port}"
        config.api_key = {"authorization": stack.secret_store.resolve(DEPLOYER_TOKEN).reveal()}
        config.api_key_prefix = {"authorization": "Bearer"}
        env = {"MLFLOW_TRACKING_URI": stack.endpoints()["mlflow"], "MLFLOW_DISABLE_TELEMETRY": "true"}
        try:
            with client.ApiClient(config) as api:
                yield OkeDeployer(api, ManifestSettings(env=env, startup_grace_s=25), default_replicas=1,
                                  stage=bundle_stager(stack.artifact_registry, bundles))
        finally:
            supervisor.down()
