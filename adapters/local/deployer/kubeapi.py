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

What the objects map to on the controller is :mod:`.frontdoor`'s. Every call needs ``Authorization: Bearer``: the
admin API's token, or an OKE token (``oci ce cluster generate-token``'s base64url of a signed request URL) that the
OCI API stand-in verifies, as OKE has Container Engine verify it (:mod:`.kubeauth`).
Errors are ``Status`` objects with the API server's codes (401, 404, 409, 415, 422).
"""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.local.deployer import kubeobjects as ko
from adapters.local.deployer.frontdoor import FrontDoor
from adapters.local.deployer.kubeauth import OkeTokens
from adapters.local.deployer.kubeobjects import ApiError, Obj

__all__ = ["FrontDoor", "kube_app"]
PATCH_TYPES = {"application/merge-patch+json": False, "application/strategic-merge-patch+json": True}


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
