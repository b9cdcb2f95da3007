"""The records that cross ports. Plain frozen dataclasses: no SDK type ever crosses a port."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from typing import Any, Mapping


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def oci_digest(data: bytes) -> str:
    """The content digest used by OCI registries: ``sha256:<hex>``."""
    return "sha256:" + sha256_hex(data)


@dataclass(frozen=True)
class ObjectRef:
    """An object in an S3-compatible store (or OCI Object Storage)."""

    bucket: str
    key: str
    sha256: str
    size: int

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: what a manifest says about a blob."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_oci(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


@dataclass(frozen=True)
class ArtifactRef:
    """An artifact in a registry, always pinned by digest."""

    registry: str
    repository: str
    digest: str

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}@{self.digest}"


@dataclass(frozen=True)
class BuildRef:
    """The output of a build: what was built, from which inputs, and where it lives."""

    name: str
    artifact: ArtifactRef
    source_digest: str
    pushed: bool


class JobState(str, enum.Enum):
    """The lifecycle states of an OCI Data Science job run."""

    ACCEPTED = "ACCEPTED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELING = "CANCELING"
    CANCELED = "CANCELED"

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED)


@dataclass(frozen=True)
class JobSpec:
    """What a job runs: a build by digest, its arguments and environment, and a time limit."""

    name: str
    artifact: ArtifactRef
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 600.0


@dataclass(frozen=True)
class JobRun:
    run_id: str
    name: str
    state: JobState
    exit_code: int | None = None
    log_path: str | None = None
    message: str = ""


@dataclass(frozen=True)
class TrackedRun:
    """A run in the tracking server (MLflow), as the harness sees it."""

    run_id: str
    experiment_id: str
    status: str
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    run_id: str | None
    source: str
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class SmokeCheck:
    """A request each new replica must answer with ``expected`` predictions before it takes traffic."""

    path: str
    body: Mapping[str, Any]
    expected: tuple[Any, ...]


@dataclass(frozen=True)
class DeploymentSpec:
    name: str
    serving: ArtifactRef
    model: ModelVersion
    replicas: int | None = None
    smoke: SmokeCheck | None = None


@dataclass(frozen=True)
class Revision:
    number: int
    serving_digest: str
    model_version: str


@dataclass(frozen=True)
class ReplicaStatus:
    name: str
    revision: int
    url: str
    state: str  # starting | ready | unready | draining | dead
    pid: int | None
    restarts: int


@dataclass(frozen=True)
class DeploymentStatus:
    name: str
    endpoint: str | None
    revision: Revision | None
    desired: int
    ready: int
    replicas: tuple[ReplicaStatus, ...] = ()
    message: str = ""
    standby: str = ""  # a spare replica kept ready to replace a dead one: "warming", "warm" or "" (none)


@dataclass(frozen=True)
class SecretRef:
    """A reference to a secret (``secret:NAME`` locally, ``vault:OCID`` on OCI); never the value."""

    scheme: str
    name: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.name}"


class Secret:
    """A resolved secret value that refuses to show itself in reprs, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('******')"

    __str__ = __repr__


@dataclass(frozen=True)
class LogEvent:
    event: str
    level: str = "info"
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChangeSet:
    """What changed in the source between the last good run and HEAD."""

    head: str
    base: str | None
    paths: tuple[str, ...]
