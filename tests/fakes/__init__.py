"""In-memory implementations of every port in :mod:`harness.domain.ports`.

They keep their data in dicts and lists with plain public attributes, so tests can arrange
state and assert on it directly. No threads, no network, nothing happens at import.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Callable, Iterable, Mapping

from harness.domain.errors import IntegrityError, NotFound, UserError
from harness.domain.faults import check
from harness.domain.records import (
    ChangeSet,
    DeploymentSpec,
    DeploymentStatus,
    FaultEvidence,
    FaultHandle,
    FaultSpec,
    JobRun,
    JobSpec,
    JobState,
    LogEvent,
    ObjectRef,
    ReplicaMetrics,
    ReplicaStatus,
    Revision,
    Secret,
    SecretRef,
    sha256_hex,
)
from tests.fakes.registries import MemoryModelRegistry, MemoryRegistry

__all__ = [
    "MemoryDeployer",
    "MemoryFaultInjector",
    "MemoryJobRunner",
    "MemoryLogSink",
    "MemoryModelRegistry",
    "MemoryObjectStore",
    "MemoryRegistry",
    "MemorySecretStore",
    "MemorySourceTrigger",
]


class MemoryObjectStore:
    """An S3-like store. ``objects`` holds the bytes, ``refs`` the sha256 recorded at put time."""

    def __init__(self) -> None:
        self.buckets: set[str] = set()
        self.objects: dict[tuple[str, str], bytes] = {}
        self.refs: dict[tuple[str, str], ObjectRef] = {}

    def ensure_bucket(self, bucket: str) -> None:
        self.buckets.add(bucket)

    def put(self, bucket: str, key: str, data: bytes) -> ObjectRef:
        self._require_bucket(bucket)
        data = bytes(data)
        ref = ObjectRef(bucket, key, sha256_hex(data), len(data))
        self.objects[bucket, key] = data
        self.refs[bucket, key] = ref
        return ref

    def get(self, bucket: str, key: str) -> bytes:
        self._require_bucket(bucket)
        ref = self.refs.get((bucket, key))
        if ref is None:
            raise NotFound(f"object s3://{bucket}/{key} not found")
        data = self.objects[bucket, key]
        if sha256_hex(data) != ref.sha256:
            raise IntegrityError(f"object {ref.uri} does not match its recorded sha256 {ref.sha256}")
        return data

    def head(self, bucket: str, key: str) -> ObjectRef | None:
        return self.refs.get((bucket, key))

    def list(self, bucket: str, prefix: str = "") -> list[ObjectRef]:
        self._require_bucket(bucket)
        return [ref for (b, key), ref in sorted(self.refs.items()) if b == bucket and key.startswith(prefix)]

    def delete(self, bucket: str, key: str) -> None:
        """Delete an object; deleting a missing key is a no-op, as in S3."""
        self._require_bucket(bucket)
        self.objects.pop((bucket, key), None)
        self.refs.pop((bucket, key), None)

    def _require_bucket(self, bucket: str) -> None:
        if bucket not in self.buckets:
            raise NotFound(f"bucket {bucket} not found")


JobBehaviour = Callable[[JobSpec], "tuple[int, str] | None"]


def succeed(spec: JobSpec) -> tuple[int, str]:
    """The default job behaviour: exit 0 with an empty log."""
    return 0, ""


class MemoryJobRunner:
    """Runs each job at submit by calling ``behaviour(spec) -> (exit_code, log_text)``.

    A behaviour that returns ``None`` leaves the run IN_PROGRESS, like a job that hangs,
    so that timeouts and cancel can be exercised. ``states`` records every state per run.
    """

    def __init__(self, behaviour: JobBehaviour = succeed):
        self.behaviour = behaviour
        self.specs: dict[str, JobSpec] = {}
        self.runs: dict[str, JobRun] = {}
        self.states: dict[str, list[JobState]] = {}
        self.logs: dict[str, str] = {}

    def submit(self, spec: JobSpec) -> JobRun:
        """Accept and run the job; the returned run is the ACCEPTED snapshot, as from a real service."""
        run_id = f"jobrun-{len(self.runs) + 1}"
        self.specs[run_id] = spec
        self.logs[run_id] = ""
        self.states[run_id] = []
        accepted = self._move(JobRun(run_id, spec.name, JobState.ACCEPTED))
        running = self._move(dataclasses.replace(accepted, state=JobState.IN_PROGRESS))
        outcome = self.behaviour(spec)
        if outcome is not None:
            exit_code, self.logs[run_id] = outcome
            state = JobState.SUCCEEDED if exit_code == 0 else JobState.FAILED
            message = "" if exit_code == 0 else f"exited with code {exit_code}"
            self._move(dataclasses.replace(running, state=state, exit_code=exit_code, message=message))
        return accepted

    def get(self, run_id: str) -> JobRun:
        try:
            return self.runs[run_id]
        except KeyError:
            raise NotFound(f"job run {run_id} not found") from None

    def wait(self, run_id: str, timeout_s: float | None = None) -> JobRun:
        """Return the run at once: it finished at submit, or it hangs and is returned IN_PROGRESS."""
        return self.get(run_id)

    def cancel(self, run_id: str) -> JobRun:
        """Cancel a running job (CANCELING, then CANCELED); a finished run is returned unchanged."""
        run = self.get(run_id)
        if run.state.terminal:
            return run
        canceling = self._move(dataclasses.replace(run, state=JobState.CANCELING))
        return self._move(dataclasses.replace(canceling, state=JobState.CANCELED, message="canceled"))

    def log_tail(self, run_id: str, lines: int = 20) -> str:
        self.get(run_id)
        if lines <= 0:
            return ""
        return "\n".join(self.logs[run_id].splitlines()[-lines:])

    def _move(self, run: JobRun) -> JobRun:
        self.runs[run.run_id] = run
        self.states[run.run_id].append(run.state)
        return run


class MemoryDeployer:
    """Deployments as a Kubernetes Deployment reports them, except that every rollout settles at once.

    A revision whose ``(serving digest, model version)`` is in ``broken`` crash-loops, as a replica does whose
    model cannot load: its replicas restart and never get ready, while the previous revision's keep serving.
    ``metrics`` holds the exposition text a test gives a replica (empty by default)."""

    def __init__(self, replicas: int = 1, endpoint_base: str = "http://memory.invalid"):
        self.endpoint_base = endpoint_base
        self.default_replicas = replicas
        self.history: dict[str, list[Revision]] = {}
        self.desired: dict[str, int] = {}
        self.serving: dict[str, Revision] = {}  # the last revision that became ready
        self.broken: set[tuple[str, str]] = set()
        self.metrics: dict[str, str] = {}
        self._last_number: dict[str, int] = {}

    def deploy(self, spec: DeploymentSpec) -> Revision:
        desired = spec.replicas if spec.replicas is not None else self.desired.get(spec.name, self.default_replicas)
        _check_replicas(spec.name, desired)
        number = self._last_number.get(spec.name, 0) + 1
        self._last_number[spec.name] = number
        revision = Revision(number, spec.serving.digest, spec.model.version)
        self.history.setdefault(spec.name, []).append(revision)
        self.desired[spec.name] = desired
        self._settle(spec.name)
        return revision

    def status(self, name: str) -> DeploymentStatus:
        history = self.history.get(name)
        desired = self.desired.get(name, self.default_replicas)
        if not history:
            return DeploymentStatus(name, endpoint=None, revision=None, desired=desired, ready=0)
        current, serving = history[-1], self.serving.get(name)
        replicas = [ReplicaStatus(f"{name}-r{current.number}-{i}", current.number,
                                  "dead" if self._broken(current) else "ready",
                                  2 if self._broken(current) else 0,
                                  "last exit code 3" if self._broken(current) else "")
                    for i in range(1, desired + 1)]
        if serving is not None and serving != current:
            replicas += [ReplicaStatus(f"{name}-r{serving.number}-{i}", serving.number, "ready")
                         for i in range(1, desired + 1)]
        ready = 0 if self._broken(current) else desired
        return DeploymentStatus(name, f"{self.endpoint_base}/{name}", current, desired, ready, tuple(replicas))

    def rollback(self, name: str) -> Revision:
        """Drop the current revision and bring back the one before it (its number is kept)."""
        history = self.history.get(name, [])
        if len(history) < 2:
            raise NotFound(f"deployment {name} has no previous revision to roll back to")
        history.pop()
        self._settle(name)
        return history[-1]

    def scale(self, name: str, replicas: int) -> DeploymentStatus:
        _check_replicas(name, replicas)
        self.desired[name] = replicas
        return self.status(name)

    def replica_metrics(self, name: str) -> tuple[ReplicaMetrics, ...]:
        return tuple(ReplicaMetrics(r.name, r.state, self.metrics.get(r.name, ""))
                     for r in self.status(name).replicas if r.state != "dead")

    def _broken(self, revision: Revision) -> bool:
        return (revision.serving_digest, revision.model_version) in self.broken

    def _settle(self, name: str) -> None:
        current = self.history[name][-1]
        if not self._broken(current):
            self.serving[name] = current


def _check_replicas(name: str, replicas: int) -> None:
    if replicas < 1:
        raise UserError(f"deployment {name}: replicas must be at least 1, not {replicas}")


class MemorySecretStore:
    """Secrets by reference, plus ``env:VAR`` from the environment. A missing secret's error names the
    reference, never a value."""

    def __init__(self, secrets: Mapping[SecretRef, str] | None = None):
        self.secrets: dict[SecretRef, str] = dict(secrets or {})

    def resolve(self, ref: SecretRef) -> Secret:
        if ref.scheme == "env":
            if ref.name not in os.environ:
                raise NotFound(f"secret {ref}: environment variable {ref.name} is not set")
            return Secret(os.environ[ref.name])
        try:
            return Secret(self.secrets[ref])
        except KeyError:
            raise NotFound(f"secret {ref} is not set") from None

    def put(self, ref: SecretRef, value: str) -> None:
        self.secrets[ref] = value

    def ensure(self, ref: SecretRef, length: int = 24) -> Secret:
        if ref.scheme == "env":
            raise UserError(f"secret {ref}: an environment variable cannot be generated")
        self.secrets.setdefault(ref, secrets.token_urlsafe(length))
        return self.resolve(ref)


class MemoryLogSink:
    """Keeps every emitted event in ``emitted``, in order."""

    def __init__(self) -> None:
        self.emitted: list[LogEvent] = []

    def emit(self, event: LogEvent) -> None:
        self.emitted.append(event)

    def events(self, subject: str | None = None) -> Iterable[LogEvent]:
        return [e for e in self.emitted if subject is None or e.subject == subject]


class MemorySourceTrigger:
    """A git history as ``commits``: ``(sha, changed_paths)`` pairs, oldest first."""

    def __init__(self, commits: Iterable[tuple[str, Iterable[str]]] = ()):
        self.commits: list[tuple[str, tuple[str, ...]]] = [(sha, tuple(paths)) for sha, paths in commits]

    def head(self) -> str:
        if not self.commits:
            raise UserError("the source has no commits yet", hint="commit your code first")
        return self.commits[-1][0]

    def changes(self, since: str | None) -> ChangeSet:
        """Every path changed by the commits after ``since``; a first run (every path, no base) when ``since``
        is None or not in the history, as git treats a base that history no longer holds."""
        shas = [sha for sha, _ in self.commits]
        base = since if since in shas else None
        after = self.commits if base is None else self.commits[shas.index(base) + 1 :]
        paths = sorted({path for _, changed in after for path in changed})
        return ChangeSet(head=self.head(), base=base, paths=tuple(paths))


class MemoryFaultInjector:
    """Faults kept in ``faults`` by id; a test says what each one met by setting ``met[fault_id]``."""

    def __init__(self) -> None:
        self.faults: dict[str, FaultHandle] = {}
        self.reverted: dict[str, FaultHandle] = {}
        self.met: dict[str, str] = {}

    def inject(self, spec: FaultSpec) -> FaultHandle:
        check(spec)
        handle = FaultHandle(f"fault-{len(self.faults) + len(self.reverted) + 1}", spec)
        self.faults[handle.id] = handle
        return handle

    def evidence(self, fault_id: str) -> FaultEvidence:
        if fault_id not in self.faults and fault_id not in self.reverted:
            raise NotFound(f"no fault {fault_id}")
        met = self.met.get(fault_id, "")
        return FaultEvidence(bool(met), met or "nothing met it")

    def revert(self, fault_id: str) -> FaultEvidence:
        evidence = self.evidence(fault_id)
        if fault_id in self.faults:
            self.reverted[fault_id] = self.faults.pop(fault_id)
        return evidence

    def active(self) -> list[FaultHandle]:
        return list(self.faults.values())
