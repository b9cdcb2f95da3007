"""ArtifactRegistry over the OCI distribution API (the CNCF Distribution registry, the OCIR stand-in; OCIR itself
over https), spoken with httpx.

The four calls a registry needs (check, fetch and upload a blob; put and get a manifest) go over plain HTTP with
basic auth and bounded retries. oras-py did this before, but its retry decorator is hard-coded: every 5xx is
retried with sleeps of 3, 5, 11, 29 and 83 s, so a registry failing uploads held a build for 132 s and then
raised a ValueError that named no registry. Here a server error is retried twice within two seconds and then
reported as a :class:`CapacityError` naming the registry.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from urllib.parse import urlencode, urljoin, urlparse

import httpx

from harness.domain.errors import AuthError, CapacityError, IntegrityError, NotFound, UnreachableError, UserError
from harness.domain.media import OCI_MANIFEST, canonical_json
from harness.domain.records import ArtifactRef, Secret, oci_digest

RETRIES = (0.5, 1.5)
"""Pauses before each retry of a request the registry failed (5xx, 429) or dropped."""


class DistributionRegistry:
    def __init__(self, endpoint: str, username: str, password: Secret, password_ref: str | None = None):
        """``password_ref`` names where the password comes from, so a refusal names the secret (never its value)."""
        self.endpoint = endpoint.rstrip("/")
        self._host = urlparse(endpoint).netloc
        self._user, self._password, self._password_ref = username, password, password_ref
        self._http = httpx.Client(auth=(username, password.reveal()), timeout=30)
        self._checked = False

    @property
    def registry(self) -> str:
        return self._host

    def has_blob(self, repository: str, digest: str) -> bool:
        return self._call("HEAD", f"/v2/{repository}/blobs/{digest}", allow=(404,)).status_code == 200

    def push_blob(self, repository: str, data: bytes) -> str:
        """Upload ``data`` in one request (a monolithic upload) unless the registry has it already."""
        digest = oci_digest(data)
        if self.has_blob(repository, digest):
            return digest
        started = self._call("POST", f"/v2/{repository}/blobs/uploads/")
        location = started.headers.get("location")
        if not location:
            raise UserError(f"registry at {self.endpoint} started an upload to {repository} without a location")
        # The location carries the upload's state in its query: add the digest to it (httpx's params would replace it).
        target = urljoin(self.endpoint + "/", location)
        target += ("&" if "?" in target else "?") + urlencode({"digest": digest})
        self._call("PUT", target, content=data, headers={"Content-Type": "application/octet-stream"})
        return digest

    def fetch_blob(self, repository: str, digest: str) -> bytes:
        response = self._call("GET", f"/v2/{repository}/blobs/{digest}", allow=(404,))
        if response.status_code == 404:
            raise NotFound(f"{self._host}/{repository}@{digest}: no such blob")
        if oci_digest(response.content) != digest:
            raise IntegrityError(f"{self._host}/{repository}@{digest}: content does not match its digest")
        return response.content

    def push_manifest(self, repository: str, manifest: Mapping, tag: str | None = None) -> ArtifactRef:
        """Put the manifest as canonical JSON, so that the bytes we hash are the bytes the registry stores."""
        body = canonical_json(manifest)
        digest = oci_digest(body)
        for reference in ([digest] + ([tag] if tag else [])):
            response = self._call("PUT", f"/v2/{repository}/manifests/{reference}", content=body,
                                  headers={"Content-Type": OCI_MANIFEST}, allow=(400, 404))
            if response.status_code in (400, 404):
                detail = response.text[:300]
                if "BLOB_UNKNOWN" in detail:
                    raise NotFound(f"{self._host}/{repository}: manifest refers to a blob the registry lacks")
                raise UserError(f"registry {self.endpoint}: manifest push failed ({response.status_code} {detail})")
        return ArtifactRef(self._host, repository, digest)

    def fetch_manifest(self, repository: str, reference: str) -> dict:
        response = self._call("GET", f"/v2/{repository}/manifests/{reference}", headers={"Accept": OCI_MANIFEST},
                              allow=(404,))
        if response.status_code == 404:
            raise NotFound(f"{self._host}/{repository}:{reference}: no such manifest")
        if reference.startswith("sha256:") and oci_digest(response.content) != reference:
            raise IntegrityError(f"{self._host}/{repository}@{reference}: manifest does not match its digest")
        return response.json()

    def repositories(self) -> list[str]:
        """The repositories the registry's catalog lists (``GET /v2/_catalog``), with this client's login."""
        return sorted(self._call("GET", "/v2/_catalog", params={"n": 1000}).json().get("repositories") or [])

    # internals -----------------------------------------------------------------------------------
    def _call(self, method: str, path: str, allow: tuple[int, ...] = (), **kwargs) -> httpx.Response:
        """One request, retried while the registry fails it (5xx, 429) or drops it; any other answer but a
        success or one of ``allow`` is an error that names the registry."""
        self._ping()
        url = path if path.startswith("http") else self.endpoint + path
        response: httpx.Response | None = None
        for pause in (*RETRIES, None):
            try:
                response = self._http.request(method, url, **kwargs)
            except httpx.HTTPError as exc:
                if pause is None:
                    raise UnreachableError(f"registry at {self.endpoint} did not answer {method} {path} "
                                           f"({type(exc).__name__})", url=self.endpoint) from None
            else:
                if response.status_code < 500 and response.status_code != 429:
                    break
            if pause is not None:
                time.sleep(pause)
        assert response is not None
        status = response.status_code
        if status in (401, 403):
            raise self._refused(status)
        if status >= 500 or status == 429:
            raise CapacityError(f"registry at {self.endpoint} failed {method} {path} ({status}: "
                                f"{response.text[:200].strip()}) after {len(RETRIES)} retries", url=self.endpoint)
        if status >= 300 and status not in allow:
            raise UserError(f"registry at {self.endpoint} answered {status} to {method} {path}: "
                            f"{response.text[:200].strip()}")
        return response

    def _refused(self, status: int) -> AuthError:
        secret = f" (password {self._password_ref})" if self._password_ref else ""
        return AuthError(f"registry at {self.endpoint} refused the credentials of '{self._user}'{secret} ({status})",
                         url=self.endpoint, secret_ref=self._password_ref)

    def _ping(self) -> None:
        """Fail fast, naming the endpoint, before the first real call."""
        if self._checked:
            return
        try:
            response = self._http.get(f"{self.endpoint}/v2/", timeout=5)
        except httpx.HTTPError:
            raise UnreachableError(f"registry at {self.endpoint} did not answer", url=self.endpoint) from None
        if response.status_code in (401, 403):
            raise self._refused(response.status_code)
        self._checked = True
