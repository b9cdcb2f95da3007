"""JobRunner over OCI Data Science: a bring-your-own-container job per training build, a job run per submit.

The job's container is the build's image in OCIR, pinned by digest; one job is created per image reference
(registry, repository and digest) and reused by every later run of that build (found again by its
``lastmile-artifact`` freeform tag, so a second process or machine reuses it too). The digest alone is not enough:
the same build pushed to a registry at another address (a stand-in restarted on another port) needs a job that
pulls from there. A run carries the spec's arguments (``commandLineArguments``), the runner's and the spec's
environment variables and the time limit (``maximumRuntimeInMinutes``, rounded up), and logs to the configured
custom log, which :meth:`DataScienceJobRunner.log_tail` reads back through Logging Search as one would on OCI.
States map one to one (OCI's ``NEEDS_ATTENTION`` reads as still IN_PROGRESS; a DELETED run is not found);
``JobRun.message`` is OCI's ``lifecycleDetails``, and the exit code is the one those details name.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import shlex
import time
from collections.abc import Mapping
from typing import Any

from harness.domain.errors import NotFound
from harness.domain.records import ArtifactRef, JobRun, JobSpec, JobState

from .auth import Credentials
from .sdk import PreconditionFailed, endpoint_of, make_client, service_errors

ARTIFACT_TAG = "lastmile-artifact"
_EXIT_CODE = re.compile(r"exit code (\d+)")


class DataScienceJobRunner:
    """Runs :class:`JobSpec` builds as Data Science job runs in ``project_id`` of ``compartment_id``.

    ``env`` reaches every run (the profile's endpoints and credentials, like the local runner's); ``shape`` with
    ``ocpus``/``memory_gb`` for a Flex shape; ``subnet_id`` chooses STANDALONE infrastructure in that subnet,
    none the managed-egress ME_STANDALONE. :meth:`wait` polls GetJobRun with a backoff from ``poll_s`` up to
    ``max_poll_s``; every call retries 429 and 5xx a bounded number of times (:mod:`.sdk`) and then raises
    ``CapacityError``."""

    service = "OCI Data Science"

    def __init__(self, client: Any, search: Any, *, compartment_id: str, project_id: str, log_group_id: str,
                 log_id: str, shape: str = "VM.Standard.E4.Flex", ocpus: float = 1.0, memory_gb: float = 16.0,
                 subnet_id: str | None = None, env: Mapping[str, str] | None = None, poll_s: float = 0.2,
                 max_poll_s: float = 10.0, cancel_timeout_s: float = 120.0, signer_id: str = "?"):
        self._client, self._search = client, search
        self.compartment_id, self.project_id = compartment_id, project_id
        self.log_group_id, self.log_id = log_group_id, log_id
        self.shape, self.ocpus, self.memory_gb, self.subnet_id = shape, ocpus, memory_gb, subnet_id
        self.env = dict(env or {})
        self.poll_s, self.max_poll_s, self.cancel_timeout_s = poll_s, max_poll_s, cancel_timeout_s
        self.signer_id = signer_id
        self.endpoint, self.search_endpoint = endpoint_of(client), endpoint_of(search)
        self._jobs: dict[str, str] = {}

    # the port ------------------------------------------------------------------------------------
    def submit(self, spec: JobSpec) -> JobRun:
        """CreateJobRun of the build's job (created on first use); returns the run as OCI accepted it."""
        from oci.data_science.models import CreateJobRunDetails, DefaultJobConfigurationDetails

        job_id = self._job(spec.name, spec.artifact)
        configuration = DefaultJobConfigurationDetails(
            environment_variables={**self.env, **spec.env}, command_line_arguments=shlex.join(spec.args),
            maximum_runtime_in_minutes=max(1, math.ceil(spec.timeout_s / 60)))
        details = CreateJobRunDetails(project_id=self.project_id, compartment_id=self.compartment_id, job_id=job_id,
                                      display_name=f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}",
                                      job_configuration_override_details=configuration,
                                      job_log_configuration_override_details=self._log_configuration(),
                                      freeform_tags={"lastmile": spec.name})
        with self._errors(f"CreateJobRun of job {job_id}"):
            return _job_run(self._client.create_job_run(details).data)

    def get(self, run_id: str) -> JobRun:
        return _job_run(self._get(run_id))

    def wait(self, run_id: str, timeout_s: float | None = None) -> JobRun:
        """GetJobRun until the run ends or ``timeout_s`` passes; the pause grows from ``poll_s`` to ``max_poll_s``."""
        until = None if timeout_s is None else time.monotonic() + timeout_s
        pause = self.poll_s
        while True:
            run = self.get(run_id)
            left = None if until is None else until - time.monotonic()
            if run.state.terminal or (left is not None and left <= 0):
                return run
            time.sleep(pause if left is None else min(pause, left))
            pause = min(pause * 1.5, self.max_poll_s)

    def cancel(self, run_id: str) -> JobRun:
        """CancelJobRun, then wait (up to ``cancel_timeout_s``) for CANCELED; an ended run is returned unchanged."""
        run = self.get(run_id)
        if run.state.terminal:
            return run
        try:
            with self._errors(f"CancelJobRun of {run_id}"):
                self._client.cancel_job_run(run_id)
        except PreconditionFailed:  # it ended between the two calls
            return self.get(run_id)
        return self.wait(run_id, self.cancel_timeout_s)

    def log_tail(self, run_id: str, lines: int = 20) -> str:
        """The last ``lines`` lines the run's job wrote, from the run's log through Logging Search."""
        from oci.loggingsearch.models import SearchLogsDetails

        run = self._get(run_id)
        log = run.log_details
        if lines <= 0 or log is None:
            return ""
        start = (run.time_accepted or dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=5)
        query = (f'search "{run.compartment_id}/{log.log_group_id}/{log.log_id}" | where source = '
                 f"'{run_id}' | sort by datetime desc")
        details = SearchLogsDetails(time_start=start, time_end=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
                                    search_query=query, is_return_field_info=False)
        with service_errors("OCI Logging", self.search_endpoint, f"the search of job run {run_id}'s log",
                            self.signer_id):
            results = self._search.search_logs(details, limit=min(lines, 1000)).data.results or []
        newest_first = [result.data for result in results]
        newest_first.sort(key=_entry_time, reverse=True)  # within OCI's millisecond, by the entry's own time
        return "\n".join(_message(data) for data in reversed(newest_first))

    # internals -----------------------------------------------------------------------------------
    def _get(self, run_id: str) -> Any:
        with self._errors(f"job run {run_id}"):
            run = self._client.get_job_run(run_id).data
        if run.lifecycle_state == "DELETED":
            raise NotFound(f"job run {run_id} was deleted")
        return run

    def _job(self, name: str, artifact: ArtifactRef) -> str:
        """The ACTIVE job for ``artifact`` (its full reference): remembered, found by its tag, or created."""
        image = str(artifact)
        if image in self._jobs:
            return self._jobs[image]
        from oci.pagination import list_call_get_all_results

        with self._errors(f"ListJobs of project {self.project_id}"):
            jobs = list_call_get_all_results(self._client.list_jobs, self.compartment_id, project_id=self.project_id,
                                             lifecycle_state="ACTIVE").data
        found = next((j.id for j in jobs if (j.freeform_tags or {}).get(ARTIFACT_TAG) == image), None)
        self._jobs[image] = found or self._create_job(name, artifact)
        return self._jobs[image]

    def _create_job(self, name: str, artifact: ArtifactRef) -> str:
        from oci.data_science import models

        shape = models.JobShapeConfigDetails(ocpus=self.ocpus, memory_in_gbs=self.memory_gb) \
            if self.shape.endswith(".Flex") else None
        if self.subnet_id:
            infrastructure: Any = models.StandaloneJobInfrastructureConfigurationDetails(
                shape_name=self.shape, subnet_id=self.subnet_id, block_storage_size_in_gbs=50,
                job_shape_config_details=shape)
        else:
            infrastructure = models.ManagedEgressStandaloneJobInfrastructureConfigurationDetails(
                shape_name=self.shape, block_storage_size_in_gbs=50, job_shape_config_details=shape)
        details = models.CreateJobDetails(
            project_id=self.project_id, compartment_id=self.compartment_id,
            display_name=f"lastmile-{name}-{artifact.digest.removeprefix('sha256:')[:12]}",
            description=f"lastmile {name} build {artifact}",
            job_configuration_details=models.DefaultJobConfigurationDetails(),
            job_infrastructure_configuration_details=infrastructure,
            job_environment_configuration_details=models.OcirContainerJobEnvironmentConfigurationDetails(
                image=str(artifact)),
            job_log_configuration_details=self._log_configuration(),
            freeform_tags={"lastmile": name, ARTIFACT_TAG: str(artifact)})
        with self._errors(f"CreateJob for {artifact}"):
            return self._client.create_job(details).data.id

    def _log_configuration(self) -> Any:
        from oci.data_science.models import JobLogConfigurationDetails

        return JobLogConfigurationDetails(enable_logging=True, enable_auto_log_creation=False,
                                          log_group_id=self.log_group_id, log_id=self.log_id)

    def _errors(self, what: str):
        return service_errors(self.service, self.endpoint, what, self.signer_id)


