"""The local deployer's Kubernetes front door, driven by the real ``kubernetes`` client."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from adapters.local.deployer.kubeapi import FrontDoor, kube_app
from adapters.oci.k8s import manifests
from adapters.oci.k8s.manifests import ManifestSettings
from harness.domain.records import ArtifactRef, DeploymentSpec, ModelVersion, Reference
from tests.component.kube_support import FakeController, serve

TOKEN = "front-door-token"
NS = "lastmile"
SETTINGS = ManifestSettings(namespace=NS, progress_deadline_s=1)


def _spec(version: str = "1", digest_byte: str = "ab") -> DeploymentSpec:
    return DeploymentSpec("churn", ArtifactRef("127.0.0.1:5000", "lastmile/serving", "sha256:" + digest_byte * 32),
                          ModelVersion("churn-model", version, None, "s3://b/m"), Reference(({"x": 1},), (0,)))


@pytest.fixture
def controller():
    return FakeController("churn")


@pytest.fixture
def door(controller, tmp_path):
    return FrontDoor(controller, tmp_path / "bundles", "http://127.0.0.1:18080", tmp_path / "kubeapi.json")


@pytest.fixture
def url(door):
    with serve(kube_app(door, hashlib.sha256(TOKEN.encode()).hexdigest())) as url:
        yield url


def _api(url: str, token: str | None = TOKEN) -> client.ApiClient:
    config = client.Configuration()
    config.host = url
    if token is not None:
        config.api_key = {"authorization": token}
        config.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(config)


@pytest.fixture
def apps(url):
    with _api(url) as api:
        yield client.AppsV1Api(api)


@pytest.fixture
def core(url):
    with _api(url) as api:
        yield client.CoreV1Api(api)


def _create(apps, spec=None, revision: int = 1, replicas: int = 1):
    body = manifests.deployment(spec or _spec(), revision, SETTINGS, replicas)
    return apps.create_namespaced_deployment(NS, body)


def _condition(deployment, kind: str):
    return next(c for c in deployment.status.conditions if c.type == kind)


def test_create_then_get_reports_a_complete_rollout(apps, controller):
    created = _create(apps)
    assert created.metadata.generation == 1
    got = apps.read_namespaced_deployment("churn", NS)
    assert (got.status.ready_replicas, got.status.updated_replicas, got.status.observed_generation) == (1, 1, 1)
    assert _condition(got, "Progressing").reason == "NewReplicaSetAvailable"
    assert _condition(got, "Available").status == "True"
    assert controller.current.model_version == "1" and controller.current.serving_digest == "sha256:" + "ab" * 32


def test_the_revision_maps_to_the_controller_with_its_environment(apps, controller, tmp_path):
    _create(apps)
    assert controller.current.model_name == "churn-model"
    assert controller.current.env["LASTMILE_SERVING_MODEL_URI"] == "models:/churn-model/1"
    assert controller.current.bundle_dir == str(tmp_path / "bundles" / ("sha256-" + "ab" * 32))


def test_creating_it_twice_is_a_conflict(apps):
    _create(apps)
    with pytest.raises(ApiException) as caught:
        _create(apps)
    assert caught.value.status == 409 and json.loads(caught.value.body)["reason"] == "AlreadyExists"


def test_an_unknown_deployment_is_not_found_as_a_status(apps):
    with pytest.raises(ApiException) as caught:
        apps.read_namespaced_deployment("nothing", NS)
    assert caught.value.status == 404
    status = json.loads(caught.value.body)
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "NotFound", 404)


def test_without_the_token_it_is_401(url):
    with _api(url, token=None) as api, pytest.raises(ApiException) as caught:
        client.AppsV1Api(api).list_namespaced_deployment(NS)
    assert caught.value.status == 401


def test_with_a_wrong_token_it_is_401(url):
    with _api(url, token="not-it") as api, pytest.raises(ApiException) as caught:
        client.CoreV1Api(api).list_namespaced_pod(NS)
    assert caught.value.status == 401


def test_the_scale_subresource_scales_the_controller(apps, controller):
    _create(apps)
    scale = apps.patch_namespaced_deployment_scale("churn", NS, {"spec": {"replicas": 3}})
    assert scale.spec.replicas == 3 and controller.desired == 3
    got = apps.read_namespaced_deployment("churn", NS)
    assert (got.spec.replicas, got.metadata.generation, got.status.ready_replicas) == (3, 2, 3)
    assert apps.read_namespaced_deployment_scale("churn", NS).status.replicas == 3


def test_patching_a_new_image_rolls_out_a_new_revision(apps, controller):
    _create(apps)
    new = manifests.deployment(_spec("2", "cd"), 2, SETTINGS, 1)
    patched = apps.patch_namespaced_deployment("churn", NS, {"spec": {"template": new["spec"]["template"]}})
    assert patched.metadata.generation == 2
    assert patched.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    assert (controller.current.number, controller.current.serving_digest) == (2, "sha256:" + "cd" * 32)
    assert controller.current.model_version == "2"


def test_a_strategic_patch_of_one_container_field_keeps_the_others(apps, controller):
    _create(apps)
    image = "127.0.0.1:5000/lastmile/serving@sha256:" + "ef" * 32
    apps.patch_namespaced_deployment("churn", NS, {"spec": {"template": {"spec": {"containers": [
        {"name": "serving", "image": image}]}}}})
    assert controller.current.serving_digest == "sha256:" + "ef" * 32
    assert controller.current.model_version == "1"  # the env was kept


def test_replace_with_the_same_template_is_no_new_revision(apps, controller):
    created = _create(apps)
    created.metadata.labels["extra"] = "yes"
    replaced = apps.replace_namespaced_deployment("churn", NS, created)
    assert replaced.metadata.generation == 1 and len(controller.revisions) == 1


def test_an_image_by_tag_is_invalid(apps):
    body = manifests.deployment(_spec(), 1, SETTINGS, 1)
    body["spec"]["template"]["spec"]["containers"][0]["image"] = "serving:latest"
    with pytest.raises(ApiException) as caught:
        apps.create_namespaced_deployment(NS, body)
    assert caught.value.status == 422 and "digest" in caught.value.body


def test_a_rollout_that_stalls_exceeds_its_progress_deadline(apps, controller):
    _create(apps)
    controller.broken.add("2")
    new = manifests.deployment(_spec("2", "cd"), 2, SETTINGS, 1)
    apps.replace_namespaced_deployment("churn", NS, new)
    first = apps.read_namespaced_deployment_status("churn", NS)
    assert _condition(first, "Progressing").reason == "ReplicaSetUpdated"
    time.sleep(1.3)  # progressDeadlineSeconds is 1
    late = apps.read_namespaced_deployment("churn", NS)
    progressing = _condition(late, "Progressing")
    assert (progressing.status, progressing.reason) == ("False", "ProgressDeadlineExceeded")
    assert _condition(late, "Available").status == "True"  # the old revision still serves


def test_pods_are_listed_by_label_with_their_readiness(apps, core, controller):
    _create(apps, replicas=2)
    pods = core.list_namespaced_pod(NS, label_selector="app.kubernetes.io/instance=churn").items
    assert len(pods) == 2
    assert all(p.metadata.labels[manifests.REVISION_LABEL] == "1" for p in pods)
    assert all(c.status == "True" for p in pods for c in p.status.conditions if c.type == "Ready")
    assert core.list_namespaced_pod(NS, label_selector="app.kubernetes.io/instance=other").items == []


def test_a_crash_looping_pod_says_so(apps, core, controller):
    controller.broken.add("1")
    _create(apps)
    (pod,) = [p for p in core.list_namespaced_pod(NS).items if p.metadata.labels[manifests.REVISION_LABEL] == "1"]
    status = pod.status.container_statuses[0]
    assert not status.ready and status.restart_count == 3
    assert status.state.waiting.reason in ("CrashLoopBackOff", "ImagePullBackOff")


def test_a_crash_looping_pod_reports_the_exit_code_its_replica_ended_with(apps, core, controller):
    """Exit code 3 is the serving replica's "cannot heal": the last termination says it as a kubelet would."""
    controller.broken.add("1")
    _create(apps)
    (pod,) = [p for p in core.list_namespaced_pod(NS).items if p.metadata.labels[manifests.REVISION_LABEL] == "1"]
    terminated = pod.status.container_statuses[0].last_state.terminated
    assert terminated.exit_code == 3 and "the model did not load" in terminated.message


