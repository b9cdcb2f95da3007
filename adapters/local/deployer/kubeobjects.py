"""The Kubernetes objects of the front door (:mod:`adapters.local.deployer.kubeapi`), as pure functions.

A Deployment's pod template becomes a controller revision (:class:`RevisionSpec`): its image's digest is the serving
bundle's (the bundle pulled under ``bundles_dir`` plays the image on a node), the model version comes from the
container's ``LASTMILE_SERVING_MODEL_URI`` and the container's ``env`` goes to the replica. The controller's status
becomes the Deployment's status (replicas, conditions ``Progressing`` and ``Available`` as the deployment
controller words them) and its replicas become Pods. Also here: the Status object of errors, label selectors and the
merge patches the ``kubernetes`` client sends.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.local.deployer.replicas import RevisionSpec

Obj = dict[str, Any]
CONTAINER_PORT = 8080
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>[^/]+)$")


class ApiError(Exception):
    """An answer of the API server other than success: rendered as a ``Status`` object."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> Obj:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message,
                "reason": self.reason, "details": self.details, "code": self.code}


def not_found(kind: str, name: str, group: str = "") -> ApiError:
    resource = f"{kind}.{group}" if group else kind
    return ApiError(404, "NotFound", f'{resource} "{name}" not found', {"name": name, "group": group, "kind": kind})


def invalid(kind: str, name: str, message: str, group: str = "apps") -> ApiError:
    return ApiError(422, "Invalid", f'{kind}.{group} "{name}" is invalid: {message}',
                    {"name": name, "group": group, "kind": kind})


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# templates and revisions ---------------------------------------------------------------------------------------
def revision_spec(name: str, template: Obj, bundles_dir: Path) -> RevisionSpec:
    """The controller revision a pod template describes; 422 when it does not pin an image digest and a model."""
    containers = (template.get("spec") or {}).get("containers") or []
    if len(containers) != 1:
        raise invalid("deployments", name, "spec.template.spec.containers: exactly one container is supported")
    container = containers[0]
    image = container.get("image", "")
    if "@sha256:" not in image:
        raise invalid("deployments", name, f"spec.template.spec.containers[0].image: {image!r} must be pinned by "
                                           "digest (@sha256:...)")
    digest = image.split("@", 1)[1]
    env = {e["name"]: str(e.get("value", "")) for e in container.get("env") or [] if "name" in e}
    match = _MODEL_URI.match(env.get("LASTMILE_SERVING_MODEL_URI", ""))
    if match is None:
        raise invalid("deployments", name, "spec.template.spec.containers[0].env: LASTMILE_SERVING_MODEL_URI must "
                                           "pin a version (models:/<name>/<version>)")
    return RevisionSpec(0, digest, str(bundle_dir(bundles_dir, image)), match["name"], match["version"], env)


def bundle_dir(bundles_dir: Path, image: str) -> Path:
    """Where the front door's node keeps the bundle of an image pinned by digest (``<algorithm>-<hex>``)."""
    return bundles_dir / image.rsplit("@", 1)[-1].replace(":", "-")


def template_hash(template: Obj) -> str:
    """A short stable hash of a pod template (Kubernetes' ``pod-template-hash`` label plays the same part)."""
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


# status --------------------------------------------------------------------------------------------------------
def deployment_status(obj: Obj, controller: Obj, progress: Obj, now: float) -> Obj:
    """``obj``'s status from the controller's; ``progress`` (``since``, ``seen``) is updated here, as the
    deployment controller updates ``Progressing`` whenever the new replica set gains a (ready) replica."""
    spec = obj["spec"]
    current = controller.get("revision")
    desired = spec.get("replicas", 1)
    live = [r for r in controller["replicas"] if r["state"] != "draining"]
    updated = [r for r in live if current and r["revision"] == current["number"]]
    ready = [r for r in live if r["state"] == "ready"]
    updated_ready = [r for r in updated if r["state"] == "ready"]
    seen = [len(updated), len(updated_ready)]
    if seen != progress.get("seen"):
        if progress.get("seen") is None or seen > progress["seen"]:
            progress["since"], progress["since_wall"] = now, now_rfc3339()
        progress["seen"] = seen
    complete = len(updated_ready) >= desired and len(live) == len(updated) and not controller.get("message")
    deadline = spec.get("progressDeadlineSeconds", 600)
    rs = f'{obj["metadata"]["name"]}-{progress.get("hash", "")}'
    if complete:
        progressing = ("True", "NewReplicaSetAvailable", f'ReplicaSet "{rs}" has successfully progressed.')
    elif now - progress.get("since", now) > deadline:
        progressing = ("False", "ProgressDeadlineExceeded", f'ReplicaSet "{rs}" has timed out progressing.')
    else:
        progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{rs}" is progressing.')
    max_unavailable = int_or_percent(spec.get("strategy", {}).get("rollingUpdate", {}).get("maxUnavailable", 0),
                                      desired)
    if len(ready) >= desired - max_unavailable:
        available = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
    else:
        available = ("False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
    conditions = [_condition("Available", *available, progress), _condition("Progressing", *progressing, progress)]
    status = {"observedGeneration": obj["metadata"].get("generation", 1), "replicas": len(live),
              "updatedReplicas": len(updated), "readyReplicas": len(ready), "availableReplicas": len(ready),
              "unavailableReplicas": max(0, desired - len(ready)), "conditions": conditions}
    return {k: v for k, v in status.items() if v or k in ("observedGeneration", "replicas", "conditions")}


def _condition(kind: str, status: str, reason: str, message: str, progress: Obj) -> Obj:
    transitions = progress.setdefault("transitions", {})
    previous = transitions.get(kind)
    if previous is None or previous[0] != status:
        transitions[kind] = previous = [status, now_rfc3339()]
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "lastUpdateTime": progress.get("since_wall") or previous[1], "lastTransitionTime": previous[1]}


