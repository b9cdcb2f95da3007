"""Factory the wiring calls for ``("job_runner", "subprocess")``."""

from __future__ import annotations

from typing import Any

from adapters.local.factories import mlflow_credentials
from harness import flavors


def subprocess_job_runner(cfg: flavors.SubprocessJobs, h: Any):
    """Jobs get the endpoints and credentials of this profile through the runner's environment,
    never through the :class:`~harness.records.JobSpec`, which is journaled."""
    from adapters.local.jobs import SubprocessJobRunner

    return SubprocessJobRunner(h.port("artifact_registry"), h.settings.state_dir, env=job_environment(h),
                               max_timeout_s=cfg.timeout_s)


def job_environment(h: Any) -> dict[str, str]:
    ports = h.settings.ports
    env = {
        "MLFLOW_TRACKING_URI": h.endpoint("mlflow", ports.model_registry.tracking_uri),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    credentials = mlflow_credentials(h)
    if credentials is not None:
        env["MLFLOW_TRACKING_USERNAME"] = credentials[0]
        env["MLFLOW_TRACKING_PASSWORD"] = credentials[1].reveal()
    store = ports.object_store
    if store.flavor == "s3":
        env["LASTMILE_S3_ENDPOINT"] = h.endpoint("object_store", store.endpoint)
        env["AWS_DEFAULT_REGION"] = store.region
        if store.access_key_id and store.secret_access_key:
            env["AWS_ACCESS_KEY_ID"] = h.secret(store.access_key_id).reveal()
            env["AWS_SECRET_ACCESS_KEY"] = h.secret(store.secret_access_key).reveal()
    return env
