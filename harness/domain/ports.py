"""The ports: small roles the pipeline needs, as ``typing.Protocol`` classes.

Signatures use only :mod:`harness.domain.records` and builtins; no SDK type crosses a port. Each port holds
what the harness (or another adapter, for :class:`ArtifactRegistry`) calls and nothing more. Every port has
an in-memory fake in ``tests/fakes`` and one contract in ``tests/contracts`` that the fake and every real
adapter pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

from harness.domain.records import (
    ArtifactRef,
    BuildRef,
    ChangeSet,
    DeploymentSpec,
    DeploymentStatus,
    FaultEvidence,
    FaultHandle,
    FaultSpec,
    JobRun,
    JobSpec,
    LogEvent,
    ModelVersion,
    ObjectRef,
    ReplicaMetrics,
    Revision,
    Secret,
    SecretRef,
)


@runtime_checkable
class ObjectStore(Protocol):
    """S3-compatible object storage (OCI Object Storage in the cloud)."""

    def ensure_bucket(self, bucket: str) -> None: ...

    def put(self, bucket: str, key: str, data: bytes) -> ObjectRef:
        """Store ``data``; the returned ref carries its sha256, which the store keeps as metadata."""
        ...

    def get(self, bucket: str, key: str) -> bytes:
        """Read an object back; raises ``IntegrityError`` when it no longer matches its sha256."""
        ...

    def head(self, bucket: str, key: str) -> ObjectRef | None: ...

    def list(self, bucket: str, prefix: str = "") -> list[ObjectRef]: ...

    def delete(self, bucket: str, key: str) -> None: ...


@runtime_checkable
class ArtifactRegistry(Protocol):
    """An OCI distribution registry (OCIR in the cloud). Content is addressed by digest.

    The builders, job runners and deployers that move bundles use it; the pipeline itself does not."""

    @property
    def registry(self) -> str:
        """The registry's host[:port], as it appears in an :class:`ArtifactRef`."""
        ...

    def has_blob(self, repository: str, digest: str) -> bool: ...

    def push_blob(self, repository: str, data: bytes) -> str:
        """Upload ``data`` (skipped when the digest is already there) and return its digest."""
        ...

    def fetch_blob(self, repository: str, digest: str) -> bytes: ...

    def push_manifest(self, repository: str, manifest: Mapping, tag: str | None = None) -> ArtifactRef: ...

    def fetch_manifest(self, repository: str, reference: str) -> dict: ...


@runtime_checkable
class ImageBuilder(Protocol):
    """Turns a source directory into a build output pushed by digest."""

    def build(self, name: str, context: Path) -> BuildRef: ...

    def log_tail(self, run_id: str, lines: int = 20) -> str:
        """The last ``lines`` log lines of a build run (``BuildRef.run_id``); "" for a builder without runs."""
        ...


@runtime_checkable
class JobRunner(Protocol):
    """Runs a build as a batch job with OCI Data Science job-run states."""

    def submit(self, spec: JobSpec) -> JobRun:
        """Accept the run and return its ACCEPTED snapshot; the job runs on in the background."""
        ...

    def get(self, run_id: str) -> JobRun: ...

    def wait(self, run_id: str, timeout_s: float | None = None) -> JobRun:
        """The run once it ended, or as it is when ``timeout_s`` passes."""
        ...

    def cancel(self, run_id: str) -> JobRun: ...

    def log_tail(self, run_id: str, lines: int = 20) -> str: ...


@runtime_checkable
class ModelRegistry(Protocol):
    """The model registry (MLflow's): versions, their tags and the aliases the gate moves.

    Training registers versions itself, through MLflow's own client; the harness reads and moves aliases."""

    def get_version(self, name: str, version: str) -> ModelVersion: ...

    def by_alias(self, name: str, alias: str) -> ModelVersion | None: ...

    def set_alias(self, name: str, alias: str, version: str) -> None: ...

    def delete_alias(self, name: str, alias: str) -> None: ...

    def tag_version(self, name: str, version: str, key: str, value: str) -> None: ...

    def verify(self, name: str, version: str) -> list[str]:
        """The problems with the version's stored files, one line each: a file missing, not recorded, or whose
        sha256 differs from the ``lastmile.files`` tag training wrote when it registered the version. Empty when
        they all match; one problem saying so for a version without the tag. ``NotFound`` for no such version."""
        ...


@runtime_checkable
class Deployer(Protocol):
    """Runs the serving build behind one stable endpoint: a Deployment and its Service (OKE in the cloud).

    Like ``kubectl apply``, :meth:`deploy` and :meth:`rollback` start a rollout and return; :meth:`status`
    reports its progress. The deadline, the checks and the automatic rollback are the harness's
    (:mod:`harness.pipeline.rollout`), so every deployer gets the same policy."""

    def deploy(self, spec: DeploymentSpec) -> Revision: ...

    def status(self, name: str) -> DeploymentStatus: ...

    def rollback(self, name: str) -> Revision:
        """Start rolling back to the revision before the current one; ``NotFound`` when there is none."""
        ...

    def scale(self, name: str, replicas: int) -> DeploymentStatus: ...

    def replica_metrics(self, name: str) -> tuple[ReplicaMetrics, ...]:
        """Each replica's ``/metrics``, read the way the platform allows (the API server's pod proxy on OKE)."""
        ...


@runtime_checkable
class SecretStore(Protocol):
    """Resolves secret references; values never appear in config, logs or journals."""

    def resolve(self, ref: SecretRef) -> Secret: ...

    def put(self, ref: SecretRef, value: str) -> None: ...

    def ensure(self, ref: SecretRef, length: int = 24) -> Secret:
        """Resolve ``ref``, creating a random value on first use (the stand-ins' generated credentials)."""
        ...


@runtime_checkable
class LogSink(Protocol):
    """Structured events (JSON lines locally, OCI Logging in the cloud); the pipeline's run events go here."""

    def emit(self, event: LogEvent) -> None: ...

    def events(self, subject: str | None = None) -> Iterable[LogEvent]:
        """What was emitted, oldest first; only ``subject``'s when given."""
        ...


@runtime_checkable
class FaultInjector(Protocol):
    """Reversible faults on the profile's real traffic, processes and data (the drills' engine).

    Active faults are kept where every process of the profile sees them, so a fault injected by one process
    (a Chaos Toolkit run) can be reverted by another (its rollbacks, or ``lastmile drill revert``)."""

    def inject(self, spec: FaultSpec) -> FaultHandle: ...

    def evidence(self, fault_id: str) -> FaultEvidence:
        """Whether the fault met anything so far (requests, a live process, existing data)."""
        ...

    def revert(self, fault_id: str) -> FaultEvidence:
        """Undo the fault (a no-op for one already undone); the evidence as it stood."""
        ...

    def active(self) -> list[FaultHandle]: ...


@runtime_checkable
class SourceTrigger(Protocol):
    """Which source changed since the last good run."""

    def head(self) -> str: ...

    def changes(self, since: str | None) -> ChangeSet:
        """Paths changed since ``since``; a first run (``base`` None, every path) when ``since`` is None or
        no longer in history."""
        ...


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
    "fault_injector": FaultInjector,
}
"""Every port by its config key, in pipeline order."""
