"""Object Storage's native API (``/n/...``), with the paths, bodies and headers the SDK's ``ObjectStorageClient``
sends and reads: GetNamespace, CreateBucket, GetBucket, HeadBucket, ListBuckets, DeleteBucket, PutObject,
GetObject, HeadObject, ListObjects, DeleteObject, and the multipart operations the SDK's ``UploadManager`` uses
(CreateMultipartUpload, UploadPart, ListMultipartUploadParts, CommitMultipartUpload, AbortMultipartUpload)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from . import errors
from . import objectstore as store
from .http import Route, json_response, oci_route, request_body

USER_META = "opc-meta-"
PASSED_HEADERS = ("content-encoding", "content-language", "content-disposition", "cache-control")


def translate(exc: store.StoreError, request: Request) -> errors.OciError:
    """The store's refusal in Object Storage's words."""
    namespace, bucket = request.path_params.get("namespace", ""), request.path_params.get("bucket", "")
    if isinstance(exc, store.NoSuchBucket):
        return errors.bucket_not_found(namespace, bucket)
    if isinstance(exc, store.BucketExists):
        return errors.bucket_already_exists(namespace, str(exc))
    if isinstance(exc, store.BucketNotEmpty):
        return errors.bucket_not_empty(bucket)
    if isinstance(exc, store.InvalidBucketName):
        return errors.OciError(400, "InvalidBucketName", f"The bucket name '{exc}' is not valid")
    if isinstance(exc, store.NoSuchObject):
        return errors.object_not_found(bucket, request.path_params.get("object", ""))
    if isinstance(exc, store.IfMatchFailed):
        return errors.if_match_failed(str(exc))
    if isinstance(exc, store.IfNoneMatchFailed):
        return errors.if_none_match_failed()
    if isinstance(exc, store.NoSuchUpload):
        return errors.no_such_upload(str(exc))
    return errors.invalid_parameter(str(exc))


def routes(objects: store.ObjectStore) -> list[Route]:
    def namespace_of(request: Request) -> str:
        namespace = request.path_params["namespace"]
        if namespace != objects.namespace:
            raise errors.namespace_not_found()
        return namespace

    async def get_namespace(_request: Request) -> Response:
        return json_response(objects.namespace)

    async def buckets(request: Request) -> Response:
        namespace_of(request)
        if request.method == "POST":
            details = _details(request)
            if not details.get("name") or not details.get("compartmentId"):
                raise errors.missing_parameter("name" if not details.get("name") else "compartmentId")
            bucket = objects.create_bucket(details["name"], details["compartmentId"], request.state.principal.user,
                                           details.get("metadata"))
            return json_response(_bucket_json(objects, bucket, ()), headers={
                "etag": bucket.etag, "location": f"/n/{bucket.namespace}/b/{bucket.name}"})
        compartment = request.query_params.get("compartmentId")
        if not compartment:
            raise errors.missing_parameter("compartmentId")
        found = sorted((b for b in objects.buckets.values() if b.compartment_id == compartment), key=lambda b: b.name)
        page, next_page = _page(found, request, key=lambda b: b.name)
        summaries = [{k: v for k, v in _bucket_json(objects, b, ()).items() if k in _SUMMARY} for b in page]
        return json_response(summaries, headers={"opc-next-page": next_page} if next_page else None)

    async def bucket(request: Request) -> Response:
        namespace_of(request)
        name = request.path_params["bucket"]
        if request.method == "DELETE":
            objects.delete_bucket(name, request.headers.get("if-match"))
            return Response(status_code=204)
        found = objects.bucket(name)
        if request.method == "HEAD":
            return Response(status_code=200, headers={"etag": found.etag})
        fields = request.query_params.get("fields", "").split(",")
        return json_response(_bucket_json(objects, found, fields), headers={"etag": found.etag})

    async def list_objects(request: Request) -> Response:
        namespace_of(request)
        query = request.query_params
        delimiter = query.get("delimiter")
        if delimiter not in (None, "/"):
            raise errors.invalid_parameter("The only supported delimiter is '/'")
        listing = objects.listing(request.path_params["bucket"], query.get("prefix", ""), query.get("start", ""),
                               query.get("end"), delimiter, _limit(query.get("limit"), 1000), query.get("startAfter"))
        fields = {"name", *query.get("fields", "name").split(",")}
        body: dict = {"objects": [_summary(r, fields) for r in listing.objects]}
        if delimiter:
            body["prefixes"] = listing.prefixes
        if listing.next_start:
            body["nextStartWith"] = listing.next_start
        return json_response(body)

    async def an_object(request: Request) -> Response:
        namespace_of(request)
        bucket, name = request.path_params["bucket"], request.path_params["object"]
        headers = request.headers
        if request.method == "PUT":
            data = request_body(request)
            _check_md5(headers.get("content-md5"), data)
            record = objects.put(bucket, name, data, headers.get("content-type") or "application/octet-stream",
                                 _user_metadata(headers), {h: headers[h] for h in PASSED_HEADERS if h in headers},
                                 headers.get("if-match"), headers.get("if-none-match"))
            return Response(status_code=200, headers={"etag": record.etag, "opc-content-md5": record.md5,
                                                      "last-modified": store.http_date(record.time_modified)})
        if request.method == "DELETE":
            objects.delete(bucket, name, headers.get("if-match"))
            return Response(status_code=204, headers={"last-modified": store.http_date(store.now_iso())})
        record = objects.head(bucket, name)
        if headers.get("if-none-match") in (record.etag, "*"):
            return Response(status_code=304, headers={"etag": record.etag})
        if headers.get("if-match") not in (None, "*", record.etag):
            raise errors.if_match_failed(headers["if-match"])
        meta = _object_headers(record)
        if request.method == "HEAD":
            return Response(status_code=200, headers={**meta, "content-length": str(record.size)})
        return Response(objects.read(bucket, record), status_code=200, headers=meta, media_type=record.content_type)

    async def create_upload(request: Request) -> Response:
        namespace = namespace_of(request)
        details, bucket = _details(request), request.path_params["bucket"]
        if not details.get("object"):
            raise errors.missing_parameter("object")
        passed = {"content-encoding": details.get("contentEncoding"), "content-language": details.get("contentLanguage"),
                  "content-disposition": details.get("contentDisposition"), "cache-control": details.get("cacheControl")}
        metadata = {k.lower().removeprefix(USER_META): v for k, v in (details.get("metadata") or {}).items()}
        upload = objects.create_upload(bucket, details["object"], details.get("contentType") or "application/octet-stream",
                                       metadata, {k: v for k, v in passed.items() if v},
                                       request.headers.get("if-match"), request.headers.get("if-none-match"))
        return json_response({"namespace": namespace, "bucket": bucket, "object": upload.name,
                              "uploadId": upload.upload_id, "timeCreated": upload.time_created,
                              "storageTier": "Standard"},
                             headers={"location": f"/n/{namespace}/b/{bucket}/u/{upload.name}?uploadId={upload.upload_id}"})

    async def an_upload(request: Request) -> Response:
        namespace_of(request)
        bucket, name = request.path_params["bucket"], request.path_params["object"]
        upload_id = request.query_params.get("uploadId")
        if not upload_id:
            raise errors.missing_parameter("uploadId")
        if request.method == "PUT":
            number = request.query_params.get("uploadPartNum", "")
            if not number.isdigit():
                raise errors.missing_parameter("uploadPartNum")
            data = request_body(request)
            _check_md5(request.headers.get("content-md5"), data)
            part = objects.upload_part(bucket, name, upload_id, int(number), data)
            return Response(status_code=200, headers={"etag": part.etag, "opc-content-md5": part.md5})
        if request.method == "DELETE":
            objects.abort_upload(bucket, name, upload_id)
            return Response(status_code=204)
        if request.method == "GET":
            parts = sorted(objects.upload(bucket, name, upload_id).parts.values(), key=lambda p: p.number)
            page, next_page = _page(parts, request, key=lambda p: str(p.number))
            return json_response([{"partNumber": p.number, "etag": p.etag, "md5": p.md5, "size": p.size}
                                  for p in page], headers={"opc-next-page": next_page} if next_page else None)
        details = _details(request)
        chosen = [(int(p.get("partNum", 0)), str(p.get("etag", ""))) for p in details.get("partsToCommit") or []]
        record = objects.commit_upload(bucket, name, upload_id, chosen, request.headers.get("if-match"),
                                       request.headers.get("if-none-match"))
        return Response(status_code=200, headers={"etag": record.etag, "opc-multipart-md5": record.md5,
                                                  "last-modified": store.http_date(record.time_modified)})

    def route(path: str, handler: Callable, methods: list[str],
              body_signed: bool | Callable[[Request], bool] = True) -> Route:
        return oci_route(path, handler, methods, translate=translate, body_signed=body_signed)

    return [
        route("/n", get_namespace, ["GET"]),
        route("/n/", get_namespace, ["GET"]),
        route("/n/{namespace}/b", buckets, ["GET", "POST"]),
        route("/n/{namespace}/b/", buckets, ["GET", "POST"]),
        route("/n/{namespace}/b/{bucket}", bucket, ["GET", "HEAD", "DELETE"]),
        route("/n/{namespace}/b/{bucket}/o", list_objects, ["GET"]),
        # PutObject's and UploadPart's bodies are not signed (the SDK's Signer skips them); CommitMultipartUpload's is.
        route("/n/{namespace}/b/{bucket}/o/{object:path}", an_object, ["GET", "HEAD", "PUT", "DELETE"],
              body_signed=False),
        route("/n/{namespace}/b/{bucket}/u", create_upload, ["POST"]),
        route("/n/{namespace}/b/{bucket}/u/{object:path}", an_upload, ["GET", "PUT", "POST", "DELETE"],
              body_signed=lambda request: request.method != "PUT"),
    ]


_SUMMARY = {"namespace", "name", "compartmentId", "createdBy", "timeCreated", "etag", "freeformTags", "definedTags"}


def _bucket_json(objects: store.ObjectStore, bucket: store.BucketRecord, fields) -> dict:
    records = objects.objects.get(bucket.name, {}).values()
    return {"namespace": bucket.namespace, "name": bucket.name, "compartmentId": bucket.compartment_id,
            "metadata": bucket.metadata, "createdBy": bucket.created_by, "timeCreated": bucket.time_created,
            "etag": bucket.etag, "publicAccessType": "NoPublicAccess", "storageTier": "Standard",
            "objectEventsEnabled": False, "freeformTags": {}, "definedTags": {}, "kmsKeyId": None,
            "approximateCount": len(records) if "approximateCount" in fields else None,
            "approximateSize": sum(r.size for r in records) if "approximateSize" in fields else None,
            "replicationEnabled": False, "isReadOnly": False, "id": bucket.id, "versioning": "Disabled",
            "autoTiering": "Disabled"}


def _summary(record: store.ObjectRecord, fields: set[str]) -> dict:
    full = {"name": record.name, "size": record.size, "etag": record.etag, "timeCreated": record.time_created,
            "md5": record.md5, "timeModified": record.time_modified, "storageTier": "Standard"}
    return {k: v for k, v in full.items() if k in fields}


def _object_headers(record: store.ObjectRecord) -> dict[str, str]:
    headers = {"etag": record.etag, "last-modified": store.http_date(record.time_modified),
               "content-type": record.content_type, "storage-tier": "Standard", "accept-ranges": "bytes",
               ("opc-multipart-md5" if record.multipart else "opc-content-md5"): record.md5,
               **record.headers}
    headers.update({USER_META + k: v for k, v in record.metadata.items()})
    return headers


def _user_metadata(headers) -> dict[str, str]:
    return {k[len(USER_META):]: v for k, v in headers.items() if k.startswith(USER_META)}


def _check_md5(expected: str | None, data: bytes) -> None:
    if expected is None:
        return
    computed = store.b64_md5(data)
    try:
        matches = base64.b64decode(expected, validate=True) == base64.b64decode(computed)
    except binascii.Error:
        matches = False
    if not matches:
        raise errors.unmatched_content_md5(expected, computed)


def _details(request: Request) -> dict:
    try:
        details = json.loads(request_body(request) or b"{}")
    except ValueError as exc:
        raise errors.cannot_parse(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(details, dict):
        raise errors.cannot_parse("The request body must be a JSON object")
    return details


def _limit(raw: str | None, default: int) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise errors.invalid_parameter("limit must be between 1 and 1000")
    return int(raw)


def _page(items: list, request: Request, key: Callable) -> tuple[list, str | None]:
    """OCI's list paging: ``limit`` items from the one ``page`` names (an opaque token: here the first key)."""
    limit, page = _limit(request.query_params.get("limit"), 1000), request.query_params.get("page")
    start = next((i for i, item in enumerate(items) if key(item) == page), len(items)) if page else 0
    chosen = items[start:start + limit]
    return chosen, (key(items[start + limit]) if start + limit < len(items) else None)
