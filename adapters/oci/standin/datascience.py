"""OCI Data Science jobs and job runs (``/20190101``): the resources, their JSON as the ``oci.data_science`` models
read it, the checks CreateJob and CreateJobRun make, and the drill switches.

A job is a bring-your-own-container job: ``jobEnvironmentConfigurationDetails`` of type ``OCIR_CONTAINER`` with an
image pinned by digest (``...@sha256:...`` or ``imageDigest``), on ``STANDALONE`` (or ``ME_STANDALONE``)
infrastructure. Its image is a lastmile bundle in the OCIR stand-in (the Distribution registry); a job run pulls it
and runs its entrypoint module the way the local job runner does (:mod:`.datascience_runs`).

Environment variables may hold credentials. Their values are kept in this process's memory only: the records on
disk, the log and every answer show each value as :data:`REDACTED`. OCI itself echoes them in GetJob and GetJobRun;
the stand-in does not, on purpose, so that no secret ends up in a state file or a drill's output.

Drill switches (:func:`set_drills`, or ``python -m adapters.oci.standin datascience drill``) live in
``<state>/datascience/drills.json``, read again whenever it changes:

- ``fail_exit_code``: a job run started while it is set runs a command that exits with that code instead of its
  entrypoint, so it ends FAILED with "Job run artifact execution failed with exit code N";
- ``hang``: a job run started while it is set sleeps instead, until its time limit ("Job run timed out") or a
  cancel;
- ``throttle``: operations (``CreateJobRun``, ``GetJobRun``, any name in :data:`OPERATIONS`) answered with 429
  ``TooManyRequests`` while they are listed.
"""

from __future__ import annotations

import re
import shlex
import uuid
from pathlib import Path
from typing import Any

from . import errors
from .files import read_json, write_json

REDACTED = "<redacted>"
OPERATIONS = ("CreateJob", "GetJob", "ListJobs", "DeleteJob", "CreateJobRun", "GetJobRun", "ListJobRuns",
              "CancelJobRun", "DeleteJobRun")
INFRASTRUCTURE_TYPES = ("STANDALONE", "ME_STANDALONE")
RUN_TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "DELETED")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def folder(state: Path) -> Path:
    return state / "datascience"


def ocid(kind: str, region: str) -> str:
    """A new OCID of ``kind`` (``datasciencejob``, ``datasciencejobrun``) in ``region``."""
    return f"ocid1.{kind}.oc1.{region}.amaaaaaa{uuid.uuid4().hex}"


def etag() -> str:
    return uuid.uuid4().hex


# --- drills -----------------------------------------------------------------------------------------------------

def drills_file(state: Path) -> Path:
    return folder(state) / "drills.json"


def set_drills(state: Path, fail_exit_code: int | None = None, hang: bool = False,
               throttle: tuple[str, ...] | list[str] = ()) -> dict:
    """Replace the drill switches (all off when called without arguments); the running stand-in sees the change
    at its next request or job run start."""
    unknown = [op for op in throttle if op not in OPERATIONS]
    if unknown:
        raise ValueError(f"unknown Data Science operations {unknown}; known: {', '.join(OPERATIONS)}")
    if fail_exit_code is not None and not 1 <= fail_exit_code <= 255:
        raise ValueError("fail_exit_code must be between 1 and 255")
    switches = {"fail_exit_code": fail_exit_code, "hang": hang, "throttle": list(throttle)}
    write_json(drills_file(state), switches)
    return switches


def read_drills(state: Path) -> dict:
    return read_json(drills_file(state), {})


# --- input ------------------------------------------------------------------------------------------------------

def _required(details: dict, name: str, kind: type = str) -> Any:
    value = details.get(name)
    if value is None or value == "":
        raise errors.invalid_parameter(f"{name} is required")
    if not isinstance(value, kind):
        raise errors.invalid_parameter(f"{name} must be a {kind.__name__}")
    return value


def _strings(details: dict, name: str, kind: type) -> Any:
    value = details.get(name)
    if value is None:
        return None
    if kind is dict and not (isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str)
                                                             for k, v in value.items())):
        raise errors.invalid_parameter(f"{name} must map names to strings")
    if kind is list and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise errors.invalid_parameter(f"{name} must be a list of strings")
    return value


def check_configuration(details: dict | None, name: str) -> dict | None:
    """A ``DEFAULT`` job configuration (environment variables, command line arguments, maximum runtime)."""
    if details is None:
        return None
    if not isinstance(details, dict) or details.get("jobType") != "DEFAULT":
        raise errors.invalid_parameter(f"{name}.jobType must be DEFAULT")
    _strings(details, "environmentVariables", dict)
    arguments = details.get("commandLineArguments")
    if arguments is not None:
        if not isinstance(arguments, str):
            raise errors.invalid_parameter(f"{name}.commandLineArguments must be a string")
        try:
            shlex.split(arguments)
        except ValueError as exc:
            raise errors.invalid_parameter(f"{name}.commandLineArguments cannot be split: {exc}") from None
    runtime = details.get("maximumRuntimeInMinutes")
    if runtime is not None and (not isinstance(runtime, int) or isinstance(runtime, bool) or runtime < 1):
        raise errors.invalid_parameter(f"{name}.maximumRuntimeInMinutes must be a whole number of at least 1")
    return details


