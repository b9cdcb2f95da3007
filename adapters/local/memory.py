"""In-memory implementations of every port in :mod:`harness.ports`.

They keep their data in dicts and lists with plain public attributes, so tests can arrange
state and assert on it directly. No threads, no network, nothing happens at import.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Mapping

from adapters.local.memory_registry import MemoryImageBuilder, MemoryModelRegistry, MemoryRegistry
from harness.errors import IntegrityError, NotFound, UserError
from harness.records import (
    ChangeSet,
    DeploymentSpec,
    DeploymentStatus,
    JobRun,
    JobSpec,
    JobState,
    LogEvent,
    ObjectRef,
    Revision,
    Secret,
    SecretRef,
    sha256_hex,
)

__all__ = [
    "MemoryDeployer",
    "MemoryImageBuilder",
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
    """Deployments as stacks of revisions, newest last. Every replica is ready at once."""

    def __init__(self, endpoint_base: str = "http://memory.invalid"):
        self.endpoint_base = endpoint_base
        self.revisions: dict[str, list[Revision]] = {}
        self.replicas: dict[str, int] = {}
        self._last_number: dict[str, int] = {}

    def deploy(self, spec: DeploymentSpec) -> Revision:
        """A spec without ``replicas`` keeps the current count (1 for a new deployment)."""
        replicas = spec.replicas if spec.replicas is not None else self.replicas.get(spec.name, 1)
        _check_replicas(spec.name, replicas)
        number = self._last_number.get(spec.name, 0) + 1
        self._last_number[spec.name] = number
        revision = Revision(number, spec.serving.digest, spec.model.version)
        self.revisions.setdefault(spec.name, []).append(revision)
        self.replicas[spec.name] = replicas
        return revision

    def status(self, name: str) -> DeploymentStatus:
        """The live revision; a name never deployed has no endpoint, no revision and no replicas."""
        history = self.revisions.get(name)
        if not history:
            return DeploymentStatus(name, endpoint=None, revision=None, desired=0, ready=0)
        replicas = self.replicas[name]
        return DeploymentStatus(name, f"{self.endpoint_base}/{name}", history[-1], replicas, replicas)

    def rollback(self, name: str) -> Revision:
        """Drop the live revision and bring back the one before it (its number is kept)."""
        history = self.revisions.get(name, [])
        if len(history) < 2:
            raise UserError(f"deployment {name} has no previous revision to roll back to")
        history.pop()
        return history[-1]

    def scale(self, name: str, replicas: int) -> DeploymentStatus:
        _check_replicas(name, replicas)
        if not self.revisions.get(name):
            raise NotFound(f"deployment {name} not found")
        self.replicas[name] = replicas
        return self.status(name)


def _check_replicas(name: str, replicas: int) -> None:
    if replicas < 1:
        raise UserError(f"deployment {name} needs at least 1 replica, got {replicas}")


class MemorySecretStore:
    """Secrets by reference. A missing secret's error names the reference, never a value."""

    def __init__(self, secrets: Mapping[SecretRef, str] | None = None):
        self.secrets: dict[SecretRef, str] = dict(secrets or {})

    def resolve(self, ref: SecretRef) -> Secret:
        try:
            return Secret(self.secrets[ref])
        except KeyError:
            raise NotFound(f"secret {ref} is not set") from None

    def put(self, ref: SecretRef, value: str) -> None:
        self.secrets[ref] = value


class MemoryLogSink:
    """Keeps every emitted event in ``emitted``, in order."""

    def __init__(self) -> None:
        self.emitted: list[LogEvent] = []

    def emit(self, event: LogEvent) -> None:
        self.emitted.append(event)

    def events(self) -> Iterable[LogEvent]:
        return list(self.emitted)


class MemorySourceTrigger:
    """A git history as ``commits``: ``(sha, changed_paths)`` pairs, oldest first."""

    def __init__(self, commits: Iterable[tuple[str, Iterable[str]]] = ()):
        self.commits: list[tuple[str, tuple[str, ...]]] = [(sha, tuple(paths)) for sha, paths in commits]

    def head(self) -> str:
        if not self.commits:
            raise NotFound("the source has no commits")
        return self.commits[-1][0]

    def changes(self, since: str | None) -> ChangeSet:
        """Every path changed by the commits after ``since`` (by all commits when ``since`` is None)."""
        shas = [sha for sha, _ in self.commits]
        if since is not None and since not in shas:
            raise NotFound(f"commit {since} not found")
        after = self.commits if since is None else self.commits[shas.index(since) + 1 :]
        paths = sorted({path for _, changed in after for path in changed})
        return ChangeSet(head=self.head(), base=since, paths=tuple(paths))
