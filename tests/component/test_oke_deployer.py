"""The oke deployer through the local deployer's Kubernetes front door: the Deployer port on the real ``kubernetes``
client, and OKE's credentials (CreateKubeconfig, a token from the SDK's signer) checked by the OCI API stand-in."""

from __future__ import annotations

import hashlib

import pytest
from kubernetes import client
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from adapters.local.deployer.kubeapi import FrontDoor, kube_app
from adapters.local.deployer.kubeauth import OkeTokens
from adapters.oci.flavors import OciAuth
from adapters.oci.k8s.cluster import api_client, fetch_access, generate_token
from adapters.oci.k8s.manifests import REVISION_LABEL, ManifestSettings
from adapters.oci.oke import OkeDeployer
from harness.domain.errors import AuthError, NotFound, UserError
from harness.domain.records import ArtifactRef, DeploymentSpec, ModelVersion, Reference
from harness.infra.processes import free_port
from tests.component.kube_support import FakeController, serve

TOKEN = "front-door-token"
CLUSTER = "ocid1.cluster.oc1.iad.aaaaaaaalastmilestandin"


def _spec(version: str, digest_byte: str = "ab", replicas: int | None = None) -> DeploymentSpec:
    return DeploymentSpec("churn", ArtifactRef("127.0.0.1:5000", "lastmile/serving", "sha256:" + digest_byte * 32),
                          ModelVersion("churn-model", version, None, "s3://b/m"), Reference(({"x": 1},), (0,)),
                          replicas)


@pytest.fixture
def controller():
    return FakeController("churn")


@pytest.fixture
def door(controller, tmp_path):
    return FrontDoor(controller, tmp_path / "bundles", "http://127.0.0.1:18080")


@pytest.fixture
def deployer(door):
    with serve(kube_app(door, hashlib.sha256(TOKEN.encode()).hexdigest())) as url:
        config = client.Configuration()
        config.host = url
        config.api_key, config.api_key_prefix = {"authorization": TOKEN}, {"authorization": "Bearer"}
        with client.ApiClient(config) as api:
            yield OkeDeployer(api, ManifestSettings(namespace="lastmile", progress_deadline_s=1), default_replicas=1)


def test_a_deployment_never_deployed_has_no_revision(deployer):
    status = deployer.status("churn")
    assert (status.revision, status.ready, status.replicas) == (None, 0, ())


def test_deploy_applies_the_service_and_the_deployment(deployer, door, controller):
    revision = deployer.deploy(_spec("1"))
    assert (revision.number, revision.model_version) == (1, "1")
    status = deployer.status("churn")
    assert status.revision == revision and status.ready == status.desired == 1
    assert status.endpoint == "http://127.0.0.1:18080"
    assert ("lastmile", "churn") in door.services and controller.current.model_version == "1"


def test_a_second_deploy_is_a_new_revision(deployer, controller):
    deployer.deploy(_spec("1"))
    second = deployer.deploy(_spec("2", "cd"))
    assert second.number == 2 and deployer.status("churn").revision == second
    assert controller.current.serving_digest == "sha256:" + "cd" * 32


def test_rollback_reapplies_the_previous_template_under_its_number(deployer, controller):
    first = deployer.deploy(_spec("1"))
    deployer.deploy(_spec("2", "cd"))
    assert deployer.rollback("churn") == first
    assert deployer.status("churn").revision == first
    assert controller.current.model_version == "1"
    assert {r.revision for r in deployer.status("churn").replicas} == {1}


def test_rollback_without_a_previous_revision_is_not_found(deployer):
    deployer.deploy(_spec("1"))
    with pytest.raises(NotFound):
        deployer.rollback("churn")


def test_numbers_are_never_reused_after_a_rollback(deployer):
    deployer.deploy(_spec("1"))
    second = deployer.deploy(_spec("2", "cd"))
    deployer.rollback("churn")
    assert deployer.deploy(_spec("3", "ef")).number > second.number


def test_scale_goes_through_the_scale_subresource(deployer, controller):
    deployer.deploy(_spec("1"))
    status = deployer.scale("churn", 3)
    assert status.desired == 3 and controller.desired == 3 and status.ready == 3


@pytest.mark.parametrize("replicas", [0, -1])
def test_scale_below_one_is_a_user_error(deployer, replicas):
    with pytest.raises(UserError):
        deployer.scale("churn", replicas)


def test_a_crash_looping_revision_reports_its_restarts(deployer, controller):
    deployer.deploy(_spec("1"))
    controller.broken.add("2")
    broken = deployer.deploy(_spec("2", "cd"))
    status = deployer.status("churn")
    ours = status.of_revision(broken.number)
    assert ours and all(r.state == "dead" and r.restarts == 3 for r in ours)
    assert "model did not load" in ours[0].detail
    assert ours[0].detail.count("last exit code 3") == 1, ours[0].detail
    assert [r for r in status.of_revision(1) if r.state == "ready"]