def check_log(details: dict | None, name: str) -> dict | None:
    if details is None:
        return None
    if not isinstance(details, dict):
        raise errors.invalid_parameter(f"{name} must be an object")
    if details.get("enableLogging") and not details.get("enableAutoLogCreation") and not (
            details.get("logGroupId") and details.get("logId")):
        raise errors.invalid_parameter(f"{name}: logging without automatic log creation needs logGroupId and logId")
    return details


def check_environment(details: Any) -> dict:
    """An ``OCIR_CONTAINER`` environment whose image is pinned by digest."""
    if not isinstance(details, dict) or details.get("jobEnvironmentType") != "OCIR_CONTAINER":
        raise errors.invalid_parameter("jobEnvironmentConfigurationDetails.jobEnvironmentType must be "
                                       "OCIR_CONTAINER (the stand-in runs bring-your-own-container jobs only)")
    image = _required(details, "image")
    for name in ("cmd", "entrypoint"):
        _strings(details, name, list)
    digest = details.get("imageDigest")
    if digest is not None and not _DIGEST.fullmatch(str(digest)):
        raise errors.invalid_parameter("imageDigest must be sha256:<64 hex digits>")
    if "@" in image:
        if not _DIGEST.fullmatch(image.rpartition("@")[2]):
            raise errors.invalid_parameter(f"image {image!r} has no valid sha256 digest")
    elif digest is None:
        raise errors.invalid_parameter(f"image {image!r} must be pinned by digest (image@sha256:... or "
                                       "imageDigest)")
    return details


def check_job(details: dict) -> None:
    """CreateJobDetails as OCI checks them (400 ``InvalidParameter`` naming the field)."""
    _required(details, "projectId")
    _required(details, "compartmentId")
    infrastructure = details.get("jobInfrastructureConfigurationDetails")
    if not isinstance(infrastructure, dict) or infrastructure.get("jobInfrastructureType") \
            not in INFRASTRUCTURE_TYPES:
        raise errors.invalid_parameter("jobInfrastructureConfigurationDetails.jobInfrastructureType must be one "
                                       f"of {', '.join(INFRASTRUCTURE_TYPES)}")
    _required(infrastructure, "shapeName")
    check_environment(details.get("jobEnvironmentConfigurationDetails"))
    check_configuration(details.get("jobConfigurationDetails"), "jobConfigurationDetails")
    check_log(details.get("jobLogConfigurationDetails"), "jobLogConfigurationDetails")


def check_run(details: dict) -> None:
    """CreateJobRunDetails as OCI checks them."""
    for name in ("projectId", "compartmentId", "jobId"):
        _required(details, name)
    check_configuration(details.get("jobConfigurationOverrideDetails"), "jobConfigurationOverrideDetails")
    check_log(details.get("jobLogConfigurationOverrideDetails"), "jobLogConfigurationOverrideDetails")
    if details.get("jobEnvironmentConfigurationOverrideDetails") is not None:
        check_environment(details["jobEnvironmentConfigurationOverrideDetails"])


def image_reference(environment: dict) -> tuple[str, str, str]:
    """``(registry host, repository, digest)`` of an OCIR_CONTAINER environment's image."""
    image = environment["image"]
    if "@" in image:
        name, _, digest = image.rpartition("@")
    else:
        name, digest = image, environment["imageDigest"]
        last = name.rsplit("/", 1)
        if ":" in last[-1]:
            name = name[:name.rindex(":")]
    host, _, repository = name.partition("/")
    return host, repository, digest


# --- output -----------------------------------------------------------------------------------------------------

def redacted(details: dict | None) -> dict | None:
    """A job configuration with every environment variable's value replaced by :data:`REDACTED`."""
    if not details or not details.get("environmentVariables"):
        return details
    return {**details, "environmentVariables": dict.fromkeys(details["environmentVariables"], REDACTED)}


JOB_SUMMARY = ("id", "timeCreated", "createdBy", "projectId", "compartmentId", "displayName", "lifecycleState",
               "freeformTags", "definedTags")
RUN_SUMMARY = ("id", "timeAccepted", "timeStarted", "timeFinished", "createdBy", "projectId", "compartmentId",
               "jobId", "displayName", "lifecycleState", "lifecycleDetails", "freeformTags", "definedTags")


def summary(record: dict, fields: tuple[str, ...]) -> dict:
    return {name: record.get(name) for name in fields}


def save(state: Path, kind: str, record: dict) -> None:
    """Persist a job (``jobs``) or job run (``runs``) record: values of environment variables never reach disk."""
    safe = {**record}
    for name in ("jobConfigurationDetails", "jobConfigurationOverrideDetails"):
        if name in safe:
            safe[name] = redacted(safe[name])
    write_json(folder(state) / kind / f"{record['id']}.json", safe)


def load(state: Path, kind: str) -> dict[str, dict]:
    return {path.stem: read_json(path, {}) for path in sorted((folder(state) / kind).glob("*.json"))}


def page(records: list[dict], limit_raw: str | None, page_raw: str | None) -> tuple[list[dict], str | None]:
    """OCI's list paging: ``limit`` (1-1000, default 100) records from the offset ``page`` names."""
    limit_raw, page_raw = limit_raw or "100", page_raw or "0"
    if not limit_raw.isdigit() or not 1 <= int(limit_raw) <= 1000 or not page_raw.isdigit():
        raise errors.invalid_parameter("limit must be between 1 and 1000, and page a token from opc-next-page")
    start, limit = int(page_raw), int(limit_raw)
    return records[start:start + limit], (str(start + limit) if start + limit < len(records) else None)
