"""Factories the wiring calls by ``(port, flavor)``; each builds one adapter from its typed config."""

from __future__ import annotations

from typing import Any

from harness import flavors
from harness.records import Secret


def s3_object_store(cfg: flavors.S3Store, h: Any):
    from adapters.local.s3 import S3ObjectStore

    endpoint = h.endpoint("object_store", cfg.endpoint)
    access = h.secret(cfg.access_key_id) if cfg.access_key_id else None
    secret = h.secret(cfg.secret_access_key) if cfg.secret_access_key else None
    return S3ObjectStore(endpoint, cfg.region, access, secret)


def distribution_registry(cfg: flavors.DistributionRegistry, h: Any):
    from adapters.local.distribution import DistributionRegistry

    return DistributionRegistry(h.endpoint("registry", cfg.endpoint), cfg.username, h.secret(cfg.password))


def mlflow_credentials(h: Any) -> tuple[str, Secret] | None:
    """(username, password secret) for the profile's MLflow, or None for a server without auth."""
    tracking = h.settings.ports.model_registry
    if not getattr(tracking, "password", None):
        return None
    return tracking.username, h.secret(tracking.password)


def mlflow_registry(cfg: flavors.MlflowRegistry, h: Any):
    from adapters.local.mlflow_registry import MlflowModelRegistry

    return MlflowModelRegistry(h.endpoint("mlflow", cfg.tracking_uri), *(mlflow_credentials(h) or ()))


def file_secret_store(cfg: flavors.FileSecrets, h: Any):
    from adapters.local.secrets import FileSecretStore

    return FileSecretStore(h.settings.state_dir / cfg.path)


def jsonl_log_sink(cfg: flavors.JsonlLogs, h: Any):
    from adapters.local.logsink import JsonlLogSink

    return JsonlLogSink(h.settings.state_dir / cfg.path)


def process_standins(_: None, h: Any):
    from adapters.local.standins import standins

    return standins(h.settings, h.port("secret_store"))


def local_deployer(cfg: flavors.LocalDeployer, h: Any):
    from adapters.local.deployer.client import LocalDeployer
    from adapters.local.standins import DEPLOYER_TOKEN

    tracking = h.settings.ports.model_registry
    env = {"MLFLOW_TRACKING_URI": h.endpoint("mlflow", tracking.tracking_uri), "MLFLOW_DISABLE_TELEMETRY": "true",
           "LASTMILE_PREDICTIONS_DIR": str(h.settings.state_dir / "predictions" / "outbox")}
    # Replicas load the version from local files; only this process talks to MLflow, with credentials.
    return LocalDeployer(h.endpoint("deployer", cfg.endpoint), h.secret(str(DEPLOYER_TOKEN)), h.port("artifact_registry"),
                         h.settings.state_dir / "deployer" / "bundles", env, timeout_s=cfg.ready_deadline_s * 3 + 30,
                         mlflow_credentials=mlflow_credentials(h))
