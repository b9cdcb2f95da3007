"""Vault's secret retrieval API (``/20190301/secretbundles/...``: GetSecretBundle and GetSecretBundleByName) and the
subset of its management API (``/20180608/secrets``) that creating, rotating and deleting a secret needs:
CreateSecret, UpdateSecret (a new version), ListSecrets by name, GetSecret, ScheduleSecretDeletion and
CancelSecretDeletion. A secret pending deletion is inaccessible at once, as in OCI: its bundles answer 404
``NotAuthorizedOrNotFound`` and an update 409 ``IncorrectState``, until the deletion is canceled; the stand-in never
carries the deletion out.

Secrets live in ``<state>/secrets.json`` (mode 0600), seeded with :func:`put_secret` (``lastmile up`` puts the
stand-ins' credentials there); the server reads the file again whenever it changes. Each secret keeps its versions:
the newest is ``CURRENT`` and ``LATEST``, the one before it ``PREVIOUS``, so a rotated value can still be read by
version number or stage, as in OCI. Unknown secrets, versions and stages are 404 ``NotAuthorizedOrNotFound``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from . import errors
from .files import WatchedJson, read_json, write_json
from .http import Route, json_object, json_response, oci_route
from .objectstore import now_iso

STAGES = ("CURRENT", "PENDING", "LATEST", "PREVIOUS", "DEPRECATED")


def secrets_file(state: Path) -> Path:
    return state / "secrets.json"


def secret_ocid(vault_id: str, name: str) -> str:
    """A stable OCID for the secret ``name`` of ``vault_id`` (the same on every machine for the same pair)."""
    return "ocid1.vaultsecret.oc1..amaaaaaa" + hashlib.sha256(f"{vault_id}/{name}".encode()).hexdigest()[:40]


def put_secret(state: Path, name: str, vault_id: str, value: bytes | str, ocid: str | None = None,
               compartment_id: str | None = None, key_id: str | None = None) -> dict:
    """Create the secret ``name`` in ``vault_id``, or add a new version to it when the value changed; its record
    (``id``, ``name``, ``vaultId``, ``versions``). The value is stored base64-encoded, as OCI returns it."""
    content = base64.b64encode(value.encode() if isinstance(value, str) else value).decode()
    path = secrets_file(state)
    records: list[dict] = read_json(path, {"secrets": []})["secrets"]
    record = next((r for r in records if r["name"] == name and r["vaultId"] == vault_id), None)
    if record is None:
        record = {"id": ocid or secret_ocid(vault_id, name), "name": name, "vaultId": vault_id,
                  "compartmentId": compartment_id, "keyId": key_id, "versions": []}
        records.append(record)
    if not record["versions"] or record["versions"][-1]["content"] != content:
        number = record["versions"][-1]["versionNumber"] + 1 if record["versions"] else 1
        record["versions"].append({"versionNumber": number, "content": content, "timeCreated": now_iso()})
    write_json(path, {"secrets": records}, private=True)
    return record


def set_pending_deletion(state: Path, secret_id: str, time_of_deletion: str | None) -> dict:
    """Schedule (a time) or cancel (None) the deletion of a secret; its record. A missing secret is 404."""
    path = secrets_file(state)
    records: list[dict] = read_json(path, {"secrets": []})["secrets"]
    record = _find(records, secret_id)
    if time_of_deletion is None:
        if not record.get("timeOfDeletion"):
            raise errors.OciError(409, "IncorrectState", "the secret is not pending deletion")
        record.pop("timeOfDeletion")
    else:
        if record.get("timeOfDeletion"):
            raise errors.OciError(409, "IncorrectState", "the secret is already pending deletion")
        record["timeOfDeletion"] = time_of_deletion
    write_json(path, {"secrets": records}, private=True)
    return record


def _usable(record: dict | None) -> dict:
    if record is None or record.get("timeOfDeletion"):
        raise errors.not_found()
    return record


def _bundle(record: dict, version: dict) -> dict:
    versions = record["versions"]
    stages = []
    if version is versions[-1]:
        stages = ["CURRENT", "LATEST"]
    elif len(versions) > 1 and version is versions[-2]:
        stages = ["PREVIOUS"]
    return {"secretId": record["id"], "timeCreated": version["timeCreated"], "versionNumber": version["versionNumber"],
            "versionName": version.get("versionName"), "stages": stages, "metadata": None,
            "timeOfDeletion": None, "timeOfExpiry": None,
            "secretBundleContent": {"contentType": "BASE64", "content": version["content"]}}


def _choose(record: dict, request: Request) -> dict:
    versions = record["versions"]
    query = request.query_params
    if not versions:
        raise errors.not_found()
    if "versionNumber" in query:
        chosen = [v for v in versions if str(v["versionNumber"]) == query["versionNumber"]]
    elif "secretVersionName" in query:
        chosen = [v for v in versions if v.get("versionName") == query["secretVersionName"]]
    else:
        stage = query.get("stage", "CURRENT").upper()
        if stage not in STAGES:
            raise errors.invalid_parameter(f"stage must be one of {', '.join(STAGES)}")
        by_stage = {"CURRENT": versions[-1:], "LATEST": versions[-1:], "PREVIOUS": versions[-2:-1]}
        chosen = by_stage.get(stage, [])
    if not chosen:
        raise errors.not_found()
    return chosen[0]


def routes(state: Path) -> list[Route]:
    secrets = WatchedJson(secrets_file(state), {"secrets": []})

    async def by_id(request: Request) -> Response:
        record = _usable(next((r for r in secrets.get()["secrets"] if r["id"] == request.path_params["secret_id"]),
                              None))
        return json_response(_bundle(record, _choose(record, request)))

    async def by_name(request: Request) -> Response:
        name, vault = request.query_params.get("secretName"), request.query_params.get("vaultId")
        if not name or not vault:
            raise errors.missing_parameter("secretName" if not name else "vaultId")
        record = _usable(next((r for r in secrets.get()["secrets"] if r["name"] == name and r["vaultId"] == vault),
                              None))
        return json_response(_bundle(record, _choose(record, request)))

    async def create(request: Request) -> Response:
        details = json_object(request, {})
        for field in ("compartmentId", "vaultId", "keyId", "secretName", "secretContent"):
            if not details.get(field):
                raise errors.missing_parameter(field)
        if any(r["name"] == details["secretName"] and r["vaultId"] == details["vaultId"]
               for r in secrets.get()["secrets"]):
            raise errors.OciError(409, "Conflict", f"a secret named {details['secretName']} exists in this vault")
        record = put_secret(state, details["secretName"], details["vaultId"], _content(details["secretContent"]),
                            compartment_id=details["compartmentId"], key_id=details["keyId"])
        return json_response(_summary(record), headers={"etag": _etag(record)})

    async def update(request: Request) -> Response:
        record = _find(secrets.get()["secrets"], request.path_params["secret_id"])
        if record.get("timeOfDeletion"):
            raise errors.OciError(409, "IncorrectState", "a secret pending deletion cannot be updated")
        details = json_object(request, {})
        if details.get("secretContent"):
            record = put_secret(state, record["name"], record["vaultId"], _content(details["secretContent"]),
                                ocid=record["id"])
        return json_response(_summary(record), headers={"etag": _etag(record)})

    async def get(request: Request) -> Response:
        record = _find(secrets.get()["secrets"], request.path_params["secret_id"])
        return json_response(_summary(record), headers={"etag": _etag(record)})

    async def listed(request: Request) -> Response:
        query = request.query_params
        if not query.get("compartmentId"):
            raise errors.missing_parameter("compartmentId")
        found = [r for r in secrets.get()["secrets"]
                 if (not query.get("name") or r["name"] == query["name"])
                 and (not query.get("vaultId") or r["vaultId"] == query["vaultId"])]
        return json_response([_summary(r) for r in found])

    async def schedule_deletion(request: Request) -> Response:
        when = json_object(request, {}).get("timeOfDeletion") or now_iso()
        set_pending_deletion(state, request.path_params["secret_id"], when)
        return Response(status_code=200)

    async def cancel_deletion(request: Request) -> Response:
        set_pending_deletion(state, request.path_params["secret_id"], None)
        return Response(status_code=200)

    return [
        oci_route("/20180608/secrets/{secret_id}/actions/scheduleDeletion", schedule_deletion, ["POST"]),
        oci_route("/20180608/secrets/{secret_id}/actions/cancelDeletion", cancel_deletion, ["POST"]),
        oci_route("/20190301/secretbundles/actions/getByName", by_name, ["POST"]),
        oci_route("/20190301/secretbundles/{secret_id}", by_id, ["GET"]),
        oci_route("/20180608/secrets", create, ["POST"]),
        oci_route("/20180608/secrets", listed, ["GET"]),
        oci_route("/20180608/secrets/{secret_id}", update, ["PUT"]),
        oci_route("/20180608/secrets/{secret_id}", get, ["GET"]),
    ]



def _content(content: dict) -> bytes:
    if content.get("contentType", "BASE64") != "BASE64" or "content" not in content:
        raise errors.invalid_parameter("secretContent must be BASE64 content")
    try:
        return base64.b64decode(content["content"], validate=True)
    except ValueError:
        raise errors.invalid_parameter("secretContent.content is not base64") from None


def _find(records: list[dict], secret_id: str) -> dict:
    record = next((r for r in records if r["id"] == secret_id), None)
    if record is None:
        raise errors.not_found()
    return record


def _summary(record: dict) -> dict:
    """OCI's ``Secret`` / ``SecretSummary`` shape for a record."""
    versions = record["versions"]
    return {"id": record["id"], "secretName": record["name"], "vaultId": record["vaultId"],
            "compartmentId": record.get("compartmentId"), "keyId": record.get("keyId"),
            "lifecycleState": "PENDING_DELETION" if record.get("timeOfDeletion") else "ACTIVE",
            "timeOfDeletion": record.get("timeOfDeletion"), "timeCreated": versions[0]["timeCreated"] if versions else now_iso(),
            "currentVersionNumber": versions[-1]["versionNumber"] if versions else None,
            "description": None, "freeformTags": {}, "definedTags": {}}


def _etag(record: dict) -> str:
    return hashlib.sha256(json.dumps(record["versions"][-1:], sort_keys=True).encode()).hexdigest()[:32]
