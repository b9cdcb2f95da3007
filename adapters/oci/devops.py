"""ImageBuilder on OCI DevOps: a build is a build run of a commit (``build_spec.yaml`` at the repository root).

``build(name, context)`` refuses a context with uncommitted changes (a build run builds a commit, not a working
tree), computes the bundle the commit's tree gives (the same :func:`~harness.infra.bundle.plan_bundle` as the
local builder, on a ``git archive`` of the commit), and returns at once when the registry already holds it. Else it
starts a build run with ``BUILD_TARGET=<name>`` (CreateBuildRun), follows it with backoff up to ``timeout_s``
(GetBuildRun; canceled when the time is up or on Ctrl-C), and reads the pushed digest from the run's exported
variables (``BUNDLE_DIGEST``). A FAILED run raises a :class:`BuildFailed` with OCI's lifecycle details and the
tail of the build log read from OCI Logging.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.domain.errors import BuildFailed, CapacityError, IntegrityError, UserError
from harness.domain.records import ArtifactRef, BuildRef
from harness.infra.bundle import has_manifest, plan_bundle
from harness.infra.git import git

from .auth import Credentials
from .sdk import endpoint_of, make_client, service_errors

SERVICE = "OCI DevOps"
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED")
POLL_START_S, POLL_MAX_S = 0.5, 5.0


class DevOpsImageBuilder:
    """The :class:`~harness.domain.ports.ImageBuilder` on a DevOps build pipeline (``client`` is a
    ``DevopsClient``); ``registry`` (OCIR) is where the runs push, checked before a run is started; ``log_tail``
    reads a run's last log lines (OCI Logging), when given."""

    def __init__(self, client: Any, build_pipeline_id: str, registry: Any, repository_prefix: str = "lastmile",
                 repository_url: str = "", branch: str = "main", timeout_s: float = 1800.0, key_id: str = "",
                 log_tail: Callable[[str, int], str] | None = None, arguments: Mapping[str, str] | None = None):
        self.client, self.build_pipeline_id, self.registry = client, build_pipeline_id, registry
        self.repository_prefix, self.repository_url, self.branch = repository_prefix.strip("/"), repository_url, branch
        self.timeout_s, self.key_id, self._tail = timeout_s, key_id, log_tail
        self.arguments = dict(arguments or {})

    def repository(self, name: str) -> str:
        return f"{self.repository_prefix}/{name}" if self.repository_prefix else name

    def build(self, name: str, context: Path) -> BuildRef:
        context = Path(context).resolve()
        root, commit, relative = _commit_of(context)
        with tempfile.TemporaryDirectory(prefix="lastmile-devops-") as scratch:
            tree = _export(root, commit, relative, Path(scratch))
            planned = plan_bundle(name, tree)
        repository = self.repository(name)
        if has_manifest(self.registry, repository, planned.digest):
            return BuildRef(name, ArtifactRef(self.registry.registry, repository, planned.digest),
                            planned.source_digest, pushed=False)
        run = self._follow(self._create(name, commit))
        exported = {v.name: v.value for v in (run.build_outputs.exported_variables.items or [])}
        digest = exported.get("BUNDLE_DIGEST", "")
        if digest != planned.digest:
            raise IntegrityError(f"build run {run.id} pushed {name} as {digest or 'nothing'}, but commit "
                                 f"{commit[:12]} gives {planned.digest}")
        return BuildRef(name, ArtifactRef(self.registry.registry, repository, digest), planned.source_digest,
                        pushed=True, run_id=run.id)

    def log_tail(self, run_id: str, lines: int = 20) -> str:
        """The build run's last log lines, from OCI Logging ("" without a log to read)."""
        return self._tail(run_id, lines) if self._tail else ""

    def _create(self, name: str, commit: str) -> Any:
        from oci.devops.models import BuildRunArgument, BuildRunArgumentCollection, CommitInfo, CreateBuildRunDetails

        arguments = {**self.arguments, "BUILD_TARGET": name, "OCIR_REPOSITORY_PREFIX": self.repository_prefix}
        details = CreateBuildRunDetails(
            display_name=f"lastmile-{name}-{commit[:12]}", build_pipeline_id=self.build_pipeline_id,
            commit_info=CommitInfo(repository_url=self.repository_url, repository_branch=self.branch,
                                   commit_hash=commit),
            build_run_arguments=BuildRunArgumentCollection(
                items=[BuildRunArgument(name=k, value=v) for k, v in arguments.items()]))
        with self._errors(f"CreateBuildRun of {name} at {commit[:12]}"):
            return self.client.create_build_run(details).data

    def _follow(self, run: Any) -> Any:
        deadline, pause = time.monotonic() + self.timeout_s, POLL_START_S
        try:
            while run.lifecycle_state not in TERMINAL:
                if time.monotonic() >= deadline:
                    self._cancel(run.id, f"lastmile waited {self.timeout_s:.0f} s")
                    raise CapacityError(f"build run {run.id} did not end within {self.timeout_s:.0f} s; canceled",
                                        url=endpoint_of(self.client))
                time.sleep(pause)
                pause = min(pause * 1.5, POLL_MAX_S)
                with self._errors(f"GetBuildRun {run.id}"):
                    run = self.client.get_build_run(run.id).data
        except KeyboardInterrupt:
            self._cancel(run.id, "interrupted (Ctrl-C)")
            raise
        if run.lifecycle_state != "SUCCEEDED":
            tail = self.log_tail(run.id)
            raise BuildFailed(f"build run {run.id} {run.lifecycle_state}: {run.lifecycle_details or 'no details'}"
                              + (f"\n{tail}" if tail else ""))
        return run

    def _cancel(self, run_id: str, reason: str) -> None:
        from oci.devops.models import CancelBuildRunDetails

        try:
            with self._errors(f"CancelBuildRun {run_id}"):
                self.client.cancel_build_run(CancelBuildRunDetails(reason=reason), run_id)
        except UserError:
            pass  # it may have ended meanwhile; the caller reports the timeout or the interrupt

    def _errors(self, what: str):
        return service_errors(SERVICE, endpoint_of(self.client), what, self.key_id)


