"""Factories the wiring calls by ``(port, flavor)``; each builds one adapter from its typed config."""

from __future__ import annotations

from typing import Any

from harness import flavors


def s3_object_store(cfg: flavors.S3Store, h: Any):
    from adapters.local.s3 import S3ObjectStore

    endpoint = h.endpoint("object_store", cfg.endpoint)
    access = h.secret(cfg.access_key_id) if cfg.access_key_id else None
    secret = h.secret(cfg.secret_access_key) if cfg.secret_access_key else None
    return S3ObjectStore(endpoint, cfg.region, access, secret)


def distribution_registry(cfg: flavors.DistributionRegistry, h: Any):
    from adapters.local.distribution import DistributionRegistry

    return DistributionRegistry(h.endpoint("registry", cfg.endpoint), cfg.username, h.secret(cfg.password))


def mlflow_registry(cfg: flavors.MlflowRegistry, h: Any):
    from adapters.local.mlflow_registry import MlflowModelRegistry

    return MlflowModelRegistry(h.endpoint("mlflow", cfg.tracking_uri))


def file_secret_store(cfg: flavors.FileSecrets, h: Any):
    from adapters.local.secrets import FileSecretStore

    return FileSecretStore(h.settings.state_dir / cfg.path)


def jsonl_log_sink(cfg: flavors.JsonlLogs, h: Any):
    from adapters.local.logsink import JsonlLogSink

    return JsonlLogSink(h.settings.state_dir / cfg.path)


def process_standins(_: None, h: Any):
    from adapters.local.standins import standins

    return standins(h.settings, h.port("secret_store"))
