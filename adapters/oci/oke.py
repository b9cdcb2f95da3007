"""The Deployer port on Kubernetes: OKE in a tenancy, the local deployer's Kubernetes front door on ``oci-local``.

One ``kubernetes``-client deployer for both. :meth:`OkeDeployer.deploy` applies the manifests of
:mod:`adapters.oci.k8s.manifests` (the Service once, the Deployment each time) and returns, as ``kubectl apply``
does; :meth:`~OkeDeployer.status` reads the Deployment and its pods; :meth:`~OkeDeployer.scale` uses the ``scale``
subresource; :meth:`~OkeDeployer.replica_metrics` reads each pod's ``/metrics`` through the API server's pod proxy.

apps/v1 has no server-side rollback, so the deployer keeps its own revision history on the Deployment, in the
``lastmile.dev/history`` annotation (number, build digest, model version and pod template of the last
``revision_history_limit`` revisions), and :meth:`~OkeDeployer.rollback` applies the previous revision's template
again under its own number. Kubernetes never rolls back by itself: the harness's rollout policy decides
(:mod:`harness.pipeline.rollout`), and :meth:`~OkeDeployer.rollback_if_stalled` rolls back a Deployment whose
``Progressing`` condition says ``ProgressDeadlineExceeded``, for a caller that watches only Kubernetes' verdict.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from adapters.oci.auth import Credentials
from adapters.oci.k8s import manifests
from adapters.oci.k8s.cluster import api_client, fetch_access
from adapters.oci.k8s.manifests import ManifestSettings
from harness.domain.errors import AuthError, NotFound, UnreachableError, UserError
from harness.domain.records import DeploymentSpec, DeploymentStatus, ReplicaMetrics, ReplicaStatus, Revision

HISTORY = manifests.ANNOTATION_PREFIX + "history"
LAST_NUMBER = manifests.ANNOTATION_PREFIX + "last-revision"
STALLED = "ProgressDeadlineExceeded"


class OkeDeployer:
    """Deployer over a Kubernetes API server: ``api`` is a ``kubernetes.client.ApiClient``, or a function that
    makes one when first needed (fetching a kubeconfig is a request: none is sent when the deployer is built)."""

    def __init__(self, api: Any, settings: ManifestSettings, default_replicas: int = 2, where: str = "OKE",
                 stage: Callable[[DeploymentSpec], None] | None = None):
        """``stage`` runs before a revision is applied: on the stand-in, the node's image pull (see
        :func:`adapters.oci.k8s.node.bundle_stager`); a cluster pulls the image itself."""
        self._api, self.settings, self.default_replicas, self.where = api, settings, default_replicas, where
        self.ns = settings.namespace
        self.stage = stage

    @property
    def api(self) -> Any:
        if callable(self._api):
            self._api = self._api()
        return self._api

    @property
    def apps(self) -> Any:
        from kubernetes import client

        return client.AppsV1Api(self.api)

    @property
    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api)

    # Deployer -----------------------------------------------------------------------------------------------------
    def deploy(self, spec: DeploymentSpec) -> Revision:
        if self.stage is not None:
            self.stage(spec)
        existing = self._read(spec.name)
        history, last = _history(existing), _last_number(existing)
        revision = Revision(last + 1, spec.serving.digest, spec.model.version)
        replicas = spec.replicas or (existing.spec.replicas if existing else None) or self.default_replicas
        template = manifests.pod_template(spec, revision.number, self.settings)
        self._ensure_service(spec.name)
        self._apply(spec, revision, replicas, [*history, _record(revision, template)], existing)
        return revision

    def status(self, name: str) -> DeploymentStatus:
        deployment = self._read(name)
        if deployment is None:
            return DeploymentStatus(name, None, None, 0, 0)
        history = _history(deployment)
        labels = deployment.spec.template.metadata.labels or {}
        number = int(labels.get(manifests.REVISION_LABEL, 0))
        record = next((r for r in history if r["number"] == number), None)
        revision = Revision(number, record["serving_digest"], record["model_version"]) if record else None
        replicas = tuple(self._replica(p) for p in self._pods(name))
        ready = len([r for r in replicas if r.revision == number and r.state == "ready"])
        stalled = _condition(deployment, "Progressing")
        message = f"{STALLED}: {stalled.message}" if stalled is not None and stalled.reason == STALLED else ""
        return DeploymentStatus(name, self._endpoint(name), revision, deployment.spec.replicas or 0, ready,
                                replicas, message)

    def rollback(self, name: str) -> Revision:
        deployment = self._read(name)
        history = _history(deployment)
        if deployment is None or len(history) < 2:
            raise NotFound(f"deployment {name} has no revision before the current one to roll back to")
        previous = history[-2]
        body = self.api.sanitize_for_serialization(deployment)
        body.pop("status", None)
        metadata = body["metadata"]
        metadata.setdefault("labels", {})[manifests.REVISION_LABEL] = str(previous["number"])
        metadata.setdefault("annotations", {}).update(self._annotations(history[:-1], _last_number(deployment)))
        body["spec"]["template"] = previous["template"]
        self._replace(name, body)
        return Revision(previous["number"], previous["serving_digest"], previous["model_version"])

    def scale(self, name: str, replicas: int) -> DeploymentStatus:
        if replicas < 1:
            raise UserError(f"deployment {name}: replicas must be at least 1, not {replicas}")
        with self._errors(f"scaling deployment {name}"):
            self.apps.patch_namespaced_deployment_scale(name, self.ns, {"spec": {"replicas": replicas}})
        return self.status(name)

    def replica_metrics(self, name: str) -> tuple[ReplicaMetrics, ...]:
        from kubernetes.client.rest import ApiException

        found = []
        for replica in self.status(name).replicas:
            if replica.state in ("dead", "draining"):
                continue
            try:
                text = self.core.connect_get_namespaced_pod_proxy_with_path(
                    f"{replica.name}:{self.settings.container_port}", self.ns, "metrics")
            except ApiException:
                text = None
            found.append(ReplicaMetrics(replica.name, replica.state, text))
        return tuple(found)

    def rollback_if_stalled(self, name: str) -> Revision | None:
        """Roll back when Kubernetes says the rollout exceeded its progress deadline; the revision rolled back to."""
        return self.rollback(name) if self.status(name).message.startswith(STALLED) else None

    # applying ----------------------------------------------------------------------------------------------------
    def _apply(self, spec: DeploymentSpec, revision: Revision, replicas: int, history: list[dict],
               existing: Any) -> None:
        body = manifests.deployment(spec, revision.number, self.settings, replicas,
                                    self._annotations(history, revision.number))
        if existing is None:
            with self._errors(f"creating deployment {spec.name}"):
                self.apps.create_namespaced_deployment(self.ns, body)
            return
        body["metadata"]["resourceVersion"] = existing.metadata.resource_version
        self._replace(spec.name, body)

    def _annotations(self, history: list[dict], last: int) -> dict[str, str]:
        """The revision history (the newest ``revision_history_limit``) and the last number ever given."""
        kept = history[-max(2, self.settings.revision_history_limit):]
        return {HISTORY: json.dumps(kept, sort_keys=True), LAST_NUMBER: str(last)}

    def _replace(self, name: str, body: dict) -> None:
        with self._errors(f"updating deployment {name}"):
            self.apps.replace_namespaced_deployment(name, self.ns, body)

    def _ensure_service(self, name: str) -> None:
        from kubernetes.client.rest import ApiException

        try:
            self.core.read_namespaced_service(name, self.ns)
            return
        except ApiException as exc:
            if exc.status != 404:
                raise self._mapped(exc, f"reading service {name}") from None
        with self._errors(f"creating service {name}"):
            self.core.create_namespaced_service(self.ns, manifests.service(name, self.settings))

    # reading -----------------------------------------------------------------------------------------------------
    def _read(self, name: str) -> Any:
        from kubernetes.client.rest import ApiException

        try:
            with self._unreachable():
                return self.apps.read_namespaced_deployment(name, self.ns)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise self._mapped(exc, f"reading deployment {name}") from None

    def _pods(self, name: str) -> list[Any]:
        selector = ",".join(f"{k}={v}" for k, v in manifests.selector_labels(name).items())
        with self._errors(f"listing the pods of {name}"):
            return list(self.core.list_namespaced_pod(self.ns, label_selector=selector).items)

    def _replica(self, pod: Any) -> ReplicaStatus:
        labels = pod.metadata.labels or {}
        statuses = pod.status.container_statuses or []
        container = statuses[0] if statuses else None
        ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
        waiting = container.state.waiting if container and container.state else None
        last = container.last_state.terminated if container and container.last_state else None
        if pod.metadata.deletion_timestamp:
            state = "draining"
        elif ready:
            state = "ready"
        elif waiting is not None and waiting.reason in ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull"):
            state = "dead"
        else:
            state = "unready" if container and container.started else "starting"
        return ReplicaStatus(pod.metadata.name, int(labels.get(manifests.REVISION_LABEL, 0)), state,
                             container.restart_count if container else 0, _detail(waiting, last))

    def _endpoint(self, name: str) -> str | None:
        from kubernetes.client.rest import ApiException

        try:
            service = self.core.read_namespaced_service(name, self.ns)
        except ApiException:
            return None
        ingress = (service.status.load_balancer.ingress or []) if service.status and service.status.load_balancer \
            else []
        if not ingress:
            return None
        host = ingress[0].ip or ingress[0].hostname
        port = ingress[0].ports[0].port if ingress[0].ports else service.spec.ports[0].port
        return f"http://{host}:{port}"

    # errors ------------------------------------------------------------------------------------------------------
    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        from kubernetes.client.rest import ApiException

        try:
            with self._unreachable():
                yield
        except ApiException as exc:
            raise self._mapped(exc, what) from None

    @contextmanager
    def _unreachable(self) -> Iterator[None]:
        from urllib3.exceptions import HTTPError

        try:
            yield
        except HTTPError as exc:
            raise UnreachableError(f"the Kubernetes API server of {self.where} did not answer "
                                   f"({type(exc).__name__})", url=self.api.configuration.host) from None

    def _mapped(self, exc: Any, what: str) -> Exception:
        try:
            message = json.loads(exc.body).get("message", "")
        except (TypeError, ValueError, AttributeError):
            message = str(exc.reason or "")
        if exc.status in (401, 403):
            return AuthError(f"the Kubernetes API server of {self.where} refused {what} ({exc.status}: {message})",
                             url=self.api.configuration.host, hint="check the cluster id, the key and its policies")
        if exc.status == 404:
            return NotFound(f"{what}: {message or 'not found'}")
        if exc.status >= 500:
            return UnreachableError(f"the Kubernetes API server of {self.where} failed {what} ({exc.status}: "
                                    f"{message})", url=self.api.configuration.host)
        return UserError(f"the Kubernetes API server of {self.where} refused {what} ({exc.status}: {message})")


def open_deployer(credentials: Credentials, endpoint: str | None, cluster_id: str, settings: ManifestSettings,
                  replicas: int, stage: Callable[[DeploymentSpec], None] | None = None) -> OkeDeployer:
    """An :class:`OkeDeployer` for ``cluster_id``; its kubeconfig is fetched (CreateKubeconfig) on first use."""

    def connect() -> Any:
        access = fetch_access(credentials, endpoint, cluster_id)
        return api_client(access, credentials.signer, credentials.region)

    return OkeDeployer(connect, settings, replicas, where=f"cluster {cluster_id}", stage=stage)


def _history(deployment: Any) -> list[dict]:
    annotations = (deployment.metadata.annotations or {}) if deployment is not None else {}
    try:
        return list(json.loads(annotations.get(HISTORY, "[]")))
    except ValueError:
        return []


def _last_number(deployment: Any) -> int:
    annotations = (deployment.metadata.annotations or {}) if deployment is not None else {}
    numbers = [r["number"] for r in _history(deployment)]
    return max([int(annotations.get(LAST_NUMBER, 0)), *numbers])


def _record(revision: Revision, template: dict) -> dict:
    return {"number": revision.number, "serving_digest": revision.serving_digest,
            "model_version": revision.model_version, "template": template}


def _detail(waiting: Any, last: Any) -> str:
    """Why a container is not ready, as the local controller says it: the waiting reason, then the last
    termination's message (its log's tail) and exit code; each said once."""
    parts: list[str] = []
    for part in (waiting.reason if waiting else "", waiting.message if waiting else "", last.message if last else ""):
        if part and part not in parts and not any(part in p for p in parts):
            parts.append(part)
    if last is not None and last.exit_code is not None and not any("exit code" in p for p in parts):
        parts.append(f"last exit code {last.exit_code}")
    return "; ".join(parts)


def _condition(deployment: Any, kind: str) -> Any:
    return next((c for c in (deployment.status.conditions or []) if c.type == kind), None) \
        if deployment.status else None

