"""AWS Signature Version 4 for the S3 compatibility API, checked against the registered customer secret keys.

The expected signature is recomputed with botocore's own ``S3SigV4Auth`` (canonical request, string to sign, signing
key) over exactly the headers the client listed in ``SignedHeaders``, so what boto3 signs verifies byte for byte.
Before that come the refusals OCI's S3 compatibility API gives the checksum features of newer AWS SDKs, which it
does not support (boto3 1.36 and later send them unless ``request_checksum_calculation="when_required"``):

- a streaming payload (``x-amz-content-sha256: STREAMING-...``, what boto3 sends over HTTPS): 400 ``InvalidArgument``
  "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value" (OCI's answer, as reported by its users);
- ``Content-Encoding: aws-chunked``: 501 ``NotImplemented`` "AWS chunked encoding not supported" (likewise);
- an ``x-amz-checksum-*`` header or ``x-amz-trailer`` for an algorithm OCI does not offer (CRC32, CRC64NVME, SHA1;
  what boto3 sends over plain HTTP, as here): 400 ``InvalidArgument``. OCI accepts MD5, SHA256 and CRC32C
  checksums; its exact words for this refusal are not known, so this message is the stand-in's.

Pre-signed URLs (SigV4 in the query string: ``X-Amz-Credential``, ``X-Amz-Date``, ``X-Amz-Expires``,
``X-Amz-SignedHeaders``, ``X-Amz-Signature``, payload ``UNSIGNED-PAYLOAD``) are checked with botocore's
``S3SigV4QueryAuth`` the same way, and refused once expired. MLflow's server hands its clients such URLs for
model artifacts, so MLflow with its artifacts on OCI's S3 compatibility API needs them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .errors import S3Error
from .keys import KeyRegistry

SKEW = timedelta(minutes=15)
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
SUPPORTED_CHECKSUMS = frozenset({"x-amz-checksum-sha256", "x-amz-checksum-crc32c"})
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request")
_SIGNED = re.compile(r"SignedHeaders=([^,\s]+)")
_SIGNATURE = re.compile(r"Signature=([0-9a-f]{64})")


def refuse_unsupported_checksums(headers: Mapping[str, str]) -> None:
    """Raise OCI's refusal when the request uses an AWS checksum feature OCI does not support."""
    payload = headers.get("x-amz-content-sha256", "")
    if payload.startswith("STREAMING-") or (payload and payload != UNSIGNED_PAYLOAD
                                            and not re.fullmatch(r"[0-9a-f]{64}", payload)):
        raise S3Error(400, "InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value")
    if "aws-chunked" in headers.get("content-encoding", "").lower():
        raise S3Error(501, "NotImplemented", "AWS chunked encoding not supported")
    unsupported = sorted(name for name in headers
                         if name.startswith("x-amz-checksum-") and name not in SUPPORTED_CHECKSUMS
                         and name != "x-amz-checksum-type")
    if "x-amz-trailer" in headers:
        unsupported.append("x-amz-trailer")
    if unsupported:
        raise S3Error(400, "InvalidArgument", f"Unsupported checksum header(s): {', '.join(unsupported)}. Object "
                                              "Storage accepts Content-MD5, x-amz-checksum-sha256 and "
                                              "x-amz-checksum-crc32c.")


