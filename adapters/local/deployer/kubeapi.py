"""A Kubernetes API front door on the local deployment controller: the subset the ``oke`` deployer uses.

=======================================================================  ==========================================
path                                                                     verbs
=======================================================================  ==========================================
``/apis/apps/v1/namespaces/{ns}/deployments``                            list, create
``/apis/apps/v1/namespaces/{ns}/deployments/{name}``                     get, replace, patch (merge, strategic)
``/apis/apps/v1/namespaces/{ns}/deployments/{name}/status``              get
``/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale``               get, replace, patch
``/api/v1/namespaces/{ns}/services[/{name}]``                            list, create, get, replace
``/api/v1/namespaces/{ns}/pods``                                         list (``labelSelector``)
``/api/v1/namespaces/{ns}/pods/{name}[:port]/proxy/{path}``              get (the replica's ``/metrics``...)
``/version``                                                             get
=======================================================================  ==========================================

The controller runs one deployment, so one Deployment (of the controller's name) can exist; a change of its pod
template is a new controller revision (:func:`~.kubeobjects.revision_spec`), a change of ``replicas`` a scale; the
template's startup probe is enforced as a kubelet would (:mod:`.kubelet`). Every
call needs ``Authorization: Bearer``: the admin API's token, or an OKE token (``oci ce cluster generate-token``'s
base64url of a signed request URL) that the OCI API stand-in verifies, as OKE has Container Engine verify it.
Errors are ``Status`` objects with the API server's codes (401, 404, 409, 415, 422).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.local.deployer import kubeobjects as ko
from adapters.local.deployer.kubeauth import OkeTokens
from adapters.local.deployer.kubelet import StartupProbes
from adapters.local.deployer.kubeobjects import ApiError, Obj

GROUP = "apps"
PATCH_TYPES = {"application/merge-patch+json": False, "application/strategic-merge-patch+json": True}


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
        self.deployment.max_surge = ko._int_or_percent(rolling.get("maxSurge", 1), replicas)
        self.deployment.max_unavailable = ko._int_or_percent(rolling.get("maxUnavailable", 0), replicas)
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
            bundle = self.bundles_dir / ko._image(template).split("@", 1)[-1].replace(":", "-")
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


def kube_app(door: FrontDoor, token_sha256: str, oke_tokens: OkeTokens | None = None) -> Starlette:
    """The ASGI app of the front door over ``door``; see the module's table for what it answers."""
    proxy = httpx.AsyncClient(timeout=5.0)

    async def authorized(request: Request) -> None:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and presented:
            digest = hashlib.sha256(presented.encode()).hexdigest()
            if hmac.compare_digest(digest, token_sha256):
                return
            if oke_tokens is not None and await oke_tokens.verify(presented):
                return
        raise ApiError(401, "Unauthorized", "Unauthorized")

    def route(path: str, methods: list[str]):
        def register(handler):
            async def endpoint(request: Request) -> Response:
                door.kubelet.ensure_running()
                try:
                    await authorized(request)
                    result = await handler(request, **request.path_params)
                except ApiError as exc:
                    return JSONResponse(exc.status(), exc.code)
                return result if isinstance(result, Response) else JSONResponse(result, 201 if request.method ==
                                                                                 "POST" else 200)
            routes.append(Route(path, endpoint, methods=methods))
            return handler
        return register

    routes: list[Route] = []
    deployments = "/apis/apps/v1/namespaces/{ns}/deployments"

    @route("/version", ["GET"])
    async def version(request: Request) -> Obj:
        return {"major": "1", "minor": "31", "gitVersion": "v1.31.1-lastmile", "platform": "linux/amd64"}

    @route(deployments, ["GET", "POST"])
    async def deployment_collection(request: Request, ns: str) -> Obj:
        if request.method == "POST":
            return door.create_deployment(ns, await _json(request))
        items = [door.render(n, name) for (n, name) in door.deployments if n == ns]
        return {"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {"resourceVersion": str(door.version)},
                "items": items}

    @route(deployments + "/{name}", ["GET", "PUT", "PATCH"])
    async def deployment_item(request: Request, ns: str, name: str) -> Obj:
        if request.method == "PUT":
            return door.replace_deployment(ns, name, await _json(request))
        if request.method == "PATCH":
            return door.patch_deployment(ns, name, await _json(request), _strategic(request))
        return door.render(ns, name)

    @route(deployments + "/{name}/status", ["GET"])
    async def deployment_status(request: Request, ns: str, name: str) -> Obj:
        return door.render(ns, name)

    @route(deployments + "/{name}/scale", ["GET", "PUT", "PATCH"])
    async def deployment_scale(request: Request, ns: str, name: str) -> Obj:
        if request.method == "GET":
            return door.scale(ns, name)
        body = await _json(request)
        if request.method == "PATCH":
            body = ko.merge_patch(door.scale(ns, name), body, _strategic(request))
        return door.scale(ns, name, int(body.get("spec", {}).get("replicas", 0)))

    @route("/api/v1/namespaces/{ns}/services", ["GET", "POST"])
    async def service_collection(request: Request, ns: str) -> Obj:
        if request.method == "GET":
            return {"apiVersion": "v1", "kind": "ServiceList", "metadata": {},
                    "items": [o for (n, _), o in door.services.items() if n == ns]}
        body = await _json(request)
        name = body.get("metadata", {}).get("name", "")
        if (ns, name) in door.services:
            raise ApiError(409, "AlreadyExists", f'services "{name}" already exists',
                           {"name": name, "kind": "services"})
        return door.put_service(ns, body)

    @route("/api/v1/namespaces/{ns}/services/{name}", ["GET", "PUT"])
    async def service_item(request: Request, ns: str, name: str) -> Obj:
        if (ns, name) not in door.services:
            raise ko.not_found("services", name)
        if request.method == "PUT":
            return door.put_service(ns, await _json(request), name)
        return door.services[(ns, name)]

    @route("/api/v1/namespaces/{ns}/pods", ["GET"])
    async def pod_collection(request: Request, ns: str) -> Obj:
        return {"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": str(door.version)},
                "items": door.pods(ns, request.query_params.get("labelSelector", ""))}

    @route("/api/v1/namespaces/{ns}/pods/{name}/proxy/{path:path}", ["GET"])
    async def pod_proxy(request: Request, ns: str, name: str, path: str) -> Response:
        address = door.pod_address(ns, name)
        try:
            answer = await proxy.get(f"{address}/{path}")
        except httpx.HTTPError as exc:
            raise ApiError(503, "ServiceUnavailable", f"error trying to reach service: {type(exc).__name__}") \
                from None
        return Response(answer.content, answer.status_code, media_type=answer.headers.get("content-type"))

    async def unknown(request: Request) -> Response:
        error = ApiError(404, "NotFound", "the server could not find the requested resource")
        return JSONResponse(error.status(), 404)

    routes.append(Route("/{rest:path}", unknown, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]))
    return Starlette(routes=routes)


async def _json(request: Request) -> Obj:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise ApiError(400, "BadRequest", "the request body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(415, "UnsupportedMediaType", "only merge and strategic merge patches (JSON objects) are "
                                                    "supported")
    return body


def _strategic(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind not in PATCH_TYPES:
        raise ApiError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - accepted '
                                                    f'media types include: {", ".join(PATCH_TYPES)}')
    return PATCH_TYPES[kind]
