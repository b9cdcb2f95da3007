"""The Data Science API's job operations under ``/20190101`` (``DataScienceClient``), signed like every route.

=================  ==============================================  ===============================================
operation          route                                           answers
=================  ==============================================  ===============================================
CreateJob          ``POST /20190101/jobs``                         200 Job (ACTIVE), etag
GetJob             ``GET /20190101/jobs/{jobId}``                  200 Job, etag; 404
ListJobs           ``GET /20190101/jobs?compartmentId=``           200 [JobSummary], opc-next-page
DeleteJob          ``DELETE /20190101/jobs/{jobId}``               202 (DELETED); 409 with active runs unless
                                                                   ``deleteRelatedJobRuns=true``; 412 if-match
CreateJobRun       ``POST /20190101/jobRuns``                      200 JobRun (ACCEPTED), etag; 404 job; 409 job
                                                                   not ACTIVE
GetJobRun          ``GET /20190101/jobRuns/{jobRunId}``            200 JobRun, etag; 404
ListJobRuns        ``GET /20190101/jobRuns?compartmentId=``        200 [JobRunSummary], opc-next-page
CancelJobRun       ``POST .../jobRuns/{jobRunId}/actions/          202 (CANCELING, then CANCELED); 409 for a run
                   cancelJobRun``                                  that ended; 412 if-match
DeleteJobRun       ``DELETE /20190101/jobRuns/{jobRunId}``         204 (DELETED); 409 for a run still active
=================  ==============================================  ===============================================

Refusals are OCI's: 400 ``InvalidParameter`` / ``MissingParameter``, 404 ``NotAuthorizedOrNotFound``, 409
``IncorrectState``, 412 ``PreconditionFailed``, and 429 ``TooManyRequests`` for an operation a drill throttles
(see :mod:`.datascience`, which also says why environment variable values are never echoed). Each SDK and CLI test
of these operations is listed in ``tests/component/test_oci_standin_datascience.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from . import datascience as ds
from . import errors
from .datascience_runs import DETAILS, Executor, RunSettings
from .files import WatchedJson
from .http import Route, json_object, json_response, oci_route
from .objectstore import now_iso

PREFIX = "/20190101"


def incorrect_state(message: str) -> errors.OciError:
    return errors.OciError(409, "IncorrectState", message)


def too_many_requests() -> errors.OciError:
    return errors.OciError(429, "TooManyRequests", "Too many requests for the tenant.", {"retry-after": "1"})


class DataScience:
    """The jobs and job runs of one stand-in. Records are kept in memory and saved (values of environment
    variables redacted) under ``<state>/datascience/``; the values themselves stay in :attr:`_env` only."""

    def __init__(self, settings: RunSettings, region: str):
        self.settings, self.region = settings, region
        self.jobs, self.runs = ds.load(settings.state, "jobs"), ds.load(settings.state, "runs")
        self._env: dict[str, dict[str, str]] = {}
        self._cancels: set[str] = set()
        self._lock = threading.RLock()
        self.drills = WatchedJson(ds.drills_file(settings.state), {})
        self.executor = Executor(settings, self.update, lambda run_id: run_id in self._cancels)
        for run in self.runs.values():  # runs a previous process of the stand-in left active are followed on
            if run["lifecycleState"] not in ds.RUN_TERMINAL:
                if run["lifecycleState"] == "CANCELING":
                    self._cancels.add(run["id"])
                self.executor.start(run, self.jobs[run["jobId"]], {}, resume=True)

    def update(self, run_id: str, **fields) -> dict:
        with self._lock:
            run = self.runs[run_id]
            run.update(fields, etag=ds.etag())
            ds.save(self.settings.state, "runs", run)
            return run

    def throttle(self, operation: str) -> None:
        if operation in (self.drills.get().get("throttle") or ()):
            raise too_many_requests()

    # --- jobs -------------------------------------------------------------------------------------------------------

    def create_job(self, details: dict, user: str) -> dict:
        ds.check_job(details)
        job_id = ds.ocid("datasciencejob", self.region)
        configuration = details.get("jobConfigurationDetails")
        self._env[job_id] = dict((configuration or {}).get("environmentVariables") or {})
        job = {"id": job_id, "timeCreated": now_iso(), "createdBy": user, "projectId": details["projectId"],
               "compartmentId": details["compartmentId"], "displayName": details.get("displayName") or
               f"job{job_id[-6:]}", "description": details.get("description"),
               "jobConfigurationDetails": ds.redacted(configuration),
               "jobInfrastructureConfigurationDetails": details["jobInfrastructureConfigurationDetails"],
               "jobEnvironmentConfigurationDetails": details["jobEnvironmentConfigurationDetails"],
               "jobLogConfigurationDetails": details.get("jobLogConfigurationDetails"),
               "jobStorageMountConfigurationDetailsList": [], "lifecycleState": "ACTIVE", "lifecycleDetails": None,
               "freeformTags": details.get("freeformTags") or {}, "definedTags": details.get("definedTags") or {},
               "etag": ds.etag()}
        with self._lock:
            self.jobs[job_id] = job
            ds.save(self.settings.state, "jobs", job)
        return job

    def job(self, job_id: str) -> dict:
        try:
            return self.jobs[job_id]
        except KeyError:
            raise errors.not_found() from None

    def delete_job(self, job_id: str, if_match: str | None, related: bool) -> None:
        with self._lock:
            job = _matching(self.job(job_id), if_match)
            runs = [r for r in self.runs.values() if r["jobId"] == job_id and r["lifecycleState"] != "DELETED"]
            active = [r for r in runs if r["lifecycleState"] not in ds.RUN_TERMINAL]
            if runs and not related:
                raise incorrect_state(f"Job {job_id} has job runs; delete them first or set deleteRelatedJobRuns.")
            for run in active:
                self._cancels.add(run["id"])
            for run in runs:
                if run not in active:
                    self.update(run["id"], lifecycleState="DELETED")
            job.update(lifecycleState="DELETED", etag=ds.etag())
            ds.save(self.settings.state, "jobs", job)
            self._env.pop(job_id, None)

    # --- job runs ---------------------------------------------------------------------------------------------------

    def create_run(self, details: dict, user: str) -> dict:
        ds.check_run(details)
        job = self.job(details["jobId"])
        if job["lifecycleState"] != "ACTIVE":
            raise incorrect_state(f"Job {job['id']} is {job['lifecycleState']}; only an ACTIVE job can be run.")
        run_id = ds.ocid("datasciencejobrun", self.region)
        override = details.get("jobConfigurationOverrideDetails")
        env = {**self._env.get(job["id"], {}), **((override or {}).get("environmentVariables") or {})}
        log = details.get("jobLogConfigurationOverrideDetails") or job.get("jobLogConfigurationDetails") or {}
        log_details = None
        if log.get("enableLogging"):
            log_details = {"logGroupId": log.get("logGroupId") or ds.ocid("loggroup", self.region),
                           "logId": log.get("logId") or ds.ocid("log", self.region)}
        run = {"id": run_id, "timeAccepted": now_iso(), "timeStarted": None, "timeFinished": None, "createdBy": user,
               "projectId": details["projectId"], "compartmentId": details["compartmentId"], "jobId": job["id"],
               "displayName": details.get("displayName") or f"jobrun{run_id[-6:]}",
               "jobConfigurationOverrideDetails": ds.redacted(override),
               "jobInfrastructureConfigurationDetails": job["jobInfrastructureConfigurationDetails"],
               "jobEnvironmentConfigurationOverrideDetails": details.get("jobEnvironmentConfigurationOverrideDetails"),
               "jobLogConfigurationOverrideDetails": details.get("jobLogConfigurationOverrideDetails"),
               "jobStorageMountConfigurationDetailsList": [], "logDetails": log_details,
               "lifecycleState": "ACCEPTED", "lifecycleDetails": DETAILS["ACCEPTED"],
               "freeformTags": details.get("freeformTags") or {}, "definedTags": details.get("definedTags") or {},
               "etag": ds.etag()}
        with self._lock:
            self.runs[run_id] = run
            ds.save(self.settings.state, "runs", run)
        self.executor.start(run, job, env)
        return run

    def run(self, run_id: str) -> dict:
        try:
            return self.runs[run_id]
        except KeyError:
            raise errors.not_found() from None

    def cancel_run(self, run_id: str, if_match: str | None) -> None:
        with self._lock:
            run = _matching(self.run(run_id), if_match)
            if run["lifecycleState"] in ds.RUN_TERMINAL:
                raise incorrect_state(f"Job run {run_id} is {run['lifecycleState']}; only an ACCEPTED or "
                                      "IN_PROGRESS job run can be canceled.")
            if run_id not in self._cancels:
                self._cancels.add(run_id)
                self.update(run_id, lifecycleState="CANCELING", lifecycleDetails=DETAILS["CANCELING"])

    def delete_run(self, run_id: str, if_match: str | None) -> None:
        with self._lock:
            run = _matching(self.run(run_id), if_match)
            if run["lifecycleState"] not in ds.RUN_TERMINAL:
                raise incorrect_state(f"Job run {run_id} is {run['lifecycleState']}; cancel it before deleting it.")
            self.update(run_id, lifecycleState="DELETED")


def _matching(record: dict, if_match: str | None) -> dict:
    if if_match is not None and if_match.strip('"') not in ("*", record["etag"]):
        raise errors.OciError(412, "PreconditionFailed", "The If-Match header does not match the resource's etag.")
    return record


def _listed(records: list[dict], request: Request, filters: tuple[str, ...], fields: tuple[str, ...]) -> Response:
    query = request.query_params
    if not query.get("compartmentId"):
        raise errors.missing_parameter("compartmentId")
    chosen = [r for r in records if r["compartmentId"] == query["compartmentId"]
              and all(r.get(name) == query[name] for name in filters if name in query)]
    if "lifecycleState" not in query:
        chosen = [r for r in chosen if r["lifecycleState"] != "DELETED"]
    sort_by, order = query.get("sortBy", "timeCreated"), query.get("sortOrder", "DESC")
    if sort_by not in ("timeCreated", "displayName") or order not in ("ASC", "DESC"):
        raise errors.invalid_parameter("sortBy must be timeCreated or displayName, sortOrder ASC or DESC")
    key = "displayName" if sort_by == "displayName" else ("timeCreated" if "timeCreated" in fields else "timeAccepted")
    chosen.sort(key=lambda r: (r.get(key) or "", r["id"]), reverse=order == "DESC")
    page, next_page = ds.page(chosen, query.get("limit"), query.get("page"))
    return json_response([ds.summary(r, fields) for r in page], headers={"opc-next-page": next_page} if next_page
                         else None)



def _resource(record: dict) -> Response:
    return json_response({k: v for k, v in record.items() if k != "etag"}, headers={"etag": record["etag"]})


def routes(settings: RunSettings, region: str) -> list[Route]:
    service = DataScience(settings, region)

    def operation(name: str, handler: Callable[[Request], Response]):
        async def endpoint(request: Request) -> Response:
            service.throttle(name)
            return handler(request)
        return endpoint

    def user(request: Request) -> str:
        return request.state.principal.user

    def if_match(request: Request) -> str | None:
        return request.headers.get("if-match")

    def delete_job(request: Request) -> Response:
        service.delete_job(request.path_params["id"], if_match(request),
                           request.query_params.get("deleteRelatedJobRuns") == "true")
        return Response(status_code=202, headers={"opc-work-request-id": ds.ocid("datascienceworkrequest", region)})

    def cancel_run(request: Request) -> Response:
        service.cancel_run(request.path_params["id"], if_match(request))
        return Response(status_code=202)

    def delete_run(request: Request) -> Response:
        service.delete_run(request.path_params["id"], if_match(request))
        return Response(status_code=204)

    handlers = {
        "CreateJob": lambda r: _resource(service.create_job(json_object(r), user(r))),
        "GetJob": lambda r: _resource(service.job(r.path_params["id"])),
        "ListJobs": lambda r: _listed(list(service.jobs.values()), r, ("projectId", "id", "displayName",
                                      "lifecycleState", "createdBy"), ds.JOB_SUMMARY),
        "DeleteJob": delete_job,
        "CreateJobRun": lambda r: _resource(service.create_run(json_object(r), user(r))),
        "GetJobRun": lambda r: _resource(service.run(r.path_params["id"])),
        "ListJobRuns": lambda r: _listed(list(service.runs.values()), r, ("jobId", "id", "displayName",
                                         "lifecycleState", "createdBy"), ds.RUN_SUMMARY),
        "CancelJobRun": cancel_run,
        "DeleteJobRun": delete_run,
    }
    table = [("/jobs", "POST", "CreateJob"), ("/jobs", "GET", "ListJobs"), ("/jobs/{id}", "GET", "GetJob"),
             ("/jobs/{id}", "DELETE", "DeleteJob"), ("/jobRuns", "POST", "CreateJobRun"),
             ("/jobRuns", "GET", "ListJobRuns"), ("/jobRuns/{id}", "GET", "GetJobRun"),
             ("/jobRuns/{id}", "DELETE", "DeleteJobRun"),
             ("/jobRuns/{id}/actions/cancelJobRun", "POST", "CancelJobRun")]
    return [oci_route(PREFIX + path, operation(name, handlers[name]), [method]) for path, method, name in table]

