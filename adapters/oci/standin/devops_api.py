"""OCI DevOps (``/20210630``) in the stand-in: build runs of registered build pipelines, a GitHub push trigger,
and the drill hooks.

================  ================================================  ==================================  ===========================================
operation         route                                             SDK test (test_oci_standin_devops)  CLI test (test_oci_standin_devops_cli)
================  ================================================  ==================================  ===========================================
GetProject        ``GET /20210630/projects/{id}``                   ``test_get_project``                ``test_project_get``
GetBuildPipeline  ``GET /20210630/buildPipelines/{id}``             ``test_get_build_pipeline``         ``test_build_pipeline_get``
CreateBuildRun    ``POST /20210630/buildRuns``                      ``test_build_run_delivers_...``     ``test_build_run_create_waits_for_success``
GetBuildRun       ``GET /20210630/buildRuns/{id}``                  ``test_build_run_delivers_...``     ``test_build_run_get``
ListBuildRuns     ``GET /20210630/buildRuns``                       ``test_list_build_runs``            ``test_build_run_list``
CancelBuildRun    ``POST /20210630/buildRuns/{id}/actions/cancel``  ``test_cancel_build_run``           ``test_build_run_cancel``
================  ================================================  ==================================  ===========================================

(Both test modules are in ``tests/component``; the adapter's own tests are in ``test_oci_devops_builder.py``.)

A build run walks ACCEPTED -> IN_PROGRESS -> SUCCEEDED / FAILED, or CANCELING -> CANCELED (see
:mod:`.devops_runner`). Unknown projects, pipelines and runs are 404 ``NotAuthorizedOrNotFound``.

**GitHub push webhook**: ``POST /20210630/triggers/{triggerId}/events`` (the trigger's URL, unsigned by OCI:
GitHub signs it with ``X-Hub-Signature-256``, HMAC-SHA256 of the raw body with the trigger's shared secret, kept
in the Vault stand-in). A missing signature is 401, a wrong one 403. A ``push`` to the trigger's branch whose
changed paths (``added``/``modified``/``removed`` of its commits) pass the include/exclude file filters, with the
local trigger's matcher (:func:`harness.domain.trigger.select`), starts a build run of the pushed commit; the answer
says ``{"buildRunId": ...}`` or ``{"buildRunId": null, "reason": "no filtered path changed"}``.

**Drill hooks** (signed like every route): ``PUT /_lastmile/devops/faults`` with ``{"fail": n, "hang": n,
"throttle": n}`` makes the next n build runs fail, or hang until canceled (or their build timeout), and the next n
DevOps API requests answer 429 ``TooManyRequests``; ``GET`` shows the counts left, ``DELETE`` clears them.
:func:`set_faults` is the client side, signed with an SDK config file's API key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from harness.domain.trigger import select

from . import errors
from .devops_runner import BuildRunner
from .devops_store import TERMINAL, BuildRuns, DevOpsConfig, summary
from .files import WatchedJson
from .http import json_object, json_response, oci_route
from .vault import secrets_file

FAULTS = ("fail", "hang", "throttle")


class Faults:
    """Counts of drill faults still to apply."""

    def __init__(self):
        self._lock = threading.Lock()
        self.counts = dict.fromkeys(FAULTS, 0)

    def take(self, kind: str) -> bool:
        with self._lock:
            if self.counts[kind] > 0:
                self.counts[kind] -= 1
                return True
            return False


def routes(state: Path) -> list[Route]:
    config, runs, faults = DevOpsConfig(state), BuildRuns(state), Faults()
    secrets = WatchedJson(secrets_file(state), {"secrets": []})

    def secret(ocid: str) -> bytes | None:
        record = next((r for r in secrets.get()["secrets"] if r["id"] == ocid), None)
        return base64.b64decode(record["versions"][-1]["content"]) if record and record["versions"] else None

    runner = BuildRunner(state, runs, secret, faults.take)

    def throttled() -> None:
        if faults.take("throttle"):
            raise errors.OciError(429, "TooManyRequests", "Too many requests for the tenancy (drill)",
                                  {"retry-after": "1"})

    def found(section: str, key: str) -> dict:
        item = config.get(section, key)
        if item is None:
            raise errors.not_found()
        return item

    def start(pipeline_id: str, commit: dict, arguments: dict[str, str], name: str | None, source: dict) -> dict:
        pipeline = found("pipelines", pipeline_id)
        run = runs.create(pipeline_id, pipeline, commit, arguments, name, source)
        runner.start(run, pipeline, arguments)
        return run

    async def get_project(request: Request) -> Response:
        throttled()
        project_id = request.path_params["id"]
        project = found("projects", project_id)
        return json_response({"id": project_id, "name": project["name"], "compartmentId": project["compartmentId"],
                              "namespace": project["name"], "lifecycleState": "ACTIVE", "description": None,
                              "notificationConfig": {"topicId": "ocid1.onstopic.oc1..lastmile"},
                              "timeCreated": None, "freeformTags": {}, "definedTags": {}, "systemTags": {}})

    async def get_pipeline(request: Request) -> Response:
        throttled()
        pipeline_id = request.path_params["id"]
        pipeline = found("pipelines", pipeline_id)
        parameters = [{"name": k, "defaultValue": v, "description": None} for k, v in pipeline["parameters"].items()]
        return json_response({"id": pipeline_id, "displayName": pipeline["displayName"], "description": None,
                              "compartmentId": pipeline["compartmentId"], "projectId": pipeline["projectId"],
                              "lifecycleState": "ACTIVE", "lifecycleDetails": None,
                              "buildPipelineParameters": {"items": parameters}, "freeformTags": {},
                              "definedTags": {}, "systemTags": {}},
                             headers={"etag": hashlib.sha256(json.dumps(pipeline).encode()).hexdigest()[:32]})

    async def create_run(request: Request) -> Response:
        throttled()
        details = json_object(request, {})
        if not details.get("buildPipelineId"):
            raise errors.missing_parameter("buildPipelineId")
        pipeline = found("pipelines", details["buildPipelineId"])
        commit = details.get("commitInfo") or {}
        if not commit.get("commitHash"):
            raise errors.invalid_parameter("commitInfo.commitHash is required: the stand-in builds commits")
        commit = {"repositoryUrl": commit.get("repositoryUrl") or pipeline["repositoryUrl"],
                  "repositoryBranch": commit.get("repositoryBranch") or "main", "commitHash": commit["commitHash"]}
        items = (details.get("buildRunArguments") or {}).get("items") or []
        arguments = {str(i["name"]): str(i["value"]) for i in items if isinstance(i, dict) and i.get("name")}
        run = start(details["buildPipelineId"], commit, arguments, details.get("displayName"),
                    {"sourceType": "MANUAL"})
        return json_response(run, headers=_etag(run))

    async def get_run(request: Request) -> Response:
        throttled()
        run = runs.get(request.path_params["id"])
        if run is None:
            raise errors.not_found()
        return json_response(run, headers=_etag(run))

    async def list_runs(request: Request) -> Response:
        throttled()
        query = request.query_params
        if not any(query.get(k) for k in ("id", "buildPipelineId", "projectId", "compartmentId")):
            raise errors.invalid_parameter("one of id, buildPipelineId, projectId or compartmentId is required")
        keys = {"id": "id", "buildPipelineId": "buildPipelineId", "projectId": "projectId",
                "compartmentId": "compartmentId", "displayName": "displayName", "lifecycleState": "lifecycleState"}
        chosen = [r for r in runs.listed() if all(r.get(f) == query[k] for k, f in keys.items() if query.get(k))]
        if query.get("sortOrder") == "ASC":
            chosen.reverse()
        return json_response({"items": [summary(r) for r in chosen]})

    async def cancel_run(request: Request) -> Response:
        throttled()
        run = runs.get(request.path_params["id"])
        if run is None:
            raise errors.not_found()
        if run["lifecycleState"] in TERMINAL:
            raise errors.OciError(409, "Conflict", f"The build run is {run['lifecycleState']} and cannot be canceled")
        reason = str(json_object(request, {}).get("reason") or "canceled by the user")
        run = runner.cancel(run["id"], reason)
        return json_response(run, headers=_etag(run))

    async def webhook(request: Request) -> Response:
        trigger_id = request.path_params["id"]
        trigger = config.get("triggers", trigger_id)
        body = await request.body()
        if trigger is None:
            raise errors.not_found()
        signature = request.headers.get("x-hub-signature-256")
        if not signature:
            raise errors.not_authenticated("The request has no X-Hub-Signature-256 header")
        key = secret(trigger["secretId"]) or b""
        expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        if not key or not hmac.compare_digest(signature, expected):
            raise errors.OciError(403, "NotAuthorized", "The X-Hub-Signature-256 does not match the trigger's secret")
        event = request.headers.get("x-github-event", "")
        if event == "ping":
            return json_response({"buildRunId": None, "reason": "pong"})
        try:
            push = json.loads(body)
        except ValueError:
            raise errors.cannot_parse("the push event is not JSON") from None
        if event != "push" or push.get("ref") != f"refs/heads/{trigger['branch']}" or push.get("deleted"):
            return json_response({"buildRunId": None, "reason": f"not a push to {trigger['branch']}; ignored"})
        changed = sorted({p for c in push.get("commits") or [] for k in ("added", "modified", "removed")
                          for p in c.get(k) or []})
        matched = select(changed, trigger["include"], trigger["exclude"])
        if not matched:
            return json_response({"buildRunId": None, "reason": "no filtered path changed"})
        commit = {"repositoryUrl": (push.get("repository") or {}).get("clone_url") or "",
                  "repositoryBranch": trigger["branch"], "commitHash": push.get("after") or ""}
        run = start(trigger["pipelineId"], commit, trigger["arguments"], None,
                    {"sourceType": "GITHUB", "triggerId": trigger_id, "triggerInfo": None})
        return json_response({"buildRunId": run["id"], "paths": matched}, status=202)

    async def drill_faults(request: Request) -> Response:
        if request.method == "PUT":
            wanted = json_object(request, {})
            unknown = set(wanted) - set(FAULTS)
            if unknown or not all(isinstance(v, int) and v >= 0 for v in wanted.values()):
                raise errors.invalid_parameter(f"faults are counts of {', '.join(FAULTS)}")
            faults.counts.update(wanted)
        elif request.method == "DELETE":
            faults.counts.update(dict.fromkeys(FAULTS, 0))
        return json_response(dict(faults.counts))

    return [
        oci_route("/20210630/projects/{id}", get_project, ["GET"]),
        oci_route("/20210630/buildPipelines/{id}", get_pipeline, ["GET"]),
        oci_route("/20210630/buildRuns", create_run, ["POST"]),
        oci_route("/20210630/buildRuns", list_runs, ["GET"]),
        oci_route("/20210630/buildRuns/{id}", get_run, ["GET"]),
        oci_route("/20210630/buildRuns/{id}/actions/cancel", cancel_run, ["POST"]),
        Route("/20210630/triggers/{id}/events", webhook, methods=["POST"]),
        oci_route("/_lastmile/devops/faults", drill_faults, ["GET", "PUT", "DELETE"]),
    ]



def _etag(run: dict) -> dict[str, str]:
    return {"etag": hashlib.sha256(f"{run['id']}{run['timeUpdated']}".encode()).hexdigest()[:32]}


def set_faults(url: str, config_file: Path, profile: str = "DEFAULT", method: str = "PUT", **counts: int) -> dict:
    """The drill hook's client: ``PUT`` (or ``GET``/``DELETE``) ``/_lastmile/devops/faults`` at the stand-in
    ``url``, signed with the API key of ``config_file``'s ``profile``; the counts left."""
    import oci
    from oci._vendor import requests

    config = oci.config.from_file(str(config_file), profile)
    signer = oci.signer.Signer(config["tenancy"], config["user"], config["fingerprint"], config["key_file"],
                               pass_phrase=config.get("pass_phrase"))
    answer = requests.request(method, f"{url.rstrip('/')}/_lastmile/devops/faults",
                              json=counts if method == "PUT" else None, auth=signer, timeout=10)
    if answer.status_code != 200:
        raise RuntimeError(f"the stand-in refused the drill faults ({answer.status_code}): {answer.text[:200]}")
    return answer.json()
