"""SecretStore over OCI Vault's Secrets retrieval API (GetSecretBundle, GetSecretBundleByName)."""

from __future__ import annotations

import base64
import os
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
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

    Writing goes through the Vault management API (CreateSecret, UpdateSecret for a new version) and needs the
    vault's master encryption key (``key_id``) and compartment; without them :meth:`put`, and :meth:`ensure` of
    a secret the vault lacks, raise a :class:`UserError` naming the reference to create in the tenancy."""

    service = "OCI Vault"

    def __init__(self, secrets: Any, vault_id: str, *, ttl_s: float = 60.0, signer_id: str = "?",
                 clock: Callable[[], float] = time.monotonic, vaults: Any = None, compartment_id: str = "",
                 key_id: str | None = None):
        self._secrets, self.vault_id = secrets, vault_id
        self._vaults, self.compartment_id, self.key_id = vaults, compartment_id, key_id
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
        """A new version of the secret named ``ref`` (created when missing), through the management API."""
        if ref.scheme == "env" or ref.name.startswith(SECRET_OCID_PREFIX) or self._vaults is None or not self.key_id:
            raise self._managed_elsewhere(ref, "cannot be written by lastmile")
        from oci.vault.models import Base64SecretContentDetails, CreateSecretDetails, UpdateSecretDetails

        content = Base64SecretContentDetails(content_type="BASE64", content=base64.b64encode(value.encode()).decode())
        with service_errors(self.service, self.endpoint, f"secret {ref} (vault {self.vault_id})", self.signer_id):
            found = self._vaults.list_secrets(self.compartment_id, name=ref.name, vault_id=self.vault_id).data
            if found:
                self._vaults.update_secret(found[0].id, UpdateSecretDetails(secret_content=content))
            else:
                self._vaults.create_secret(CreateSecretDetails(
                    compartment_id=self.compartment_id, vault_id=self.vault_id, key_id=self.key_id,
                    secret_name=ref.name, secret_content=content))
        with self._lock:
            self._cache.pop(ref.name, None)

    def ensure(self, ref: SecretRef, length: int = 24) -> Secret:
        """Resolve ``ref``, creating a random value when the vault lacks it and lastmile may write (``key_id``)."""
        try:
            return self.resolve(ref)
        except NotFound:
            if ref.scheme == "env":
                raise
            if self._vaults is None or not self.key_id:
                raise self._managed_elsewhere(ref, "is not in the vault") from None
        self.put(ref, secrets.token_urlsafe(length))
        return self.resolve(ref)

    def schedule_deletion(self, ref: SecretRef, days: int = 1) -> None:
        """ScheduleSecretDeletion (``days`` from now, 1 to 30 as OCI allows): the secret is inaccessible at once
        and can be restored with :meth:`cancel_deletion` until then. Not a port method: drills use it."""
        from oci.vault.models import ScheduleSecretDeletionDetails

        when = datetime.now(UTC) + timedelta(days=days)
        with service_errors(self.service, self.endpoint, f"secret {ref} (vault {self.vault_id})", self.signer_id):
            self._management().schedule_secret_deletion(self._secret_id(ref),
                                                        ScheduleSecretDeletionDetails(time_of_deletion=when))
        with self._lock:
            self._cache.pop(ref.name, None)

    def cancel_deletion(self, ref: SecretRef) -> None:
        """CancelSecretDeletion: the secret is back as it was before its deletion was scheduled."""
        with service_errors(self.service, self.endpoint, f"secret {ref} (vault {self.vault_id})", self.signer_id):
            self._management().cancel_secret_deletion(self._secret_id(ref))

    def _management(self) -> Any:
        if self._vaults is None:
            raise UserError(f"vault {self.vault_id}: lastmile has no management access to it (no key_id)")
        return self._vaults

    def _secret_id(self, ref: SecretRef) -> str:
        if ref.name.startswith(SECRET_OCID_PREFIX):
            return ref.name
        found = self._management().list_secrets(self.compartment_id, name=ref.name, vault_id=self.vault_id).data
        if not found:
            raise NotFound(f"secret {ref}: no secret {ref.name} in vault {self.vault_id}")
        return found[0].id

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


def open_store(credentials: Credentials, endpoint: str | None, vault_id: str, ttl_s: float = 60.0,
               management_endpoint: str | None = None, compartment_id: str = "",
               key_id: str | None = None) -> VaultSecretStore:
    """A :class:`VaultSecretStore` with its own Secrets retrieval client, at ``endpoint`` or the region's, and a
    Vault management client (for writes) at ``management_endpoint`` or the region's."""
    from oci.secrets import SecretsClient
    from oci.vault import VaultsClient

    secrets_client = make_client(SecretsClient, credentials.config, credentials.signer, endpoint)
    vaults = make_client(VaultsClient, credentials.config, credentials.signer, management_endpoint) if key_id else None
    return VaultSecretStore(secrets_client, vault_id, ttl_s=ttl_s, signer_id=credentials.key_id, vaults=vaults,
                            compartment_id=compartment_id, key_id=key_id)


def _decoded(bundle: Any, ref: SecretRef) -> str:
    content = getattr(bundle, "secret_bundle_content", None)
    if content is None or getattr(content, "content", None) is None:
        raise UserError(f"secret {ref}: the vault returned no content for it")
    try:
        return base64.b64decode(content.content, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise UserError(f"secret {ref}: its content is not base64 of UTF-8 text") from None
