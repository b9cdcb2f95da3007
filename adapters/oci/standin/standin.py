"""The OCI API stand-in as one of ``lastmile up``'s stand-ins (the :class:`~harness.infra.standin.StandIn` contract),
for the lead to list among the ``oci-local`` profile's stand-ins.

Its folder is ``<state dir>/oci/``: ``state/`` is the server's (keys, objects, secrets, logs) and ``client/`` holds
the generated API key pair and SDK config file (mode 0600) the OCI adapters use on ``oci-local``. ``prepare`` runs
before every start: it generates the API key on first use and registers it (and a customer secret key for the S3
compatibility API), seeds the given secrets into the stand-in's Vault (a new version only when a value changed), and
registers the given custom logs. Ready when an unsigned GetNamespace is refused with OCI's 401.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import httpx

from harness.infra.standin import Endpoints, StandIn

from . import keys, logging_api, vault


def is_ready(url: str) -> bool:
    """The stand-in answers: an unsigned GetNamespace is refused with OCI's 401 ``NotAuthenticated`` (or served,
    under the benchmark switch), with an ``opc-request-id``."""
    try:
        answer = httpx.get(f"{url}/n/", timeout=1.0)
    except httpx.HTTPError:
        return False
    return answer.status_code in (200, 401) and "opc-request-id" in answer.headers


class OciApiStandIn(StandIn):
    """``python -m adapters.oci.standin`` on one port, every OCI service the adapters call by path prefix."""

    name = "oci"

    def __init__(self, port: int, state_dir: Path, namespace: str = "lastmile", region: str = keys.DEFAULT_REGION,
                 tenancy: str = keys.DEFAULT_TENANCY, user: str = keys.DEFAULT_USER, vault_id: str | None = None,
                 secrets: Callable[[], Mapping[str, str]] | None = None,
                 logs: Iterable[tuple[str, str, str]] = (), jobs_dir: str | None = None,
                 registry_username: str = "", registry_password_secret: str = ""):
        """``jobs_dir``, ``registry_username`` and ``registry_password_secret``: where Data Science job runs live
        (the lastmile state dir) and how they pull their images (see :class:`.app.Settings`)."""
        super().__init__(port, state_dir)
        self.namespace, self.region, self.tenancy, self.user = namespace, region, tenancy, user
        self.vault_id, self.secrets, self.logs = vault_id, secrets, list(logs)
        self.jobs_dir, self.registry_username = jobs_dir, registry_username
        self.registry_password_secret = registry_password_secret

    @property
    def server_state(self) -> Path:
        return self.home / "state"

    @property
    def client_dir(self) -> Path:
        return self.home / "client"

    def prepare(self, port: int) -> None:
        self.api_key = keys.ensure_api_key(self.client_dir, self.server_state, self.tenancy, self.user, self.region)
        self.s3_key = keys.ensure_customer_secret_key(self.server_state, self.tenancy, self.user)
        if self.vault_id and self.secrets:
            for name, value in self.secrets().items():
                vault.put_secret(self.server_state, name, self.vault_id, value)
        for log_id, log_group_id, compartment_id in self.logs:
            logging_api.register_log(self.server_state, log_id, log_group_id, compartment_id)

    def command(self, port: int, endpoints: Endpoints) -> list[str]:
        return [sys.executable, "-m", "adapters.oci.standin", "--host", "127.0.0.1", "--port", str(port),
                "--state", str(self.server_state), "--namespace", self.namespace, "--region", self.region,
                "--s3-compartment-id", self.tenancy,
                *(["--jobs-dir", self.jobs_dir] if self.jobs_dir else []),
                *(["--registry-username", self.registry_username] if self.registry_username else []),
                *(["--registry-password-secret", self.registry_password_secret] if self.registry_password_secret
                  else [])]

    def credential_files(self) -> list[Path]:
        """The customer secret keys: SigV4 is an HMAC, so the server holds each secret key as it is."""
        return [keys.keys_dir(self.server_state) / "customer_secret_keys.json"]

    def is_ready(self, url: str) -> bool:
        return is_ready(url)
