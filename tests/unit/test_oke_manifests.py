"""The oke manifests: valid against the Kubernetes schemas of versions OKE offers, and each required field in place."""

from __future__ import annotations

import json

import pytest

from adapters.oci.k8s import manifests
from adapters.oci.k8s.manifests import ManifestSettings
from harness.domain.records import ArtifactRef, DeploymentSpec, ModelVersion, Reference

kubernetes_validate = pytest.importorskip("kubernetes_validate")

OKE_VERSIONS = ["1.31.0", "1.32.0", "1.33.0", "1.34.0"]
DIGEST = "sha256:" + "ab" * 32


def _spec(name: str = "churn") -> DeploymentSpec:
    return DeploymentSpec(name, ArtifactRef("fra.ocir.io", "ns/lastmile/serving", DIGEST),
                          ModelVersion("churn-model", "7", "run-1", "s3://bucket/model"),
                          Reference(({"x": 1.0},), (0,)), replicas=2)


SETTINGS = ManifestSettings(namespace="serving", max_surge=2, max_unavailable=1, progress_deadline_s=120,
                            env={"MLFLOW_TRACKING_URI": "http://mlflow:5000"}, secret_env_from="serving-credentials",
                            image_pull_secret="ocir", lb_shape_min_mbps=10, lb_shape_max_mbps=400,
                            lb_security_list_management="Frontend")


@pytest.fixture
def deployment() -> dict:
    return manifests.deployment(_spec(), 3, SETTINGS, replicas=2, annotations={"lastmile.dev/history": "[]"})


@pytest.fixture
def service() -> dict:
    return manifests.service("churn", SETTINGS)


@pytest.mark.parametrize("version", OKE_VERSIONS)
def test_the_deployment_is_valid_for_the_versions_oke_offers(deployment, version):
    kubernetes_validate.validate(deployment, version, strict=True)


@pytest.mark.parametrize("version", OKE_VERSIONS)
def test_the_service_is_valid_for_the_versions_oke_offers(service, version):
    kubernetes_validate.validate(service, version, strict=True)


def test_a_misspelt_field_fails_validation(deployment):
    deployment["spec"]["replica"] = deployment["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, OKE_VERSIONS[0], strict=True)


def _container(deployment: dict) -> dict:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_the_image_is_pinned_by_digest(deployment):
    assert _container(deployment)["image"] == f"fra.ocir.io/ns/lastmile/serving@{DIGEST}"


def test_the_model_version_and_build_are_pinned_in_the_environment(deployment):
    env = {e["name"]: e["value"] for e in _container(deployment)["env"]}
    assert env["LASTMILE_SERVING_MODEL_URI"] == "models:/churn-model/7"
    assert env["LASTMILE_SERVING_BUILD_DIGEST"] == DIGEST
    assert json.loads(env["LASTMILE_SERVING_REFERENCE"]) == {"rows": [{"x": 1.0}], "predictions": [0]}
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_the_profile_cannot_override_what_pins_the_revision():
    settings = ManifestSettings(env={"LASTMILE_SERVING_MODEL_URI": "models:/other/1"})
    env = {e["name"]: e["value"] for e in _container(manifests.deployment(_spec(), 1, settings, 1))["env"]}
    assert env["LASTMILE_SERVING_MODEL_URI"] == "models:/churn-model/7"


def test_credentials_come_from_a_secret_never_inline(deployment):
    container = _container(deployment)
    assert container["envFrom"] == [{"secretRef": {"name": "serving-credentials"}}]
    assert deployment["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "ocir"}]


def test_the_rolling_update_follows_the_settings(deployment):
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxSurge": 2, "maxUnavailable": 1}}
    assert deployment["spec"]["progressDeadlineSeconds"] == 120
    assert deployment["spec"]["replicas"] == 2


def test_probes_are_readiness_on_ready_and_liveness_on_health(deployment):
    container = _container(deployment)
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}


def test_a_replica_that_never_gets_ready_is_restarted_after_the_startup_grace():
    container = _container(manifests.deployment(_spec(), 1, ManifestSettings(startup_grace_s=21), 1))
    probe = container["startupProbe"]
    assert probe["httpGet"] == {"path": "/ready", "port": "http"}
    assert probe["periodSeconds"] * probe["failureThreshold"] == 25  # 21 s, rounded up to whole periods


def test_resources_have_requests_and_limits(deployment):
    resources = _container(deployment)["resources"]
    assert set(resources) == {"requests", "limits"}
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


def test_the_container_runs_as_non_root_without_privileges(deployment):
    context = _container(deployment)["securityContext"]
    assert context["runAsNonRoot"] is True and context["runAsUser"] != 0
    assert context["allowPrivilegeEscalation"] is False and context["capabilities"] == {"drop": ["ALL"]}
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_the_revision_is_labelled_on_the_pods_but_not_in_the_selector(deployment):
    template_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert template_labels[manifests.REVISION_LABEL] == "3"
    assert manifests.REVISION_LABEL not in selector
    assert selector.items() <= template_labels.items()


def test_the_service_is_an_oci_flexible_load_balancer(service):
    annotations = service["metadata"]["annotations"]
    assert service["spec"]["type"] == "LoadBalancer"
    assert annotations[manifests.LB_SHAPE] == "flexible"
    assert (annotations[manifests.LB_SHAPE_MIN], annotations[manifests.LB_SHAPE_MAX]) == ("10", "400")
    assert annotations[manifests.LB_TYPE] == "lb"
    assert annotations[manifests.LB_SECURITY_LISTS] == "Frontend"


def test_the_service_selects_the_deployments_pods(service, deployment):
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_a_model_version_label_is_a_valid_label_value():
    spec = DeploymentSpec("m", ArtifactRef("r", "p", DIGEST), ModelVersion("a/b c" * 20, "1", None, "s"),
                          Reference((), ()))
    value = manifests.deployment(spec, 1, ManifestSettings(), 1)["spec"]["template"]["metadata"]["labels"][
        manifests.MODEL_LABEL]
    assert len(value) <= 63 and value[0].isalnum() and value[-1].isalnum()


def test_the_oke_flavor_is_typed_and_validated():
    from pydantic import ValidationError

    from adapters.oci.flavors import OkeDeployer

    config = OkeDeployer.model_validate({"flavor": "oke", "cluster_id": "ocid1.cluster.oc1..x", "region": "eu-frankfurt-1",
                                         "lb_shape_max_mbps": 400, "lb_security_list_management": "All"})
    assert (config.namespace, config.lb_shape_max_mbps, config.replicas) == ("lastmile", 400, 2)
    with pytest.raises(ValidationError):
        OkeDeployer.model_validate({"flavor": "oke", "cluster_id": "c", "lb_security_list_management": "Some"})
    with pytest.raises(ValidationError):
        OkeDeployer.model_validate({"flavor": "oke", "cluster_id": "c", "lb_shape_min_mbps": 5})
