"""The objects of the Kubernetes API front door (:mod:`.kubeapi`) over one local controller.

The controller runs one deployment, so one Deployment (of the controller's name) can exist. A change of its pod
template is a new controller revision (:func:`~.kubeobjects.revision_spec`), a change of ``replicas`` a scale; the
strategy's ``maxSurge`` and ``maxUnavailable`` become the controller's. Services are kept as given, with the
controller's Service as their load balancer. Pods are the controller's replicas, labelled as their revision's
template. The objects are saved under the controller's state dir, so a restarted controller keeps them; the startup
probes of the templates are enforced as a kubelet would (:mod:`.kubelet`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from adapters.local.deployer import kubeobjects as ko
from adapters.local.deployer.kubelet import StartupProbes
from adapters.local.deployer.kubeobjects import ApiError, Obj

GROUP = "apps"


class FrontDoor:
    """The objects the front door keeps over one controller (``deployment``: a :class:`~.controller.Deployment`)."""

    def __init__(self, deployment: Any, bundles_dir: Path, service_url: str, state_file: Path | None = None):
        self.deployment, self.bundles_dir, self.service_url = deployment, bundles_dir, service_url
        self.state_file = state_file
        self.deployments: dict[tuple[str, str], Obj] = {}
        self.services: dict[tuple[str, str], Obj] = {}
        self.templates: dict[str, Obj] = {}  # controller revision number (as str) -> its pod template
        self.progress: dict[str, Any] = {}
        self.version = 0
        self.kubelet = StartupProbes(deployment, lambda number: self.templates.get(str(number), {}))
        self._load()

    # deployments ------------------------------------------------------------------------------------------------
    def create_deployment(self, ns: str, body: Obj) -> Obj:
        name = body.get("metadata", {}).get("name", "")
        if (ns, name) in self.deployments:
            raise ApiError(409, "AlreadyExists", f'deployments.apps "{name}" already exists',
                           {"name": name, "group": GROUP, "kind": "deployments"})
        if name != self.deployment.name:
            raise ko.invalid("deployments", name, f"metadata.name: this cluster runs deployment "
                                                  f"{self.deployment.name!r} only")
        obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": dict(body.get("metadata", {})),
               "spec": body.get("spec", {})}
        obj["metadata"].update(namespace=ns, uid=f"deployment-{ns}-{name}", generation=1,
                               creationTimestamp=ko.now_rfc3339())
        self._apply(obj, None)
        self.deployments[(ns, name)] = obj
        self._save()
        return self.render(ns, name)

    def deployment_obj(self, ns: str, name: str) -> Obj:
        try:
            return self.deployments[(ns, name)]
        except KeyError:
            raise ko.not_found("deployments", name, GROUP) from None

    def replace_deployment(self, ns: str, name: str, body: Obj) -> Obj:
        previous = self.deployment_obj(ns, name)
        obj = {**previous, "metadata": {**previous["metadata"], **body.get("metadata", {})},
               "spec": body.get("spec", previous["spec"])}
        for kept in ("uid", "creationTimestamp", "generation", "namespace", "name"):
            obj["metadata"][kept] = previous["metadata"][kept]
        if obj["spec"] != previous["spec"]:
            obj["metadata"]["generation"] = previous["metadata"]["generation"] + 1
        self._apply(obj, previous)
        self.deployments[(ns, name)] = obj
        self._save()
        return self.render(ns, name)

    def patch_deployment(self, ns: str, name: str, patch: Obj, strategic: bool) -> Obj:
        previous = self.deployment_obj(ns, name)
        return self.replace_deployment(ns, name, ko.merge_patch(previous, patch, strategic))

    def scale(self, ns: str, name: str, replicas: int | None = None) -> Obj:
        obj = self.deployment_obj(ns, name)
        if replicas is not None:
            if replicas < 0:
                raise ko.invalid("deployments", name, "spec.replicas: must be greater than or equal to 0")
            self.replace_deployment(ns, name, {"spec": {**obj["spec"], "replicas": replicas}})
            obj = self.deployment_obj(ns, name)
        status = self.render(ns, name)["status"]
        selector = ",".join(f"{k}={v}" for k, v in obj["spec"]["selector"].get("matchLabels", {}).items())
        return {"apiVersion": "autoscaling/v1", "kind": "Scale",
                "metadata": {"name": name, "namespace": ns, "resourceVersion": str(self.version)},
                "spec": {"replicas": obj["spec"].get("replicas", 1)},
                "status": {"replicas": status.get("replicas", 0), "selector": selector}}

    def render(self, ns: str, name: str) -> Obj:
        """The Deployment with its status, as of now."""
        obj = self.deployment_obj(ns, name)
        status = ko.deployment_status(obj, self.deployment.status(), self.progress, time.monotonic())
        return {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.version)}, "status": status}

    def _apply(self, obj: Obj, previous: Obj | None) -> None:
        """Drive the controller to ``obj``'s spec: a new revision for a new template, else a scale."""
        spec, name = obj["spec"], obj["metadata"]["name"]
        if not spec.get("template") or not spec.get("selector"):
            raise ko.invalid("deployments", name, "spec.selector and spec.template: Required value")
        replicas = spec.setdefault("replicas", 1)
        if replicas < 1:
            raise ko.invalid("deployments", name, "spec.replicas: this cluster needs at least 1")
        rolling = spec.get("strategy", {}).get("rollingUpdate", {})
        self.deployment.max_surge = ko.int_or_percent(rolling.get("maxSurge", 1), replicas)
        self.deployment.max_unavailable = ko.int_or_percent(rolling.get("maxUnavailable", 0), replicas)
        if self.deployment.max_surge + self.deployment.max_unavailable == 0:
            raise ko.invalid("deployments", name, "spec.strategy.rollingUpdate.maxUnavailable: may not be 0 when "
                                                  "maxSurge is 0")
        if previous is None or spec["template"] != previous["spec"]["template"]:
            revision = self.deployment.deploy(ko.revision_spec(name, spec["template"], self.bundles_dir), replicas)
            self.templates[str(revision.number)] = spec["template"]
            self.progress = {"hash": ko.template_hash(spec["template"])}
            obj["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = str(revision.number)
        elif replicas != previous["spec"].get("replicas"):
            self.deployment.scale(replicas)
            self.progress.pop("seen", None)  # a scale is progress too: the deadline starts again
        self.version += 1

    # pods and services ------------------------------------------------------------------------------------------
    def pods(self, ns: str, selector: str) -> list[Obj]:
        if not any(key[0] == ns for key in self.deployments):
            return []
        found = []
        for replica in self.deployment.status()["replicas"]:
            template = self.templates.get(str(replica["revision"]), {})
            bundle = ko.bundle_dir(self.bundles_dir, ko.image_of(template))
            item = ko.pod(replica, ns, template, ko.template_hash(template), bundle.is_dir())
            if ko.selector_matches(selector, item["metadata"]["labels"]):
                found.append(item)
        return found

    def pod_address(self, ns: str, name: str) -> str:
        name = name.split(":", 1)[0]
        for item in self.pods(ns, ""):
            if item["metadata"]["name"] == name and item["metadata"]["annotations"]["lastmile.dev/address"]:
                return item["metadata"]["annotations"]["lastmile.dev/address"]
        raise ko.not_found("pods", name)

    def put_service(self, ns: str, body: Obj, name: str | None = None) -> Obj:
        name = name or body.get("metadata", {}).get("name", "")
        obj = {"apiVersion": "v1", "kind": "Service", "metadata": {**body.get("metadata", {}), "name": name,
                                                                   "namespace": ns, "uid": f"service-{ns}-{name}"},
               "spec": body.get("spec", {})}
        port = int(self.service_url.rsplit(":", 1)[1].split("/")[0])
        obj["status"] = {"loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ipMode": "VIP",
                                                       "ports": [{"port": port, "protocol": "TCP"}]}]}}
        self.services[(ns, name)] = obj
        self.version += 1
        self._save()
        return obj

    # state ------------------------------------------------------------------------------------------------------
    def _save(self) -> None:
        if self.state_file is None:
            return
        data = {"deployments": list(self.deployments.values()), "services": list(self.services.values()),
                "templates": self.templates, "version": self.version}
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.state_file)

    def _load(self) -> None:
        if self.state_file is None or not self.state_file.exists():
            return
        data = json.loads(self.state_file.read_text())
        self.deployments = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in data["deployments"]}
        self.services = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in data["services"]}
        self.templates, self.version = data["templates"], data["version"]