def _commit_of(context: Path) -> tuple[Path, str, str]:
    """The repository root, HEAD's sha and the context's path in it; a :class:`UserError` naming the uncommitted
    changes under the context when it has any."""
    top = git(context, "rev-parse", "--show-toplevel", check=False)
    if top.returncode != 0:
        raise UserError(f"build context {context} is not in a git repository: a DevOps build run builds a commit")
    root = Path(top.stdout.strip()).resolve()
    relative = context.relative_to(root).as_posix()
    head = git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
    if head.returncode != 0:
        raise UserError(f"git repository {root} has no commits yet; commit {relative} first")
    status = git(root, "status", "--porcelain", "--untracked-files=all", "--", relative)
    dirty = [line[3:] for line in status.stdout.splitlines() if line.strip()]
    if dirty:
        shown = ", ".join(dirty[:5]) + (f" (+{len(dirty) - 5} more)" if len(dirty) > 5 else "")
        raise UserError(f"{relative} has uncommitted changes ({shown}); a DevOps build run builds a commit",
                        hint="commit or stash them")
    return root, head.stdout.strip(), relative


def _export(root: Path, commit: str, relative: str, dest: Path) -> Path:
    """The tree of ``relative`` at ``commit``, as the build run's checkout has it, under ``dest``."""
    import subprocess

    data = subprocess.run(["git", "-C", str(root), "archive", "--format=tar", commit, "--", relative],
                          capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest / relative


def log_tail_reader(search: Any, log_path: str, key_id: str = "") -> Callable[[str, int], str]:
    """Reads a build run's last ``lines`` log lines with Logging Search (``search`` is a ``LogSearchClient``,
    ``log_path`` ``<compartment>/<log group>/<log>``); the entries' subject is the build run's id."""

    def tail(run_id: str, lines: int = 20) -> str:
        import datetime as dt

        from oci.loggingsearch.models import SearchLogsDetails

        now = dt.datetime.now(dt.UTC)
        query = f"search \"{log_path}\" | where subject = '{run_id}' | sort by datetime asc"
        details = SearchLogsDetails(time_start=now - dt.timedelta(days=1), time_end=now + dt.timedelta(minutes=5),
                                    search_query=query, is_return_field_info=False)
        try:
            with service_errors("OCI Logging", endpoint_of(search), f"the log of build run {run_id}", key_id):
                results = search.search_logs(details, limit=1000).data.results or []
        except UserError as exc:
            return f"(the build log could not be read: {exc})"
        text = [str(((r.data or {}).get("logContent") or {}).get("data", {}).get("message", "")) for r in results]
        return "\n".join(text[-lines:])

    return tail


def open_builder(credentials: Credentials, endpoint: str | None, build_pipeline_id: str, registry: Any,
                 repository_prefix: str, log_path: str = "", search_endpoint: str | None = None,
                 **options: Any) -> DevOpsImageBuilder:
    """A :class:`DevOpsImageBuilder` with its own ``DevopsClient`` at ``endpoint`` or the region's, reading build
    logs from ``log_path`` (``<compartment>/<log group>/<log>``) with Logging Search when given."""
    from oci.devops import DevopsClient
    from oci.loggingsearch import LogSearchClient

    client = make_client(DevopsClient, credentials.config, credentials.signer, endpoint)
    tail = None
    if log_path:
        search = make_client(LogSearchClient, credentials.config, credentials.signer, search_endpoint or endpoint)
        tail = log_tail_reader(search, log_path, credentials.key_id)
    return DevOpsImageBuilder(client, build_pipeline_id, registry, repository_prefix, key_id=credentials.key_id,
                              log_tail=tail, **options)
