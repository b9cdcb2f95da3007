"""SecretStore over OCI Vault's Secrets retrieval API (GetSecretBundle, GetSecretBundleByName)."""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from harness.domain.errors import NotFound, UserError
from harness.domain.records import Secret, SecretRef

from .auth import Credentials
from .sdk import endpoint_of, make_client, service_errors

SECRET_OCID_PREFIX = "ocid1.vaultsecret."


class VaultSecretStore:
    """Resolves ``vault:OCID`` with GetSecretBundle, and ``vault:NAME`` (or ``secret:NAME``, so a profile's
    ``secret:`` references keep working on OCI) with GetSecretBundleByName in ``vault_id``; ``env:VAR`` reads the
    environment. Values are base64-decoded, cached for ``ttl_s`` seconds (0: never cached), and never logged.

    The retrieval API cannot write, and lastmile does not manage the tenancy's secrets: :meth:`put`, and
    :meth:`ensure` of a secret the vault lacks, raise a :class:`UserError` naming the reference to create there
    (with Terraform, like the rest of the tenancy)."""

    service = "OCI Vault"

    def __init__(self, secrets: Any, vault_id: str, *, ttl_s: float = 60.0, signer_id: str = "?",
                 clock: Callable[[], float] = time.monotonic):
        self._secrets, self.vault_id = secrets, vault_id
        self.ttl_s, self._clock = ttl_s, clock
        self.signer_id = signer_id
        self.endpoint = endpoint_of(secrets)
        self._cache: dict[str, tuple[float, Secret]] = {}
        self._lock = threading.Lock()

    def resolve(self, ref: SecretRef) -> Secret:
        if ref.scheme == "env":
            if ref.name not in os.environ:
                raise NotFound(f"secret {ref}: environment variable {ref.name} is not set")
            return Secret(os.environ[ref.name])
        cached = self._cached(ref)
        if cached is not None:
            return cached
        with service_errors(self.service, self.endpoint, f"secret {ref} (vault {self.vault_id})", self.signer_id):
            if ref.name.startswith(SECRET_OCID_PREFIX):
                bundle = self._secrets.get_secret_bundle(secret_id=ref.name).data
            else:
                bundle = self._secrets.get_secret_bundle_by_name(secret_name=ref.name, vault_id=self.vault_id).data
        secret = Secret(_decoded(bundle, ref))
        if self.ttl_s > 0:
            with self._lock:
                self._cache[ref.name] = (self._clock() + self.ttl_s, secret)
        return secret

    def put(self, ref: SecretRef, value: str) -> None:
        """Refused: secrets are written in the tenancy, not by lastmile."""
        raise self._managed_elsewhere(ref, "cannot be written by lastmile")

    def ensure(self, ref: SecretRef, length: int = 24) -> Secret:
        """Resolve ``ref``; a secret the vault lacks is a :class:`UserError` naming it (never generated here)."""
        try:
            return self.resolve(ref)
        except NotFound:
            if ref.scheme == "env":
                raise
            raise self._managed_elsewhere(ref, "is not in the vault") from None

    def forget(self) -> None:
        """Drop every cached value (the next resolve reads the vault again)."""
        with self._lock:
            self._cache.clear()

    def _cached(self, ref: SecretRef) -> Secret | None:
        with self._lock:
            entry = self._cache.get(ref.name)  # secret:NAME and vault:NAME name the same secret
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]

    def _managed_elsewhere(self, ref: SecretRef, what: str) -> UserError:
        return UserError(f"secret {ref} {what}: OCI Vault secrets are managed in the tenancy (Terraform); "
                         f"create or update {ref.name} in vault {self.vault_id} there")


def open_store(credentials: Credentials, endpoint: str | None, vault_id: str, ttl_s: float = 60.0) -> VaultSecretStore:
    """A :class:`VaultSecretStore` with its own Secrets retrieval client, at ``endpoint`` or the region's."""
    from oci.secrets import SecretsClient

    secrets = make_client(SecretsClient, credentials.config, credentials.signer, endpoint)
    return VaultSecretStore(secrets, vault_id, ttl_s=ttl_s, signer_id=credentials.key_id)


def _decoded(bundle: Any, ref: SecretRef) -> str:
    content = getattr(bundle, "secret_bundle_content", None)
    if content is None or getattr(content, "content", None) is None:
        raise UserError(f"secret {ref}: the vault returned no content for it")
    try:
        return base64.b64decode(content.content, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise UserError(f"secret {ref}: its content is not base64 of UTF-8 text") from None
