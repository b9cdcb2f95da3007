"""Container Engine (OKE): CreateKubeconfig, and the check behind OKE's bearer tokens.

- ``POST /20180222/clusters/{clusterId}/kubeconfig/content`` returns the cluster's kubeconfig (YAML), as OKE does:
  the API server's address, and a user whose ``exec`` runs ``oci ce cluster generate-token`` (lastmile's ``oke``
  deployer makes that token itself from the SDK's signer instead).
- ``GET /cluster_request/{clusterId}``: a token is the URL of this request, signed; OKE's API server has it checked.
  Here the Kubernetes front door of the local deployer replays it, and the signature is verified like any other.

A cluster exists once :func:`register_cluster` recorded its API server (``<state>/containerengine/clusters.json``);
any other is 404 ``NotAuthorizedOrNotFound``.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from starlette.requests import Request
from starlette.responses import Response

from . import errors
from .files import WatchedJson, read_json, write_json
from .http import Route, json_response, oci_route, request_body

API = "/20180222"


def clusters_file(state: Path) -> Path:
    return state / "containerengine" / "clusters.json"


def register_cluster(state: Path, cluster_id: str, server: str, region: str) -> None:
    """Make ``cluster_id`` a cluster whose Kubernetes API server is at ``server``."""
    clusters = read_json(clusters_file(state), {})
    clusters[cluster_id] = {"server": server, "region": region}
    write_json(clusters_file(state), clusters)


def kubeconfig(cluster_id: str, server: str, region: str, certificate_authority: str | None = None) -> str:
    """The kubeconfig OKE returns for a cluster (token version 2.0.0)."""
    short = cluster_id.rsplit(".", 1)[-1][-11:]
    cluster = {"server": server}
    if certificate_authority:
        cluster["certificate-authority-data"] = certificate_authority
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "",
        "clusters": [{"name": f"cluster-{short}", "cluster": cluster}],
        "contexts": [{"name": f"context-{short}", "context": {"cluster": f"cluster-{short}", "user": f"user-{short}"}}],
        "current-context": f"context-{short}",
        "users": [{"name": f"user-{short}", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "oci", "interactiveMode": "Never",
            "args": ["ce", "cluster", "generate-token", "--cluster-id", cluster_id, "--region", region],
            "env": []}}}],
    }, sort_keys=False)


def routes(state: Path) -> list[Route]:
    clusters = WatchedJson(clusters_file(state), {})

    def cluster(request: Request) -> dict:
        entry = clusters.get().get(request.path_params["cluster_id"])
        if not isinstance(entry, dict):
            raise errors.not_found()
        return entry

    async def create_kubeconfig(request: Request) -> Response:
        entry = cluster(request)
        try:
            details = json.loads(request_body(request) or b"{}")
        except ValueError:
            raise errors.cannot_parse("The request body is not JSON.") from None
        if details.get("tokenVersion", "2.0.0") != "2.0.0":
            raise errors.invalid_parameter("tokenVersion must be 2.0.0")
        text = kubeconfig(request.path_params["cluster_id"], entry["server"], entry.get("region", ""))
        return Response(text, media_type="application/octet-stream")

    async def cluster_request(request: Request) -> Response:
        cluster(request)
        return json_response({"clusterId": request.path_params["cluster_id"],
                              "principal": request.state.principal.user})

    return [
        oci_route(API + "/clusters/{cluster_id}/kubeconfig/content", create_kubeconfig, ["POST"]),
        oci_route("/cluster_request/{cluster_id}", cluster_request, ["GET"]),
    ]
