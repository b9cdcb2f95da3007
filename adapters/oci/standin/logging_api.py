"""Logging Ingestion's PutLogs (``POST /20200831/logs/{logId}/actions/push``) and Logging Search's SearchLogs
(``POST /20190909/search``).

A log must be registered first (:func:`register_log`, as a custom log is created in a log group of a compartment
in OCI); PutLogs to any other log id is 404 ``NotAuthorizedOrNotFound``. Entries are appended to
``<state>/logging/<logId>.jsonl``. A search result is shaped as OCI's: ``{"datetime": <epoch ms>, "logContent":
{"data", "id", "oracle": {...}, "source", "specversion", "subject", "time", "type"}}``, where ``data`` is the entry's
JSON object when its data is one, else ``{"message": <data>}``. Queries: see :mod:`.logquery`.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from . import errors, logquery
from .files import WatchedJson, read_json, write_json
from .http import Route, json_object, json_response, oci_route


def logging_dir(state: Path) -> Path:
    return state / "logging"


def register_log(state: Path, log_id: str, log_group_id: str, compartment_id: str) -> None:
    """Accept PutLogs for ``log_id``, a custom log of ``log_group_id`` in ``compartment_id``."""
    path = logging_dir(state) / "logs.json"
    registry = read_json(path, {})
    registry[log_id] = {"logGroupId": log_group_id, "compartmentId": compartment_id}
    write_json(path, registry)


def append_lines(state: Path, log_id: str, log_group_id: str, compartment_id: str, messages: list[str], *,
                 source: str, subject: str, entry_type: str) -> None:
    """Write ``messages`` into ``log_id`` as OCI's services write their own logs (a Data Science job run's output),
    registering the log first when it is unknown (as automatic log creation does)."""
    if not messages:
        return
    if log_id not in read_json(logging_dir(state) / "logs.json", {}):
        register_log(state, log_id, log_group_id, compartment_id)
    now = datetime.now(UTC)
    stamp = now.isoformat(timespec="milliseconds")
    lines = [{"id": str(uuid.uuid4()), "data": message, "time": now.isoformat(), "source": source,
              "type": entry_type, "subject": subject, "specversion": "1.0", "ingestedtime": stamp}
             for message in messages]
    _append(logging_dir(state), log_id, lines)


def _append(folder: Path, log_id: str, lines: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{log_id}.jsonl").open("a") as out:
        out.write("".join(json.dumps(line) + "\n" for line in lines))


def _instant(raw: object, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise errors.invalid_parameter(f"{what} is not an RFC 3339 date-time: {raw!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)



def _entries(details: dict, ingested: str) -> list[dict]:
    """PutLogsDetails as stored lines; raises 400 for what OCI requires and is missing."""
    if details.get("specversion") != "1.0":
        raise errors.invalid_parameter("specversion must be '1.0'")
    batches = details.get("logEntryBatches")
    if not isinstance(batches, list) or not batches:
        raise errors.invalid_parameter("logEntryBatches must be a non-empty list")
    lines = []
    for batch in batches:
        if not isinstance(batch, dict) or not batch.get("source") or not batch.get("type"):
            raise errors.invalid_parameter("each log entry batch needs a source and a type")
        default_time = batch.get("defaultlogentrytime")
        for entry in batch.get("entries") or []:
            if not isinstance(entry, dict) or entry.get("data") is None or not entry.get("id"):
                raise errors.invalid_parameter("each log entry needs data and an id")
            moment = _instant(entry.get("time") or default_time or ingested, "time")
            lines.append({"id": entry["id"], "data": entry["data"], "time": moment.isoformat(),
                          "source": batch["source"], "type": batch["type"], "subject": batch.get("subject"),
                          "specversion": "1.0", "ingestedtime": ingested})
    if not lines:
        raise errors.invalid_parameter("the batches hold no entries")
    return lines


def _result(line: dict, log_id: str, log: dict, tenancy: str) -> dict:
    try:
        data = json.loads(line["data"])
    except (TypeError, ValueError):
        data = None
    moment = datetime.fromisoformat(line["time"])
    return {"datetime": int(moment.timestamp() * 1000), "logContent": {
        "data": data if isinstance(data, dict) else {"message": line["data"]}, "id": line["id"],
        "oracle": {"compartmentid": log["compartmentId"], "ingestedtime": line["ingestedtime"],
                   "loggroupid": log["logGroupId"], "logid": log_id, "tenantid": tenancy},
        "source": line["source"], "specversion": line["specversion"], "subject": line["subject"],
        "time": line["time"], "type": line["type"]}}


def routes(state: Path) -> list[Route]:
    folder = logging_dir(state)
    logs = WatchedJson(folder / "logs.json", {})

    async def put_logs(request: Request) -> Response:
        log_id = request.path_params["log_id"]
        if log_id not in logs.get():
            raise errors.not_found()
        ingested = datetime.now(UTC).isoformat(timespec="milliseconds")
        _append(folder, log_id, _entries(json_object(request), ingested))
        return Response(status_code=200)

    async def search(request: Request) -> Response:
        details = json_object(request)
        for required in ("searchQuery", "timeStart", "timeEnd"):
            if not details.get(required):
                raise errors.missing_parameter(required)
        try:
            query = logquery.parse(details["searchQuery"])
        except logquery.QueryError as exc:
            raise errors.invalid_parameter(f"Unsupported query: {exc}. The stand-in supports: "
                                           f"{logquery.SUPPORTED}") from None
        start, end = _instant(details["timeStart"], "timeStart"), _instant(details["timeEnd"], "timeEnd")
        registry = logs.get()
        chosen = {log_id: log for log_id, log in registry.items()
                  if any(_in_stream(stream, log_id, log) for stream in query.streams)}
        if not chosen:
            raise errors.not_found()
        results = []
        tenancy = request.state.principal.tenancy
        for log_id, log in chosen.items():
            path = folder / f"{log_id}.jsonl"
            for raw in path.read_text().splitlines() if path.exists() else []:
                line = json.loads(raw)
                if start <= datetime.fromisoformat(line["time"]) <= end:
                    result = _result(line, log_id, log, tenancy)
                    if all(c.holds(result["logContent"]) for c in query.conditions):
                        results.append(result)
        if query.descending:  # entries of the same millisecond keep the order they were written in, either way
            results.reverse()
        results.sort(key=lambda r: r["datetime"], reverse=query.descending)
        page, next_page = _paged(results, request)
        fields = _field_info(page) if details.get("isReturnFieldInfo") else []
        body = {"results": [{"data": r} for r in page], "fields": fields,
                "summary": {"resultCount": len(page), "fieldCount": len(fields)}}
        return json_response(body, headers={"opc-next-page": next_page} if next_page else None)

    return [
        oci_route("/20200831/logs/{log_id}/actions/push", put_logs, ["POST"]),
        oci_route("/20190909/search", search, ["POST"]),
    ]


def _in_stream(stream: tuple[str, ...], log_id: str, log: dict) -> bool:
    return list(stream) == [log["compartmentId"], log["logGroupId"], log_id][:len(stream)]


def _paged(results: list, request: Request) -> tuple[list, str | None]:
    raw_limit, raw_page = request.query_params.get("limit", "100"), request.query_params.get("page", "0")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000 or not raw_page.isdigit():
        raise errors.invalid_parameter("limit must be between 1 and 1000, and page a token from opc-next-page")
    start, limit = int(raw_page), int(raw_limit)
    return results[start:start + limit], (str(start + limit) if start + limit < len(results) else None)


def _field_info(results: list[dict]) -> list[dict]:
    names: dict[str, str] = {}
    for result in results:
        for key, value in result["logContent"].get("data", {}).items():
            names.setdefault(f"data.{key}", "NUMBER" if isinstance(value, int | float) else "STRING")
    return [{"fieldName": name, "fieldType": kind} for name, kind in sorted(names.items())]
