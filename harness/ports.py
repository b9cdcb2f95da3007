"""The ports: small roles the pipeline needs, as ``typing.Protocol`` classes.

Signatures use only :mod:`harness.records` and builtins. Each port has an in-memory
implementation in ``adapters.local.memory`` and real adapters per flavor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol, Sequence, runtime_checkable

from harness.records import (
    ArtifactRef,
    BuildRef,
    ChangeSet,
    DeploymentSpec,
    DeploymentStatus,
    JobRun,
    JobSpec,
    LogEvent,
    ModelVersion,
    ObjectRef,
    Revision,
    Secret,
    SecretRef,
    TrackedRun,
)


@runtime_checkable
class ObjectStore(Protocol):
    """S3-compatible object storage (OCI Object Storage in the cloud)."""

    def ensure_bucket(self, bucket: str) -> None: ...

    def put(self, bucket: str, key: str, data: bytes) -> ObjectRef:
        """Store ``data``; the returned ref carries its sha256, which the store keeps as metadata."""

    def get(self, bucket: str, key: str) -> bytes:
        """Read an object back; raises ``IntegrityError`` when it no longer matches its sha256."""

    def head(self, bucket: str, key: str) -> ObjectRef | None: ...

    def list(self, bucket: str, prefix: str = "") -> list[ObjectRef]: ...

    def delete(self, bucket: str, key: str) -> None: ...


@runtime_checkable
class ArtifactRegistry(Protocol):
    """An OCI distribution registry (OCIR in the cloud). Content is addressed by digest."""

    @property
    def registry(self) -> str:
        """The registry's host[:port], as it appears in an :class:`ArtifactRef`."""

    def has_blob(self, repository: str, digest: str) -> bool: ...

    def push_blob(self, repository: str, data: bytes) -> str:
        """Upload ``data`` (skipped when the digest is already there) and return its digest."""

    def fetch_blob(self, repository: str, digest: str) -> bytes: ...

    def push_manifest(self, repository: str, manifest: Mapping, tag: str | None = None) -> ArtifactRef: ...

    def fetch_manifest(self, repository: str, reference: str) -> dict: ...


@runtime_checkable
class ImageBuilder(Protocol):
    """Turns a source directory into a build output pushed by digest."""

    def build(self, name: str, context: Path) -> BuildRef: ...


@runtime_checkable
class JobRunner(Protocol):
    """Runs a build as a batch job with OCI Data Science job-run states."""

    def submit(self, spec: JobSpec) -> JobRun: ...

    def get(self, run_id: str) -> JobRun: ...

    def wait(self, run_id: str, timeout_s: float | None = None) -> JobRun: ...

    def cancel(self, run_id: str) -> JobRun: ...

    def log_tail(self, run_id: str, lines: int = 20) -> str: ...


@runtime_checkable
class ModelRegistry(Protocol):
    """Experiment tracking and the model registry (MLflow)."""

    def start_run(self, experiment: str, tags: Mapping[str, str] | None = None) -> TrackedRun: ...

    def log_metrics(self, run_id: str, metrics: Mapping[str, float]) -> None: ...

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None: ...

    def end_run(self, run_id: str, status: str = "FINISHED") -> None: ...

    def get_run(self, run_id: str) -> TrackedRun: ...

    def register(self, name: str, source: str, run_id: str | None = None) -> ModelVersion: ...

    def get_version(self, name: str, version: str) -> ModelVersion: ...

    def by_alias(self, name: str, alias: str) -> ModelVersion | None: ...

    def set_alias(self, name: str, alias: str, version: str) -> None: ...

    def delete_alias(self, name: str, alias: str) -> None: ...

    def tag_version(self, name: str, version: str, key: str, value: str) -> None: ...

    def predict(self, name: str, version: str, rows: Sequence[Mapping[str, Any]]) -> list:
        """Offline predictions of one registered version: the reference a deployed replica must match."""


@runtime_checkable
class Deployer(Protocol):
    """Runs the serving build behind one stable endpoint (a Deployment + Service; OKE in the cloud)."""

    def deploy(self, spec: DeploymentSpec) -> Revision: ...

    def status(self, name: str) -> DeploymentStatus: ...

    def rollback(self, name: str) -> Revision: ...

    def scale(self, name: str, replicas: int) -> DeploymentStatus: ...


@runtime_checkable
class SecretStore(Protocol):
    """Resolves secret references; values never appear in config, logs or journals."""

    def resolve(self, ref: SecretRef) -> Secret: ...

    def put(self, ref: SecretRef, value: str) -> None: ...


@runtime_checkable
class LogSink(Protocol):
    """Structured events (JSON lines locally, OCI Logging in the cloud)."""

    def emit(self, event: LogEvent) -> None: ...

    def events(self) -> Iterable[LogEvent]: ...


@runtime_checkable
class SourceTrigger(Protocol):
    """Which source changed since the last good run."""

    def head(self) -> str: ...

    def changes(self, since: str | None) -> ChangeSet: ...


PORTS: dict[str, type] = {
    "object_store": ObjectStore,
    "artifact_registry": ArtifactRegistry,
    "image_builder": ImageBuilder,
    "job_runner": JobRunner,
    "model_registry": ModelRegistry,
    "deployer": Deployer,
    "secret_store": SecretStore,
    "log_sink": LogSink,
    "source_trigger": SourceTrigger,
}
"""Every port by its config key, in pipeline order."""