def _job_run(run: Any) -> JobRun:
    state = JobState.IN_PROGRESS if run.lifecycle_state == "NEEDS_ATTENTION" else JobState(run.lifecycle_state)
    details = run.lifecycle_details or ""
    code = 0 if state is JobState.SUCCEEDED else None
    found = _EXIT_CODE.search(details)
    if found and state is JobState.FAILED:
        code = int(found.group(1))
    log = run.log_details
    where = f"oci-logging:{run.compartment_id}/{log.log_group_id}/{log.log_id}?source={run.id}" if log else None
    return JobRun(run_id=run.id, name=run.display_name or "", state=state, exit_code=code, log_path=where,
                  message=details)


def _entry_time(result: Any) -> tuple[int, str]:
    content = (result or {}).get("logContent") or {}
    return int((result or {}).get("datetime") or 0), str(content.get("time") or "")


def _message(result: Any) -> str:
    content = (result or {}).get("logContent") or {}
    data = content.get("data")
    return str(data.get("message", "")) if isinstance(data, dict) else str(data or "")


def open_runner(credentials: Credentials, endpoint: str | None, search_endpoint: str | None,
                **options: Any) -> DataScienceJobRunner:
    """A :class:`DataScienceJobRunner` with its own Data Science and Logging Search clients."""
    from oci.data_science import DataScienceClient
    from oci.loggingsearch import LogSearchClient

    client = make_client(DataScienceClient, credentials.config, credentials.signer, endpoint)
    search = make_client(LogSearchClient, credentials.config, credentials.signer, search_endpoint or endpoint)
    return DataScienceJobRunner(client, search, signer_id=credentials.key_id, **options)
