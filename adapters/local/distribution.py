"""ArtifactRegistry over the OCI distribution API through ORAS (the ``oras`` package).

Works with the CNCF Distribution registry (the OCIR stand-in) and, with https, with OCIR itself.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

import httpx
import oras.client
import oras.container

from harness.domain.errors import AuthError, IntegrityError, NotFound, UnreachableError, UserError
from harness.domain.media import OCI_MANIFEST, canonical_json
from harness.domain.records import ArtifactRef, Secret, oci_digest


class DistributionRegistry:
    def __init__(self, endpoint: str, username: str, password: Secret):
        url = urlparse(endpoint)
        self.endpoint = endpoint.rstrip("/")
        self._host = url.netloc
        self._auth = (username, password)
        # The token backend fails on the registry's basic realm; basic auth is what htpasswd speaks.
        self._client = oras.client.OrasClient(hostname=self._host, insecure=url.scheme == "http", auth_backend="basic")
        self._client.auth.set_basic_auth(username, password.reveal())
        self._checked = False

    @property
    def registry(self) -> str:
        return self._host

    def has_blob(self, repository: str, digest: str) -> bool:
        response = self._request(lambda: self._client.get_blob(self._ref(repository), digest, head=True))
        return response.status_code == 200

    def push_blob(self, repository: str, data: bytes) -> str:
        digest = oci_digest(data)
        if self.has_blob(repository, digest):
            return digest
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "blob"
            path.write_bytes(data)
            layer = {"mediaType": "application/octet-stream", "digest": digest, "size": len(data)}
            response = self._request(lambda: self._client.upload_blob(str(path), self._ref(repository), layer))
        if response.status_code not in (200, 201, 202):
            raise UserError(f"registry {self.endpoint}: push of {digest[:19]} to {repository} failed "
                            f"({response.status_code} {response.text[:200]})")
        return digest

    def fetch_blob(self, repository: str, digest: str) -> bytes:
        response = self._request(lambda: self._client.get_blob(self._ref(repository), digest))
        if response.status_code == 404:
            raise NotFound(f"{self._host}/{repository}@{digest}: no such blob")
        response.raise_for_status()
        data = response.content
        if oci_digest(data) != digest:
            raise IntegrityError(f"{self._host}/{repository}@{digest}: content does not match its digest")
        return data

    def push_manifest(self, repository: str, manifest: Mapping, tag: str | None = None) -> ArtifactRef:
        body = canonical_json(manifest)
        digest = oci_digest(body)
        for reference in ([digest] + ([tag] if tag else [])):
            url = f"{self.endpoint}/v2/{repository}/manifests/{reference}"
            response = self._http("PUT", url, content=body, headers={"Content-Type": OCI_MANIFEST})
            if response.status_code not in (200, 201):
                detail = response.text[:300]
                if "MANIFEST_BLOB_UNKNOWN" in detail or "BLOB_UNKNOWN" in detail:
                    raise NotFound(f"{self._host}/{repository}: manifest refers to a blob the registry lacks")
                raise UserError(f"registry {self.endpoint}: manifest push failed ({response.status_code} {detail})")
        return ArtifactRef(self._host, repository, digest)

    def fetch_manifest(self, repository: str, reference: str) -> dict:
        url = f"{self.endpoint}/v2/{repository}/manifests/{reference}"
        response = self._http("GET", url, headers={"Accept": OCI_MANIFEST})
        if response.status_code == 404:
            raise NotFound(f"{self._host}/{repository}:{reference}: no such manifest")
        response.raise_for_status()
        if reference.startswith("sha256:") and oci_digest(response.content) != reference:
            raise IntegrityError(f"{self._host}/{repository}@{reference}: manifest does not match its digest")
        return response.json()

    # internals -----------------------------------------------------------------------------------
    def _ref(self, repository: str) -> oras.container.Container:
        return oras.container.Container(repository, registry=self._host)

    def _http(self, method: str, url: str, **kwargs) -> httpx.Response:
        """Manifests go over plain HTTP so that the bytes we hash are the bytes the registry stores."""
        self._ping()
        user, password = self._auth
        try:
            response = httpx.request(method, url, auth=(user, password.reveal()), timeout=30, **kwargs)
        except httpx.HTTPError as exc:
            raise UnreachableError(f"registry at {self.endpoint} did not answer ({type(exc).__name__})",
                                   url=self.endpoint) from None
        if response.status_code == 401:
            raise AuthError(f"registry at {self.endpoint} refused the credentials of '{user}'", url=self.endpoint)
        return response

    def _request(self, call):
        self._ping()
        response = call()
        if response.status_code == 401:
            raise AuthError(f"registry at {self.endpoint} refused the credentials of '{self._auth[0]}'",
                            url=self.endpoint)
        return response

    def _ping(self) -> None:
        """Fail fast with the endpoint's name: ORAS itself retries a dead endpoint for minutes."""
        if self._checked:
            return
        user, password = self._auth
        try:
            response = httpx.get(f"{self.endpoint}/v2/", auth=(user, password.reveal()), timeout=5)
        except httpx.HTTPError:
            raise UnreachableError(f"registry at {self.endpoint} did not answer", url=self.endpoint) from None
        if response.status_code == 401:
            raise AuthError(f"registry at {self.endpoint} refused the credentials of '{user}'", url=self.endpoint)
        self._checked = True
