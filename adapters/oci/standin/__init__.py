"""A local stand-in of the OCI REST APIs lastmile's OCI adapters call, driven by the real ``oci`` SDK and CLI with
their endpoint overridden, that checks what OCI checks: request signatures (RSA-SHA256 over the signed headers, the
body's SHA-256, a five-minute clock window), SigV4 for the S3 compatibility API, OCI's error codes and messages.

Run it with ``python -m adapters.oci.standin --host 127.0.0.1 --port PORT --state DIR`` (see :mod:`.app` for the
services and their path prefixes). What ``lastmile up`` calls to prepare a state directory:

- :func:`ensure_api_key` — an API key pair and an SDK config file (mode 0600), the public half registered;
- :func:`register_key` — accept another public key;
- :func:`ensure_customer_secret_key` / :func:`register_customer_secret_key` — S3 access keys;
- :func:`put_secret` — create or rotate a Vault secret;
- :func:`register_log` — a custom log PutLogs may write to.

For drills, :func:`set_drills` makes its Data Science job runs fail, hang or be throttled (see :mod:`.datascience`).

:class:`.standin.OciApiStandIn` is the stand-in in ``lastmile up``'s terms (``prepare``, ``command``, ``is_ready``);
:mod:`.testing` starts it as a child process for tests and drives the real ``oci`` CLI against it.

Importing this package starts nothing and touches no file.
"""

from .datascience import set_drills
from .keys import (
    DEFAULT_REGION,
    DEFAULT_TENANCY,
    DEFAULT_USER,
    ApiKey,
    CustomerSecretKey,
    ensure_api_key,
    ensure_customer_secret_key,
    fingerprint,
    register_customer_secret_key,
    register_key,
)
from .logging_api import register_log
from .vault import put_secret, secret_ocid

__all__ = [
    "DEFAULT_REGION", "DEFAULT_TENANCY", "DEFAULT_USER", "ApiKey", "CustomerSecretKey", "ensure_api_key",
    "ensure_customer_secret_key", "fingerprint", "put_secret", "register_customer_secret_key", "register_key",
    "register_log", "secret_ocid", "set_drills",
]