def int_or_percent(value: int | str, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return total * int(value[:-1]) // 100
    return int(value)


def pod(replica: Obj, namespace: str, template: Obj, template_id: str, bundle_ok: bool) -> Obj:
    """A Pod for one of the controller's replicas, labelled as its revision's template."""
    ready = replica["state"] == "ready"
    meta = template.get("metadata", {})
    waiting = None
    if not bundle_ok:
        waiting = {"reason": "ImagePullBackOff", "message": "the serving bundle of this image is not on this node"}
    elif replica["state"] == "dead":
        waiting = {"reason": "CrashLoopBackOff", "message": replica.get("detail", "")}
    elif replica["state"] == "starting" and replica.get("pid") is None:
        waiting = {"reason": "ContainerCreating"}
    state = {"waiting": waiting} if waiting else {"running": {"startedAt": now_rfc3339()}}
    container = {"name": "serving", "ready": ready, "restartCount": replica.get("restarts", 0), "started": not waiting,
                 "image": image_of(template), "imageID": image_of(template), "state": state}
    if replica.get("detail"):
        container["lastState"] = {"terminated": {"exitCode": exit_code(replica.get("exit_code")), "reason": "Error",
                                                 "message": replica["detail"]}}
    conditions = [{"type": kind, "status": "True" if ready else "False"} for kind in ("Ready", "ContainersReady")]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": replica["name"], "namespace": namespace,
                     "labels": {**meta.get("labels", {}), "pod-template-hash": template_id},
                     "annotations": {**meta.get("annotations", {}), "lastmile.dev/address": replica.get("address") or ""},
                     "uid": f"pod-{replica['name']}"},
        "spec": template.get("spec", {}),
        "status": {"phase": "Pending" if waiting and not replica.get("restarts") else "Running",
                   "podIP": "127.0.0.1", "conditions": conditions, "containerStatuses": [container]},
    }


def exit_code(returncode: int | None) -> int:
    """A container's exit code as the kubelet reports it: the process's own, 128 + n when signal n ended it
    (1 when the controller did not say)."""
    if returncode is None:
        return 1
    return 128 - returncode if returncode < 0 else returncode


def image_of(template: Obj) -> str:
    containers = (template.get("spec") or {}).get("containers") or [{}]
    return containers[0].get("image", "")


# selectors and patches -----------------------------------------------------------------------------------------
def selector_matches(selector: str, labels: Obj) -> bool:
    """Equality-based label selectors (``a=b,c!=d``, ``a``, ``!a``): what ``kubectl get -l`` mostly sends."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def merge_patch(target: Any, patch: Any, strategic: bool = False) -> Any:
    """RFC 7386 merge patch; ``strategic`` also merges lists of named items (containers, env, ports) by name, as a
    strategic merge patch does for those fields."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif strategic and isinstance(value, list) and isinstance(result.get(key), list) and _named(value) \
                and _named(result[key]):
            merged = {item["name"]: item for item in result[key]}
            for item in value:
                merged[item["name"]] = merge_patch(merged.get(item["name"], {}), item, strategic)
            result[key] = list(merged.values())
        else:
            result[key] = merge_patch(result.get(key), value, strategic)
    return result


def _named(items: list) -> bool:
    return bool(items) and all(isinstance(i, dict) and "name" in i for i in items)
