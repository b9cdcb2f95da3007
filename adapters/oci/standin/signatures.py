"""OCI's request signatures (draft-cavage HTTP signatures, version 1), verified as OCI verifies them.

``Authorization: Signature version="1",keyId="<tenancy>/<user>/<fingerprint>",algorithm="rsa-sha256",
headers="date (request-target) host[ content-length content-type x-content-sha256]",signature="<base64>"``

The signing string is each listed header as ``name: value`` joined by newlines, in the listed order, with
``(request-target)`` as ``<method lowercased> <path and query as sent>``. The signature is RSA PKCS#1 v1.5 over
its SHA-256 with the registered public key. Like OCI:

- ``date`` (or ``x-date``), ``(request-target)`` and ``host`` must always be signed;
- a PUT, POST or PATCH must also sign ``content-length``, ``content-type`` and ``x-content-sha256``, and the body must
  hash to ``x-content-sha256`` — except Object Storage's PutObject and UploadPart, whose bodies the SDK's ``Signer``
  does not sign (``enforce_content_headers=False``);
- the date must be within five minutes of the server's clock.

Anything else is 401 ``NotAuthenticated``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from . import errors
from .keys import KeyRegistry

CLOCK_SKEW = timedelta(minutes=5)
BODY_HEADERS = ("content-length", "content-type", "x-content-sha256")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class SignedRequest:
    """What a signature covers: the method, the request target as sent, the headers (names lowercased), the body."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Principal:
    tenancy: str
    user: str
    fingerprint: str


def parse_authorization(value: str) -> dict[str, str]:
    """The parameters of a ``Signature ...`` authorization header; raises 401 when it is not one."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "signature" or not rest:
        raise errors.not_authenticated(errors.NOT_PROVIDED)
    params = dict(_PARAM.findall(rest))
    if not params.get("keyId") or not params.get("signature"):
        raise errors.not_authenticated(errors.NOT_PROVIDED)
    return params


def signing_string(request: SignedRequest, names: list[str]) -> bytes:
    lines = []
    for name in names:
        if name == "(request-target)":
            lines.append(f"(request-target): {request.method.lower()} {request.target}")
        elif name in request.headers:
            lines.append(f"{name}: {request.headers[name]}")
        else:
            raise errors.not_authenticated(f"The header '{name}' is listed as signed but is missing from the request.")
    return "\n".join(lines).encode()


def verify(request: SignedRequest, keys: KeyRegistry, body_signed: bool, now: datetime | None = None) -> Principal:
    """The principal whose key signed ``request``; raises 401 ``NotAuthenticated`` as OCI does.

    ``body_signed`` is False for the operations whose bodies OCI does not require to be signed."""
    authorization = request.headers.get("authorization")
    if not authorization:
        raise errors.not_authenticated(errors.NOT_PROVIDED)
    params = parse_authorization(authorization)
    if params.get("version", "1") != "1" or params.get("algorithm", "rsa-sha256").lower() != "rsa-sha256":
        raise errors.not_authenticated(errors.NOT_PROVIDED_OR_INCORRECT)
    names = params.get("headers", "date").lower().split()
    _check_signed_headers(request, names, body_signed)
    _check_date(request.headers.get("x-date") or request.headers.get("date", ""), now or datetime.now(UTC))

    tenancy, user, fp = _split_key_id(params["keyId"])
    key = keys.api_key(fp)
    if key is None or key.tenancy != tenancy or key.user != user:
        raise errors.not_authenticated(errors.NOT_PROVIDED_OR_INCORRECT)
    try:
        signature = base64.b64decode(params["signature"], validate=True)
        key.public_key.verify(signature, signing_string(request, names), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        raise errors.not_authenticated(errors.SIGNATURE_FAILED) from None
    if "x-content-sha256" in names:
        _check_body(request)
    return Principal(tenancy, user, fp)


def _check_signed_headers(request: SignedRequest, names: list[str], body_signed: bool) -> None:
    required = ["(request-target)", "host"]
    if body_signed and request.method.upper() in BODY_METHODS:
        required += BODY_HEADERS
    missing = [name for name in required if name not in names]
    if "date" not in names and "x-date" not in names:
        missing.insert(0, "date")
    if missing:
        raise errors.not_authenticated(f"The following required headers are not signed: {', '.join(missing)}")


def _check_date(value: str, now: datetime) -> None:
    try:
        sent = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        raise errors.not_authenticated(f"Date '{value}' could not be parsed as an RFC 1123 date") from None
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    if abs(now - sent) > CLOCK_SKEW:
        def show(moment: datetime) -> str:
            return format_datetime(moment.astimezone(UTC).replace(microsecond=0)).replace("-0000", "UTC")
        raise errors.not_authenticated(
            f"Date '{show(sent)}' is not within allowed clock skew. Current '{show(now)}', valid datetime range: "
            f"['{show(now - CLOCK_SKEW)}', '{show(now + CLOCK_SKEW)}']")


def _split_key_id(key_id: str) -> tuple[str, str, str]:
    parts = key_id.split("/")
    if len(parts) != 3 or not all(parts):
        raise errors.not_authenticated(errors.NOT_PROVIDED_OR_INCORRECT)
    return parts[0], parts[1], parts[2]


def _check_body(request: SignedRequest) -> None:
    digest = base64.b64encode(hashlib.sha256(request.body).digest()).decode()
    if request.headers.get("x-content-sha256") != digest:
        raise errors.not_authenticated("The x-content-sha256 header does not match the request body.")
    length = request.headers.get("content-length")
    if length is not None and length.strip() != str(len(request.body)):
        raise errors.not_authenticated("The content-length header does not match the request body.")
