"""Error answers in each stand-in's own format, so that a client meets the error it would meet from the real service.

Each function returns a :class:`CannedResponse`; the same answers are available to a fault rule as
``"preset": "<name>"`` (see ``PRESETS``), and a rule's own ``status``, ``body``, ``content_type`` and ``headers``
override the preset's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

REQUEST_ID = "lastmile-fault-injected"


@dataclass(frozen=True)
class CannedResponse:
    """An HTTP answer written by the proxy instead of the upstream's."""

    status: int
    body: str
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


def s3_slowdown(message: str = "Please reduce your request rate.") -> CannedResponse:
    """S3's throttling answer: 503 ``SlowDown``, which AWS SDKs retry with back-off."""
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>SlowDown</Code><Message>{message}</Message>"
            f"<RequestId>{REQUEST_ID}</RequestId><HostId>{REQUEST_ID}</HostId></Error>")
    return CannedResponse(503, body, "application/xml", {"x-amz-request-id": REQUEST_ID})


def mlflow_internal_error(message: str = "Injected fault: the tracking server failed.") -> CannedResponse:
    """MLflow's REST error body for a server failure: 500 ``INTERNAL_ERROR``."""
    return CannedResponse(500, json.dumps({"error_code": "INTERNAL_ERROR", "message": message}),
                          "application/json")


def registry_blob_upload_error(message: str = "Injected fault: blob upload failed.") -> CannedResponse:
    """The Distribution registry's error envelope, as it answers a failed blob upload: 500 ``UNKNOWN``."""
    return CannedResponse(500, json.dumps({"errors": [{"code": "UNKNOWN", "message": message}]}),
                          "application/json; charset=utf-8", {"Docker-Distribution-Api-Version": "registry/2.0"})


def deployer_unavailable(message: str = "no ready replica") -> CannedResponse:
    """The local deployer's Service answer when no replica is ready: 503 with ``Retry-After``."""
    return CannedResponse(503, json.dumps({"error": message}), "application/json", {"Retry-After": "1"})


def replica_not_ready(message: str = "Injected fault: the model is not ready.") -> CannedResponse:
    """A serving replica's refusal before its model is loaded: 503 ``NOT_READY`` (MLflow's error shape)."""
    return CannedResponse(503, json.dumps({"error_code": "NOT_READY", "message": message}), "application/json")


def oci_too_many_requests(message: str = "User-rate limit exceeded.") -> CannedResponse:
    """OCI's throttling answer: 429 ``TooManyRequests`` with an ``opc-request-id``."""
    return CannedResponse(429, json.dumps({"code": "TooManyRequests", "message": message}), "application/json",
                          {"opc-request-id": REQUEST_ID, "Retry-After": "1"})


PRESETS: dict[str, Callable[[], CannedResponse]] = {
    "s3-slowdown": s3_slowdown,
    "mlflow-internal-error": mlflow_internal_error,
    "registry-blob-upload-error": registry_blob_upload_error,
    "deployer-unavailable": deployer_unavailable,
    "replica-not-ready": replica_not_ready,
    "oci-too-many-requests": oci_too_many_requests,
}