def verify(method: str, host: str, target: str, headers: Mapping[str, str], body: bytes, keys: KeyRegistry,
           now: datetime | None = None) -> str:
    """The access key id that signed the request; raises S3's 403 (or 400) as OCI's S3 compatibility API does."""
    authorization = headers.get("authorization", "")
    if not authorization and "X-Amz-Signature=" in urlsplit(target).query:
        return _verify_presigned(method, host, target, headers, keys, now or datetime.now(UTC))
    if not authorization:
        raise S3Error(403, "AccessDenied", "Access Denied")
    credential, signed, signature = (_CREDENTIAL.search(authorization), _SIGNED.search(authorization),
                                     _SIGNATURE.search(authorization))
    if not authorization.startswith("AWS4-HMAC-SHA256 ") or not (credential and signed and signature):
        raise S3Error(400, "AuthorizationHeaderMalformed", "The authorization header is malformed.")
    access_key_id, day, region, service = credential.groups()
    secret = keys.s3_secret(access_key_id)
    if secret is None:
        raise S3Error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
    stamp = headers.get("x-amz-date", "")
    try:
        sent = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise S3Error(403, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header") from None
    if abs((now or datetime.now(UTC)) - sent) > SKEW:
        raise S3Error(403, "RequestTimeTooSkewed",
                      "The difference between the request time and the current time is too large.")
    names = signed.group(1).split(";")
    if service != "s3" or stamp[:8] != day or "host" not in names:
        raise S3Error(403, "SignatureDoesNotMatch", _MISMATCH)

    request = AWSRequest(method=method, url=f"http://{host}{target}", data=body,
                         headers={name: headers[name] for name in names if name in headers and name != "host"})
    request.headers["host"] = host
    request.context["timestamp"] = stamp
    signer = S3SigV4Auth(Credentials(access_key_id, secret), service, region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, signature.group(1)):
        raise S3Error(403, "SignatureDoesNotMatch", _MISMATCH)
    payload = headers.get("x-amz-content-sha256", UNSIGNED_PAYLOAD)
    if payload != UNSIGNED_PAYLOAD and payload != hashlib.sha256(body).hexdigest():
        raise S3Error(400, "XAmzContentSHA256Mismatch",
                      "The provided 'x-amz-content-sha256' header does not match what was computed.")
    return access_key_id


def _verify_presigned(method: str, host: str, target: str, headers: Mapping[str, str], keys: KeyRegistry,
                      now: datetime) -> str:
    """A pre-signed URL: the same signature over the query string minus ``X-Amz-Signature``, within its expiry."""
    path, _, query = target.partition("?")
    pairs = [pair for pair in query.split("&") if not pair.startswith("X-Amz-Signature=")]
    params = dict(parse_qsl(query))
    credential = _CREDENTIAL.search("Credential=" + params.get("X-Amz-Credential", ""))
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" or not credential:
        raise S3Error(400, "AuthorizationQueryParametersError", "Query-string authentication version 4 requires "
                                                                 "the X-Amz-Algorithm and X-Amz-Credential parameters.")
    access_key_id, day, region, service = credential.groups()
    secret = keys.s3_secret(access_key_id)
    if secret is None:
        raise S3Error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
    stamp = params.get("X-Amz-Date", "")
    try:
        sent = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        expires = int(params.get("X-Amz-Expires", ""))
    except ValueError:
        raise S3Error(400, "AuthorizationQueryParametersError", "X-Amz-Date and X-Amz-Expires must be given.") from None
    if not 0 < expires <= 604800:
        raise S3Error(400, "AuthorizationQueryParametersError", "X-Amz-Expires must be between 1 and 604800 seconds.")
    if now > sent + timedelta(seconds=expires) or sent - now > SKEW:
        raise S3Error(403, "AccessDenied", "Request has expired")
    names = params.get("X-Amz-SignedHeaders", "").split(";")
    if service != "s3" or stamp[:8] != day or "host" not in names:
        raise S3Error(403, "SignatureDoesNotMatch", _MISMATCH)
    request = AWSRequest(method=method, url=f"http://{host}{path}?{'&'.join(pairs)}",
                         headers={name: headers[name] for name in names if name in headers and name != "host"})
    request.headers["host"] = host
    request.context["timestamp"] = stamp
    signer = S3SigV4QueryAuth(Credentials(access_key_id, secret), service, region, expires=expires)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, params.get("X-Amz-Signature", "")):
        raise S3Error(403, "SignatureDoesNotMatch", _MISMATCH)
    return access_key_id


_MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your key and "
             "signing method.")