def test_a_stalled_rollout_is_rolled_back_on_kubernetes_verdict(deployer, controller):
    import time

    first = deployer.deploy(_spec("1"))
    controller.broken.add("2")
    deployer.deploy(_spec("2", "cd"))
    assert deployer.rollback_if_stalled("churn") is None
    time.sleep(1.3)  # progressDeadlineSeconds is 1
    assert deployer.status("churn").message.startswith("ProgressDeadlineExceeded")
    assert deployer.rollback_if_stalled("churn") == first


def test_replica_metrics_come_through_the_pod_proxy(deployer, controller):
    metrics = Starlette(routes=[Route("/metrics", lambda _r: PlainTextResponse("up 1\n"))])
    with serve(metrics) as url:
        controller.addresses["churn-r1-0"] = url
        deployer.deploy(_spec("1"))
        assert [(m.replica, m.text) for m in deployer.replica_metrics("churn")] == [("churn-r1-0", "up 1\n")]


# OKE's credentials, checked by the OCI API stand-in ---------------------------------------------------------------
@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    from adapters.oci.standin.testing import StandInProcess

    with StandInProcess(free_port(), tmp_path_factory.mktemp("oci")) as process:
        yield process


@pytest.fixture
def cluster(standin, door):
    """A cluster registered with the stand-in whose API server is the front door, accepting OKE tokens only."""
    from adapters.oci.standin.containerengine_api import register_cluster

    with serve(kube_app(door, "0" * 64, OkeTokens(standin.url, CLUSTER))) as url:
        register_cluster(standin.state, CLUSTER, url, "us-ashburn-1")
        yield url


def _credentials(standin):
    from adapters.oci.auth import credentials

    return credentials(OciAuth(config_file=str(standin.api_key.config_file)), "us-ashburn-1")


def test_the_kubeconfig_comes_from_create_kubeconfig(standin, cluster):
    access = fetch_access(_credentials(standin), standin.url, CLUSTER)
    assert (access.server, access.cluster_id, access.certificate_authority) == (cluster, CLUSTER, None)


def test_an_unknown_cluster_is_not_found(standin, cluster):
    with pytest.raises(NotFound):
        fetch_access(_credentials(standin), standin.url, CLUSTER + "x")


def test_a_token_from_the_sdk_signer_opens_the_cluster(standin, cluster, controller):
    creds = _credentials(standin)
    access = fetch_access(creds, standin.url, CLUSTER)
    with api_client(access, creds.signer, "us-ashburn-1") as api:
        deployer = OkeDeployer(api, ManifestSettings(namespace="lastmile"), default_replicas=1)
        revision = deployer.deploy(_spec("1"))
        assert deployer.status("churn").revision == revision
        assert client.CoreV1Api(api).list_namespaced_pod("lastmile").items[0].metadata.labels[REVISION_LABEL] == "1"


def test_a_token_for_another_cluster_is_refused(standin, cluster):
    creds = _credentials(standin)
    access = fetch_access(creds, standin.url, CLUSTER)
    config = client.Configuration()
    config.host = access.server
    config.api_key = {"authorization": "Bearer " + generate_token(creds.signer, "us-ashburn-1", CLUSTER + "x")}
    with client.ApiClient(config) as api, pytest.raises(AuthError):
        OkeDeployer(api, ManifestSettings()).status("churn")


def test_a_token_signed_by_an_unregistered_key_is_refused(standin, cluster, tmp_path):
    import oci
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "other.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    signer = oci.signer.Signer(standin.api_key.tenancy, standin.api_key.user, "00:11:22:33:44:55:66:77:88:99:aa:bb:"
                               "cc:dd:ee:ff", str(pem))
    access = fetch_access(_credentials(standin), standin.url, CLUSTER)
    with api_client(access, signer, "us-ashburn-1") as api, pytest.raises(AuthError):
        OkeDeployer(api, ManifestSettings()).status("churn")


def test_an_oke_token_made_from_the_sdk_signer_reads_back_as_its_signed_request(tmp_path):
    import base64
    import urllib.parse

    import oci
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from adapters.local.deployer.kubeauth import decode

    key = tmp_path / "key.pem"
    key.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    signer = oci.signer.Signer("ocid1.tenancy.oc1..t", "ocid1.user.oc1..u", "aa:bb", str(key))
    token = generate_token(signer, "eu-frankfurt-1", "ocid1.cluster.oc1..c")
    url = urllib.parse.urlsplit(base64.urlsafe_b64decode(token).decode())
    assert (url.scheme, url.netloc, url.path) == ("https", "containerengine.eu-frankfurt-1.oraclecloud.com",
                                                  "/cluster_request/ocid1.cluster.oc1..c")
    host, path, headers = decode(token.rstrip("="))
    assert (host, path) == (url.netloc, url.path)
    assert 'keyId="ocid1.tenancy.oc1..t/ocid1.user.oc1..u/aa:bb"' in headers["authorization"]
    assert 'headers="date (request-target) host"' in headers["authorization"] and headers["date"]
