"""The Kubernetes manifests of one deployment on OKE: a Deployment of the serving image and its LoadBalancer Service.

Pure functions of a :class:`~harness.domain.records.DeploymentSpec` and :class:`ManifestSettings`, returning plain
dicts (what ``kubectl apply -f`` reads, and what the ``kubernetes`` client sends). What they pin:

- the image by digest (``<registry>/<repository>@sha256:...``), never a tag, and the model version in
  ``LASTMILE_SERVING_MODEL_URI`` (``models:/<name>/<version>``), so a revision is exactly one build and one version;
- a rolling update within ``maxSurge`` / ``maxUnavailable`` and a ``progressDeadlineSeconds`` after which Kubernetes
  reports ``ProgressDeadlineExceeded`` (it never rolls back by itself: the harness does);
- readiness on ``/ready`` (answered once the replica reproduced the registry's reference predictions) and liveness
  on ``/health``; a startup probe on ``/ready`` too, so that a replica whose model never loads (or never reproduces
  the reference) is restarted and its revision crash-loops, as it does on the local deployer, instead of staying
  unready with no restarts; resources, and a non-root, read-only container without privileges;
- the revision in the pod template's labels (``lastmile.dev/revision``), so pods say which revision they run; the
  selector holds only the stable labels, as it cannot change after creation;
- the Service as an OCI flexible load balancer (``oci-load-balancer-shape: flexible`` with its minimum and maximum
  bandwidth) and the security list management mode of OCI's cloud controller manager.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.domain.records import DeploymentSpec

APP = "lastmile-serving"
CONTAINER = "serving"
REVISION_LABEL = "lastmile.dev/revision"
MODEL_LABEL = "lastmile.dev/model-version"
ANNOTATION_PREFIX = "lastmile.dev/"
LB_SHAPE = "service.beta.kubernetes.io/oci-load-balancer-shape"
LB_SHAPE_MIN = "service.beta.kubernetes.io/oci-load-balancer-shape-flex-min"
LB_SHAPE_MAX = "service.beta.kubernetes.io/oci-load-balancer-shape-flex-max"
LB_TYPE = "oci.oraclecloud.com/load-balancer-type"
LB_SECURITY_LISTS = "service.beta.kubernetes.io/oci-load-balancer-security-list-management-mode"

STARTUP_PERIOD_S = 5
Manifest = dict[str, Any]


@dataclass(frozen=True)
class ManifestSettings:
    """What a profile decides about the manifests; the defaults fit the serving image (port 8080, user 10001)."""

    namespace: str = "lastmile"
    container_port: int = 8080
    service_port: int = 80
    max_surge: int = 1
    max_unavailable: int = 0
    progress_deadline_s: int = 300
    revision_history_limit: int = 5
    cpu_request: str = "250m"
    memory_request: str = "512Mi"
    cpu_limit: str = "1"
    memory_limit: str = "1Gi"
    run_as_user: int = 10001
    startup_grace_s: int = 150
    """How long a replica may take to load its model and pass its reference check (the startup probe on
    ``/ready``); after that the kubelet restarts it, so a revision that can never be ready crash-loops."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Plain settings for every replica (tracking URI, samples URI): never a secret."""
    secret_env_from: str | None = None
    """A Kubernetes Secret whose keys become environment variables (credentials), managed outside lastmile."""
    image_pull_secret: str | None = None
    lb_shape_min_mbps: int = 10
    lb_shape_max_mbps: int = 100
    lb_security_list_management: Literal["All", "Frontend", "None"] = "None"
    lb_internal: bool = False


def image(spec: DeploymentSpec) -> str:
    """The serving image pinned by digest."""
    return str(spec.serving)


def selector_labels(name: str) -> dict[str, str]:
    """The labels that select a deployment's pods: stable across revisions (a selector is immutable)."""
    return {"app.kubernetes.io/name": APP, "app.kubernetes.io/instance": name}


def labels(name: str, revision: int, spec: DeploymentSpec | None = None) -> dict[str, str]:
    extra = {MODEL_LABEL: _label_value(f"{spec.model.name}-{spec.model.version}")} if spec else {}
    return {**selector_labels(name), "app.kubernetes.io/managed-by": "lastmile", REVISION_LABEL: str(revision),
            **extra}