def test_a_service_is_created_with_a_load_balancer_ingress(core):
    created = core.create_namespaced_service(NS, manifests.service("churn", SETTINGS))
    ingress = created.status.load_balancer.ingress[0]
    assert ingress.ip == "127.0.0.1" and ingress.ports[0].port == 18080
    got = core.read_namespaced_service("churn", NS)
    assert got.metadata.annotations[manifests.LB_SHAPE] == "flexible"
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_service(NS, manifests.service("churn", SETTINGS))
    assert caught.value.status == 409


def test_objects_survive_a_restart_of_the_front_door(apps, controller, tmp_path):
    _create(apps)
    again = FrontDoor(controller, tmp_path / "bundles", "http://127.0.0.1:18080", tmp_path / "kubeapi.json")
    assert again.render(NS, "churn")["metadata"]["generation"] == 1


def _startup_template(grace_periods: int) -> dict:
    body = manifests.deployment(_spec(), 1, ManifestSettings(startup_grace_s=grace_periods * 5), 1)
    return body["spec"]["template"]


def test_the_startup_probe_restarts_a_replica_that_never_gets_ready():
    import asyncio
    import sys
    from types import SimpleNamespace

    from adapters.local.deployer.kubelet import StartupProbes

    async def scenario() -> tuple[int | None, int | None]:
        never, ready = [await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(60)",
                                                             start_new_session=True) for _ in range(2)]
        pods = [SimpleNamespace(name="never", revision=1, proc=never, state="unready", ready_since=None),
                SimpleNamespace(name="ready", revision=1, proc=ready, state="ready", ready_since=1.0)]
        probes = StartupProbes(SimpleNamespace(pods=pods), lambda _n: _startup_template(2))
        await probes.check(0.0)
        await probes.check(9.0)  # within 2 x 5 s
        assert never.returncode is None
        await probes.check(10.5)
        codes = never.returncode, ready.returncode
        ready.kill()
        await ready.wait()
        return codes

    never_code, ready_code = asyncio.run(scenario())
    assert never_code is not None and never_code < 0 and ready_code is None
