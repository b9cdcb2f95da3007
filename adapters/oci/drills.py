"""The oci family's drill activities: the OCI API stand-in's own switches for its Data Science job runs and DevOps
build runs (fail, hang, throttle), as Chaos Toolkit actions.

The generic faults reach these services too (``job:current`` kills or pauses a job run's process, an ``http``
rule on the ``oci`` route answers OCI's 429 for any operation); these switches make the service itself misbehave
the way OCI reports it: a job run that FAILED with OCI's lifecycle details, a build run whose step failed, a run
that never ends, throttling after the request's signature was checked. They only exist on the stand-in, so the
drills that use them name ``oci-local`` as their only profile (``extensions: [{name: lastmile, profiles:
[oci-local]}]``). Every switch is cleared by :func:`clear_oci_run_faults`, which a drill names in its rollbacks.
"""

from __future__ import annotations

import logging
from typing import Any

from harness.bootstrap import Harness
from harness.domain.errors import UserError
from harness.drills.catalog import action
from harness.drills.context import harness_for

log = logging.getLogger(__name__)
Configuration = dict[str, Any] | None


def _standin(h: Harness):
    found = next((s for s in h.standins() if s.name == "oci"), None)
    if found is None:
        raise UserError(f"profile {h.settings.profile}: no OCI API stand-in (these drills need oci-local)")
    return found


def _devops(h: Harness, method: str = "PUT", **counts: int) -> dict:
    from adapters.oci.standin.devops_api import set_faults

    standin = _standin(h)
    return set_faults(h.endpoint("oci", None), standin.client_dir / "config", "DEFAULT", method, **counts)


@action
def fail_oci_job_runs(exit_code: int = 1, configuration: Configuration = None) -> dict[str, Any]:
    """Job runs started from now on end FAILED, their artifact exiting with ``exit_code`` ("Job run artifact
    execution failed with exit code N")."""
    from adapters.oci.standin.datascience import set_drills

    return set_drills(_standin(harness_for(configuration)).server_state, fail_exit_code=exit_code)


@action
def hang_oci_job_runs(configuration: Configuration = None) -> dict[str, Any]:
    """Job runs started from now on never finish: they run until their maximum runtime ("Job run timed out") or a
    cancel."""
    from adapters.oci.standin.datascience import set_drills

    return set_drills(_standin(harness_for(configuration)).server_state, hang=True)


@action
def throttle_oci_job_runs(operations: list[str] | None = None, configuration: Configuration = None) -> dict[str, Any]:
    """The Data Science ``operations`` (default: CreateJobRun and GetJobRun) answer 429 TooManyRequests."""
    from adapters.oci.standin.datascience import set_drills

    chosen = tuple(operations or ("CreateJobRun", "GetJobRun"))
    return set_drills(_standin(harness_for(configuration)).server_state, throttle=chosen)


@action
def fail_oci_build_runs(count: int = 2, configuration: Configuration = None) -> dict[str, Any]:
    """The next ``count`` build runs fail in their first step, as a build spec's failing command does."""
    return _devops(harness_for(configuration), fail=count)


@action
def hang_oci_build_runs(count: int = 1, configuration: Configuration = None) -> dict[str, Any]:
    """The next ``count`` build runs never finish: until canceled, or the build spec's time limit."""
    return _devops(harness_for(configuration), hang=count)


@action
def throttle_oci_devops(count: int = 3, configuration: Configuration = None) -> dict[str, Any]:
    """The next ``count`` DevOps API calls answer 429 TooManyRequests."""
    return _devops(harness_for(configuration), throttle=count)


@action
def clear_oci_run_faults(configuration: Configuration = None) -> dict[str, Any]:
    """Every job-run and build-run switch off (a rollback: safe to call when none is on, or with no stand-in)."""
    from adapters.oci.standin.datascience import set_drills

    h = harness_for(configuration)
    try:
        standin = _standin(h)
    except UserError:
        return {"cleared": False, "why": "no OCI API stand-in in this profile"}
    set_drills(standin.server_state)
    try:
        left = _devops(h, method="DELETE")
    except Exception as exc:  # the stand-in is down: its counts lived in memory and went with it
        log.warning("the DevOps switches could not be cleared (%s); a stand-in that restarts has none", exc)
        left = {}
    return {"cleared": True, "devops": left}
