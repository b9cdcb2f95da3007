"""The records that cross ports. Plain frozen dataclasses: no SDK type ever crosses a port."""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_REF_NAME = re.compile(r"^[A-Za-z0-9_.\-/]+$")


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
    run_id: str = ""
    """The build service's run that built it (an OCI DevOps build run); empty when built in-process."""


class JobState(enum.StrEnum):
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
class Reference:
    """Rows and the predictions the registry recorded for one model version when it was trained.

    A replica must reproduce them before it reports ready; observation checks them again through the
    stable endpoint. Rows are feature mappings (``dataframe_records`` form)."""

    rows: tuple[Mapping[str, Any], ...]
    predictions: tuple[Any, ...]


@dataclass(frozen=True)
class DeploymentSpec:
    name: str
    serving: ArtifactRef
    model: ModelVersion
    reference: Reference
    replicas: int | None = None


@dataclass(frozen=True)
class Revision:
    number: int
    serving_digest: str
    model_version: str


@dataclass(frozen=True)
class ReplicaStatus:
    """One replica (a pod on Kubernetes) as its deployer reports it."""

    name: str
    revision: int
    state: str  # starting | ready | unready | draining | dead
    restarts: int = 0
    detail: str = ""  # why it is not ready, the last exit, where its log is
    address: str | None = None  # where the deployer reaches it; clients use the endpoint
    pid: int | None = None
    container: str | None = None  # its container's name, when the replica runs in one (faults go to the engine)


@dataclass(frozen=True)
class DeploymentStatus:
    """The deployment as its deployer reports it: ``revision`` is the one being rolled out or serving."""

    name: str
    endpoint: str | None
    revision: Revision | None
    desired: int
    ready: int  # replicas of ``revision`` that take traffic
    replicas: tuple[ReplicaStatus, ...] = ()
    message: str = ""
    standby: str = ""  # a spare replica kept ready to replace a dead one: "warming", "warm" or "" (none)

    def of_revision(self, number: int) -> tuple[ReplicaStatus, ...]:
        return tuple(r for r in self.replicas if r.revision == number)


@dataclass(frozen=True)
class ReplicaMetrics:
    """One replica's Prometheus exposition, read through its deployer (None when it did not answer)."""

    replica: str
    state: str
    text: str | None


@dataclass(frozen=True)
class SecretRef:
    """A reference to a secret (``secret:NAME`` locally, ``vault:OCID`` on OCI); never the value."""

    scheme: str
    name: str

    SCHEMES = ("secret", "vault", "env")

    @classmethod
    def parse(cls, text: str) -> SecretRef:
        """``secret:NAME``, ``vault:OCID`` or ``env:VAR``; anything else is a ``ValueError`` that never
        repeats the text (it may be a value pasted by mistake)."""
        scheme, sep, name = text.partition(":")
        if not sep or scheme not in cls.SCHEMES or not _REF_NAME.match(name):
            raise ValueError("must be a secret reference (secret:NAME, vault:OCID or env:VAR), never a value")
        return cls(scheme, name)

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
    """A structured event; ``subject`` groups the events of one run (OCI Logging's subject)."""

    event: str
    level: str = "info"
    fields: Mapping[str, Any] = field(default_factory=dict)
    subject: str = ""
    time: float = 0.0


@dataclass(frozen=True)
class ChangeSet:
    """What changed in the source between the last good run and HEAD."""

    head: str
    base: str | None
    paths: tuple[str, ...]


@dataclass(frozen=True)
class FaultSpec:
    """One fault to inject. ``kind`` and ``action``:

    - ``network``: a Toxiproxy toxic (``latency``, ``bandwidth``, ``timeout``, ``reset_peer``, ``slow_close``,
      ``slicer``, ``limit_data``) with its attributes in ``params`` (plus ``stream`` and ``toxicity``);
    - ``http``: ``error``, an answer for matching requests (``params``: method, path, probability, status or preset);
    - ``process``: ``kill``, ``pause``, ``resume`` or ``restart``;
    - ``data``: ``corrupt`` or ``delete`` (an object or a registry blob), ``remove`` or ``rotate`` (a secret).

    ``target`` names what it hits: a stand-in (``object_store``, ``registry``, ``mlflow``, ``deployer``,
    ``service``), ``replica:<name>`` or ``replica:any``, ``job:current``, ``object:<bucket>/<key>``,
    ``blob:<repository>@<digest>`` or ``secret:<name>``."""

    kind: str
    target: str
    action: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FaultHandle:
    """An injected fault: how to undo it and how to prove it took effect."""

    id: str
    spec: FaultSpec
    detail: str = ""


@dataclass(frozen=True)
class FaultEvidence:
    """Whether a fault provably took effect (traffic met it, the process was running, the data existed)."""

    took_effect: bool
    detail: str
