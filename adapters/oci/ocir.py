"""ArtifactRegistry on OCI Container Registry (OCIR): the shared Distribution client, with OCIR's host and login.

OCIR keeps a tenancy's repositories under its namespace (``fra.ocir.io/<namespace>/lastmile/training``); the
``ocir`` flavor's ``repository_prefix`` starts with the namespace, so the refs pushed are full, pullable paths."""

from __future__ import annotations

from urllib.parse import urlparse

from adapters.shared.distribution import DistributionRegistry
from harness.domain.errors import UserError
from harness.domain.records import Secret


def ocir_host(region: str) -> str:
    """OCIR's registry host for a region: ``<region-key>.ocir.io`` in the commercial realm (``fra.ocir.io`` for
    eu-frankfurt-1), ``ocir.<region>.oci.<realm domain>`` elsewhere. Takes a region identifier or its key."""
    from oci import regions

    region = region.strip().lower()
    if region in regions.REGIONS_SHORT_NAMES:
        region = regions.REGIONS_SHORT_NAMES[region]
    realm = regions.REGION_REALMS.get(region)
    if realm is None:
        raise UserError(f"artifact_registry: OCI region {region!r} is unknown to the oci SDK",
                        hint="set artifact_registry.endpoint to the registry's URL")
    if realm == "oc1":
        keys = {identifier: key for key, identifier in regions.REGIONS_SHORT_NAMES.items()}
        if region in keys:
            return f"{keys[region]}.ocir.io"
    return f"ocir.{region}.oci.{regions.REALMS[realm]}"


def ocir_login(namespace: str, username: str) -> str:
    """OCIR's user name: ``<namespace>/<user>`` (a federated user's is ``<namespace>/<idp>/<user>``, given whole)."""
    return username if "/" in username else f"{namespace}/{username}"


def open_registry(region: str, namespace: str, username: str, token: Secret, token_ref: str,
                  endpoint: str | None = None) -> DistributionRegistry:
    """The Distribution client at ``endpoint`` (a stand-in) or ``https://`` OCIR's host for ``region``, logged in
    as ``<namespace>/<user>`` with the auth token (``token_ref`` names it in errors, never its value)."""
    url = endpoint or f"https://{ocir_host(region)}"
    if not urlparse(url).netloc:
        raise UserError(f"artifact_registry.endpoint {url!r} is not a URL (http[s]://host[:port])")
    return DistributionRegistry(url, ocir_login(namespace, username), token, token_ref)
