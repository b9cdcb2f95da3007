"""An OKE cluster's credentials without the ``oci`` CLI: its kubeconfig from CreateKubeconfig, its bearer token from
the SDK's signer.

OKE's kubeconfig has the API server's address and CA, and a user whose ``exec`` runs ``oci ce cluster
generate-token``. That command signs ``GET https://containerengine.<region>.oraclecloud.com/cluster_request/
<cluster-id>`` with the caller's signer, moves the signed ``authorization`` and ``date`` headers (and an instance
principal's ``opc-obo-token``) into the URL's query and hands out the URL, base64url-encoded, as the token; the API
server has Container Engine check it. :func:`generate_token` does the same with any SDK signer (API key, session
token, instance or resource principal). A token is good for about five minutes: :func:`api_client` makes a new one
before four are up.
"""

from __future__ import annotations

import base64
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import yaml

from adapters.oci.auth import Credentials
from adapters.oci.sdk import endpoint_of, make_client, service_errors
from harness.domain.errors import UserError

TOKEN_LIFETIME_S = 240.0
"""How long a generated token is used: ``generate-token`` tells clients to refresh after four minutes."""


@dataclass(frozen=True)
class ClusterAccess:
    """Where a cluster's API server is and how to trust it (from its kubeconfig)."""

    cluster_id: str
    server: str
    certificate_authority: bytes | None
    region: str


def generate_token(signer: Any, region: str, cluster_id: str, now: float | None = None) -> str:
    """An OKE bearer token for ``cluster_id``, as ``oci ce cluster generate-token`` makes it."""
    from oci._vendor.requests import Request

    url = f"https://containerengine.{region}.oraclecloud.com/cluster_request/{cluster_id}"
    signed = signer.do_request_sign(Request("GET", url).prepare())
    params = {"authorization": signed.headers["authorization"], "date": signed.headers["date"]}
    delegation = getattr(signer, "delegation_token", None)
    if delegation:
        params["opc-obo-token"] = delegation
    token_url = Request("GET", url, params=params).prepare().url
    return base64.urlsafe_b64encode(token_url.encode()).decode()


def fetch_access(credentials: Credentials, endpoint: str | None, cluster_id: str) -> ClusterAccess:
    """CreateKubeconfig for ``cluster_id`` (Container Engine at ``endpoint``, else the region's), read."""
    from oci.container_engine import ContainerEngineClient
    from oci.container_engine.models import CreateClusterKubeconfigContentDetails

    client = make_client(ContainerEngineClient, credentials.config, credentials.signer, endpoint)
    with service_errors("Container Engine", endpoint_of(client), f"the kubeconfig of cluster {cluster_id}",
                        credentials.key_id):
        details = CreateClusterKubeconfigContentDetails(token_version="2.0.0", expiration=2592000)
        response = client.create_kubeconfig(cluster_id, create_cluster_kubeconfig_content_details=details)
    data = response.data
    text = data.content if hasattr(data, "content") else data
    return parse_kubeconfig(text.decode() if isinstance(text, bytes) else str(text), cluster_id, credentials.region)


def parse_kubeconfig(text: str, cluster_id: str, region: str) -> ClusterAccess:
    """The current context's cluster of an OKE kubeconfig."""
    try:
        config = yaml.safe_load(text) or {}
        contexts = {c["name"]: c["context"] for c in config.get("contexts", [])}
        clusters = {c["name"]: c["cluster"] for c in config.get("clusters", [])}
        context = contexts.get(config.get("current-context", "")) or next(iter(contexts.values()))
        cluster = clusters[context["cluster"]]
    except (yaml.YAMLError, KeyError, TypeError, StopIteration, AttributeError):
        raise UserError(f"the kubeconfig of cluster {cluster_id} has no usable current context") from None
    authority = cluster.get("certificate-authority-data")
    return ClusterAccess(cluster_id, cluster["server"].rstrip("/"),
                         base64.b64decode(authority) if authority else None, region)


def api_client(access: ClusterAccess, signer: Any, region: str):
    """A ``kubernetes`` ApiClient for the cluster, its bearer token made from ``signer`` and renewed before it
    expires."""
    from kubernetes import client

    config = client.Configuration()
    config.host = access.server
    if access.certificate_authority:
        with tempfile.NamedTemporaryFile("wb", prefix="oke-ca-", suffix=".pem", delete=False) as ca:
            ca.write(access.certificate_authority)  # the client reads a CA from a file only
        config.ssl_ca_cert = ca.name
    expires = [0.0]

    def refresh(configuration) -> None:
        if time.monotonic() < expires[0]:
            return
        configuration.api_key["authorization"] = generate_token(signer, region, access.cluster_id)
        expires[0] = time.monotonic() + TOKEN_LIFETIME_S

    config.api_key = {"authorization": ""}
    config.api_key_prefix = {"authorization": "Bearer"}
    config.refresh_api_key_hook = refresh  # type: ignore[assignment]  # the client declares it as None only
    return client.ApiClient(config)
