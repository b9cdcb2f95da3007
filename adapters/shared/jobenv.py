"""What every JobRunner flavor hands its training jobs: the profile's MLflow and object storage endpoints and
credentials (values that are never journaled), and MLflow's client limits. The local ``subprocess`` flavor puts
them in the job's environment directly; the oci ``datascience`` flavor sends them as the job run's environment
variables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.domain.records import Secret

if TYPE_CHECKING:
    from harness.bootstrap import Harness

CLIENT_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
"""MLflow's client retries a failing server for about four minutes by default; these bound it to seconds (a dead
server fails in about 3 s, a hung one in about 30 s), in the harness's own client and in the training job."""


PROXIED_DOWNLOADS = {"MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false"}
"""An MLflow server that advertises presigned downloads sends its clients to its artifact store directly, at the
address the server itself uses for it. In the containers profile that is the S3 stand-in's alias on the stand-ins'
own network, a name no client on the host resolves (the training job failed after four minutes of retries); so
there the clients download through the server."""


def mlflow_client_settings(h: Harness) -> dict[str, str]:
    """MLflow's client settings for the profile: the limits above, and proxied downloads when the MLflow stand-in
    runs in a container."""
    tracking = h.settings.ports.model_registry
    in_container = h.settings.standins.mode == "containers" and not getattr(tracking, "tracking_uri", None)
    return {**CLIENT_LIMITS, **(PROXIED_DOWNLOADS if in_container else {})}


def mlflow_credentials(h: Harness) -> tuple[str, Secret] | None:
    """(username, password) for the profile's MLflow, or None for a server without auth."""
    tracking = h.settings.ports.model_registry
    password = getattr(tracking, "password", None)
    if not password:
        return None
    return getattr(tracking, "username", "lastmile"), h.secret(password)


def job_environment(h: Harness) -> dict[str, str]:
    """What a training job needs to reach MLflow and object storage (credentials included: never journaled).

    It also sets MLflow's HTTP client limits. MLflow's defaults (7 retries, backoff factor 2, 120 s a request)
    keep a job retrying a dead server for about 4 minutes; with 2 retries, factor 1 and 10 s a refused
    connection fails after 3 attempts and 2-4 s of backoff, a server that accepts but never answers after
    3 x 10 s plus that backoff, while a busy server still gets 10 s a request and two retries (429 and 5xx
    answers included)."""
    ports = h.settings.ports
    env = {"MLFLOW_TRACKING_URI": h.endpoint("mlflow", getattr(ports.model_registry, "tracking_uri", None)),
           "MLFLOW_DISABLE_TELEMETRY": "true", **mlflow_client_settings(h)}
    credentials = mlflow_credentials(h)
    if credentials is not None:
        env["MLFLOW_TRACKING_USERNAME"] = credentials[0]
        env["MLFLOW_TRACKING_PASSWORD"] = credentials[1].reveal()
    access = ports.object_store.s3_access(h)  # the job reads its data with an S3 client, on every object store
    if access is not None:
        env["LASTMILE_S3_ENDPOINT"] = access.endpoint or ""
        env["AWS_DEFAULT_REGION"] = access.region
        if access.access_key_id and access.secret_access_key:
            env["AWS_ACCESS_KEY_ID"] = access.access_key_id.reveal()
            env["AWS_SECRET_ACCESS_KEY"] = access.secret_access_key.reveal()
    return env
