"""OCI's Amazon S3 compatibility API on the same buckets, path-style under ``/s3`` (OCI serves it at
``https://<namespace>.compat.objectstorage.<region>.oraclecloud.com``; clients here use
``endpoint_url="http://127.0.0.1:PORT/s3"`` with ``addressing_style="path"``).

ListBuckets, HeadBucket, CreateBucket (in the stand-in's S3 compartment), PutObject (``x-amz-meta-*`` kept as the
object's user metadata, the same the native API shows as ``opc-meta-*``), GetObject, HeadObject, ListObjectsV2 and
DeleteObject, signed with SigV4 by a registered customer secret key (:mod:`.sigv4`). Errors are S3's XML.
Multipart uploads through this API are not emulated (501 ``NotImplemented``).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from urllib.parse import quote
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import Response

from . import errors
from . import objectstore as store
from .errors import S3Error
from .http import Route, request_body, s3_route

META = "x-amz-meta-"
PASSED_HEADERS = ("content-encoding", "content-language", "content-disposition", "cache-control")
XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"


def translate(exc: store.StoreError, request: Request) -> S3Error:
    bucket, key = request.path_params.get("bucket", ""), request.path_params.get("key", "")
    if isinstance(exc, store.NoSuchBucket):
        return errors.no_such_bucket(bucket)
    if isinstance(exc, store.NoSuchObject):
        return errors.no_such_key(bucket, key)
    if isinstance(exc, store.BucketExists):
        return S3Error(409, "BucketAlreadyExists", "The requested bucket name is not available.", f"/{bucket}")
    if isinstance(exc, store.InvalidBucketName):
        return S3Error(400, "InvalidBucketName", "The specified bucket is not valid.", f"/{bucket}")
    if isinstance(exc, store.IfMatchFailed | store.IfNoneMatchFailed):
        return S3Error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold",
                       f"/{bucket}/{key}")
    return S3Error(400, "InvalidRequest", str(exc), request.url.path)


def _xml(body: str, status: int = 200) -> Response:
    return Response('<?xml version="1.0" encoding="UTF-8"?>\n' + body, status_code=status,
                    media_type="application/xml")


def _iso(stamp: str) -> str:
    return stamp if stamp.endswith("Z") else stamp.replace("+00:00", "Z")


def routes(objects: store.ObjectStore, compartment_id: str) -> list[Route]:
    async def list_buckets(request: Request) -> Response:
        entries = "".join(f"<Bucket><Name>{escape(b.name)}</Name><CreationDate>{_iso(b.time_created)}</CreationDate>"
                          "</Bucket>" for b in sorted(objects.buckets.values(), key=lambda b: b.name))
        owner = escape(request.state.access_key_id)
        return _xml(f'<ListAllMyBucketsResult xmlns="{XMLNS}"><Owner><ID>{owner}</ID><DisplayName>{owner}'
                    f"</DisplayName></Owner><Buckets>{entries}</Buckets></ListAllMyBucketsResult>")

    async def bucket(request: Request) -> Response:
        name = request.path_params["bucket"]
        if request.method == "PUT":
            objects.create_bucket(name, compartment_id, request.state.access_key_id)
            return Response(status_code=200, headers={"location": f"/{name}"})
        objects.bucket(name)
        if request.method == "HEAD":
            return Response(status_code=200)
        return _list_v2(objects, name, request)

    async def an_object(request: Request) -> Response:
        bucket, key, headers = request.path_params["bucket"], request.path_params["key"], request.headers
        if any(q in request.query_params for q in ("uploads", "uploadId", "partNumber")):
            raise S3Error(501, "NotImplemented", "Multipart uploads through the S3 compatibility API are not "
                                                 "emulated by the stand-in; use the native API.", f"/{bucket}/{key}")
        if request.method == "PUT":
            if "x-amz-copy-source" in headers:
                raise S3Error(501, "NotImplemented", "CopyObject is not emulated by the stand-in.", f"/{bucket}/{key}")
            data = request_body(request)
            _check_digests(headers, data, f"/{bucket}/{key}")
            record = objects.put(bucket, key, data, headers.get("content-type") or "binary/octet-stream",
                                 {k[len(META):]: v for k, v in headers.items() if k.startswith(META)},
                                 {h: headers[h] for h in PASSED_HEADERS if h in headers},
                                 headers.get("if-match"), headers.get("if-none-match"))
            return Response(status_code=200, headers={"etag": f'"{record.etag}"'})
        if request.method == "DELETE":
            try:
                objects.delete(bucket, key)
            except store.NoSuchObject:
                pass  # S3 deletes are idempotent
            return Response(status_code=204)
        record = objects.head(bucket, key)
        meta = {"etag": f'"{record.etag}"', "last-modified": store.http_date(record.time_modified),
                "content-type": record.content_type, "accept-ranges": "bytes", **record.headers,
                **{META + k: v for k, v in record.metadata.items()}}
        if request.method == "HEAD":
            return Response(status_code=200, headers={**meta, "content-length": str(record.size)})
        return Response(objects.read(bucket, record), status_code=200, headers=meta, media_type=record.content_type)

    def route(path: str, handler: Callable, methods: list[str]) -> Route:
        return s3_route(path, handler, methods, translate)

    return [
        route("/s3", list_buckets, ["GET"]),
        route("/s3/", list_buckets, ["GET"]),
        route("/s3/{bucket}", bucket, ["GET", "HEAD", "PUT"]),
        route("/s3/{bucket}/", bucket, ["GET", "HEAD", "PUT"]),
        route("/s3/{bucket}/{key:path}", an_object, ["GET", "HEAD", "PUT", "DELETE", "POST"]),
    ]


def _list_v2(objects: store.ObjectStore, bucket: str, request: Request) -> Response:
    query = request.query_params
    raw_max = query.get("max-keys", "1000")
    if not raw_max.isdigit():
        raise S3Error(400, "InvalidArgument", "max-keys must be a non-negative integer", f"/{bucket}")
    limit = min(int(raw_max), 1000)
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter") or None
    token = query.get("continuation-token")
    start = base64.urlsafe_b64decode(token.encode()).decode() if token else ""
    listing = objects.listing(bucket, prefix, start, None, delimiter, max(limit, 1), query.get("start-after"))
    if limit == 0:
        listing = store.Listing([], [], None)
    encode = (lambda s: quote(s, safe="/")) if query.get("encoding-type") == "url" else (lambda s: s)
    parts = [f'<ListBucketResult xmlns="{XMLNS}"><Name>{escape(bucket)}</Name>',
             f"<Prefix>{escape(encode(prefix))}</Prefix>",
             f"<KeyCount>{len(listing.objects) + len(listing.prefixes)}</KeyCount><MaxKeys>{limit}</MaxKeys>"]
    if delimiter:
        parts.append(f"<Delimiter>{escape(encode(delimiter))}</Delimiter>")
    if query.get("encoding-type") == "url":
        parts.append("<EncodingType>url</EncodingType>")
    parts.append(f"<IsTruncated>{'true' if listing.next_start else 'false'}</IsTruncated>")
    if token:
        parts.append(f"<ContinuationToken>{escape(token)}</ContinuationToken>")
    if listing.next_start:
        next_token = base64.urlsafe_b64encode(listing.next_start.encode()).decode()
        parts.append(f"<NextContinuationToken>{next_token}</NextContinuationToken>")
    for record in listing.objects:
        parts.append(f"<Contents><Key>{escape(encode(record.name))}</Key><LastModified>{_iso(record.time_modified)}"
                     f"</LastModified><ETag>&quot;{record.etag}&quot;</ETag><Size>{record.size}</Size>"
                     "<StorageClass>STANDARD</StorageClass></Contents>")
    for rolled in listing.prefixes:
        parts.append(f"<CommonPrefixes><Prefix>{escape(encode(rolled))}</Prefix></CommonPrefixes>")
    parts.append("</ListBucketResult>")
    return _xml("".join(parts))


def _check_digests(headers, data: bytes, resource: str) -> None:
    expected_md5 = headers.get("content-md5")
    if expected_md5 is not None and expected_md5 != store.b64_md5(data):
        raise S3Error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.", resource)
    expected_sha = headers.get("x-amz-checksum-sha256")
    if expected_sha is not None and expected_sha != base64.b64encode(hashlib.sha256(data).digest()).decode():
        raise S3Error(400, "BadDigest", "The SHA256 you specified did not match the calculated checksum.", resource)