def container_env(spec: DeploymentSpec, settings: ManifestSettings) -> list[dict[str, str]]:
    """The replica's environment: the profile's plain settings, then what pins this revision (which win)."""
    reference = {"rows": [dict(r) for r in spec.reference.rows], "predictions": list(spec.reference.predictions)}
    pinned = {"LASTMILE_SERVING_MODEL_URI": spec.model.uri,
              "LASTMILE_SERVING_BUILD_DIGEST": spec.serving.digest,
              "LASTMILE_SERVING_REFERENCE": json.dumps(reference, sort_keys=True)}
    merged = {**settings.env, **pinned}
    return [{"name": key, "value": value} for key, value in sorted(merged.items())]


def pod_template(spec: DeploymentSpec, revision: int, settings: ManifestSettings) -> Manifest:
    probe = {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5, "timeoutSeconds": 1,
             "failureThreshold": 3}
    container: Manifest = {
        "name": CONTAINER,
        "image": image(spec),
        "imagePullPolicy": "IfNotPresent",
        "args": ["--host", "0.0.0.0", "--port", str(settings.container_port)],
        "ports": [{"name": "http", "containerPort": settings.container_port, "protocol": "TCP"}],
        "env": container_env(spec, settings),
        "readinessProbe": probe,
        "livenessProbe": {**probe, "httpGet": {"path": "/health", "port": "http"}, "initialDelaySeconds": 10,
                          "periodSeconds": 10},
        "startupProbe": {**probe, "periodSeconds": STARTUP_PERIOD_S,
                         "failureThreshold": max(1, -(-settings.startup_grace_s // STARTUP_PERIOD_S))},
        "resources": {"requests": {"cpu": settings.cpu_request, "memory": settings.memory_request},
                      "limits": {"cpu": settings.cpu_limit, "memory": settings.memory_limit}},
        "securityContext": {"runAsNonRoot": True, "runAsUser": settings.run_as_user,
                            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if settings.secret_env_from:
        container["envFrom"] = [{"secretRef": {"name": settings.secret_env_from}}]
    pod: Manifest = {
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": settings.run_as_user,
                            "fsGroup": settings.run_as_user, "seccompProfile": {"type": "RuntimeDefault"}},
        "terminationGracePeriodSeconds": 30,
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    if settings.image_pull_secret:
        pod["imagePullSecrets"] = [{"name": settings.image_pull_secret}]
    return {"metadata": {"labels": labels(spec.name, revision, spec),
                         "annotations": {f"{ANNOTATION_PREFIX}serving-digest": spec.serving.digest,
                                         f"{ANNOTATION_PREFIX}model-uri": spec.model.uri}},
            "spec": pod}


def deployment(spec: DeploymentSpec, revision: int, settings: ManifestSettings, replicas: int,
               annotations: Mapping[str, str] | None = None) -> Manifest:
    """The apps/v1 Deployment of ``spec`` as revision ``revision``."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": spec.name, "namespace": settings.namespace, "labels": labels(spec.name, revision),
                     "annotations": dict(annotations or {})},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector_labels(spec.name)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": settings.max_surge,
                                                                    "maxUnavailable": settings.max_unavailable}},
            "minReadySeconds": 0,
            "progressDeadlineSeconds": settings.progress_deadline_s,
            "revisionHistoryLimit": settings.revision_history_limit,
            "template": pod_template(spec, revision, settings),
        },
    }


def service(name: str, settings: ManifestSettings) -> Manifest:
    """The v1 Service in front of ``name``'s pods: an OCI flexible load balancer."""
    annotations = {LB_TYPE: "lb", LB_SHAPE: "flexible", LB_SHAPE_MIN: str(settings.lb_shape_min_mbps),
                   LB_SHAPE_MAX: str(settings.lb_shape_max_mbps), LB_SECURITY_LISTS: settings.lb_security_list_management}
    if settings.lb_internal:
        annotations["service.beta.kubernetes.io/oci-load-balancer-internal"] = "true"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": settings.namespace,
                     "labels": {**selector_labels(name), "app.kubernetes.io/managed-by": "lastmile"},
                     "annotations": annotations},
        "spec": {"type": "LoadBalancer", "selector": selector_labels(name),
                 "ports": [{"name": "http", "port": settings.service_port, "targetPort": "http", "protocol": "TCP"}]},
    }


def _label_value(value: str) -> str:
    """A label value: at most 63 characters of alphanumerics, ``-``, ``_`` and ``.``, alphanumeric at both ends."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in value)[:63]
    return cleaned.strip("-_.") or "none"
