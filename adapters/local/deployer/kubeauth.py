"""OKE's bearer tokens, checked the way OKE checks them: by replaying the signed request they carry.

``oci ce cluster generate-token`` signs ``GET https://containerengine.<region>.oraclecloud.com/cluster_request/
<cluster-id>`` with the caller's API key (headers ``date``, ``(request-target)``, ``host``) and hands out the
base64url of that URL with the ``authorization`` and ``date`` headers moved into its query. The API server asks
Container Engine whether that signature holds. Here the front door replays the request against the OCI API stand-in
(which verifies OCI signatures against its registered keys) with the original ``Host``, so the local deployer needs
no key material and no import of the oci family. A verdict is cached for a minute; a token is good for about four.
"""

from __future__ import annotations

import base64
import binascii
import time
import urllib.parse

import httpx

PATH_PREFIX = "/cluster_request/"
CACHE_S = 60.0


class OkeTokens:
    """Verifies OKE tokens for ``cluster_id`` (any cluster when empty) with the stand-in at ``verifier_url``."""

    def __init__(self, verifier_url: str, cluster_id: str = "", timeout_s: float = 5.0):
        self.verifier_url = verifier_url.rstrip("/")
        self.cluster_id = cluster_id
        self._http = httpx.AsyncClient(timeout=timeout_s)
        self._verdicts: dict[str, float] = {}

    async def verify(self, token: str) -> bool:
        if self._verdicts.get(token, 0.0) > time.monotonic():
            return True
        request = decode(token)
        if request is None:
            return False
        host, path, headers = request
        if self.cluster_id and path != PATH_PREFIX + self.cluster_id:
            return False
        try:
            answer = await self._http.get(self.verifier_url + path, headers={"host": host, **headers})
        except httpx.HTTPError:
            return False
        if answer.status_code != 200:
            return False
        self._verdicts = {t: v for t, v in self._verdicts.items() if v > time.monotonic()}
        self._verdicts[token] = time.monotonic() + CACHE_S
        return True

    async def aclose(self) -> None:
        await self._http.aclose()


def decode(token: str) -> tuple[str, str, dict[str, str]] | None:
    """(host, path, signed headers) of an OKE token, or None when it is not one."""
    try:
        url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    if not parts.path.startswith(PATH_PREFIX) or not parts.hostname or "authorization" not in query:
        return None
    headers = {"authorization": query["authorization"], "date": query.get("date", "")}
    if "opc-obo-token" in query:
        headers["opc-obo-token"] = query["opc-obo-token"]
    return parts.netloc, parts.path, headers
