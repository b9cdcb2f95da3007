"""A fault proxy for lastmile's drills: Toxiproxy 2.x's HTTP API and TCP toxics, plus HTTP fault rules.

Run it with ``python -m adapters.local.faultproxy --host 127.0.0.1 --port PORT [--state FILE]``; drive it with
Toxiproxy's own clients or with :class:`FaultProxyClient`. Every proxy listens on 127.0.0.1 only.

- Toxics (``latency``, ``bandwidth``, ``slow_close``, ``timeout``, ``reset_peer``, ``slicer``, ``limit_data``,
  ``noop``) act on the TCP stream of each connection, per direction, drawn per connection from their toxicity.
- HTTP fault rules (``/proxies/{proxy}/faults``) answer matching requests with an error in the service's own
  format (:mod:`.presets`) instead of forwarding them.
- ``/proxies/{proxy}/stats`` counts what happened, so a drill can prove its fault took effect.
- ``--state FILE`` keeps the proxies across restarts; toxics and fault rules are not kept: a restart clears faults.

Importing this package starts nothing.
"""

from .client import FaultCount, FaultProxyClient, FaultProxyError, HttpFault, Proxy, ProxyStats, Toxic, ToxicCount
from .presets import (
    PRESETS,
    CannedResponse,
    deployer_unavailable,
    mlflow_internal_error,
    oci_too_many_requests,
    registry_blob_upload_error,
    replica_not_ready,
    s3_slowdown,
)

__all__ = [
    "PRESETS", "CannedResponse", "FaultCount", "FaultProxyClient", "FaultProxyError", "HttpFault", "Proxy",
    "ProxyStats", "Toxic", "ToxicCount", "deployer_unavailable", "mlflow_internal_error", "oci_too_many_requests",
    "registry_blob_upload_error", "replica_not_ready", "s3_slowdown",
]
