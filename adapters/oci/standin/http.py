"""What every route of the stand-in shares: the request id on every answer, signatures checked before a handler
runs, and refusals rendered in the service's own format.

A native route (:func:`oci_route`) reads the body, verifies the OCI signature (401 ``NotAuthenticated``), then runs
its handler with ``request.state.principal`` and the body in ``request.state.body``; a handler raises
:class:`~.errors.OciError`, or a store error that ``translate`` words. An S3 route (:func:`s3_route`) does the same
with SigV4 and :class:`~.errors.S3Error`.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import errors, signatures, sigv4
from .objectstore import StoreError

__all__ = ["Route", "json_response", "oci_route", "request_body", "s3_route"]

Handler = Callable[[Request], Awaitable[Response]]
log = logging.getLogger("lastmile.oci_standin")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data), status_code=status, headers=headers, media_type="application/json")


def request_body(request: Request) -> bytes:
    """The body the route read before verifying the signature."""
    return request.state.body


def json_object(request: Request, empty: dict | None = None) -> dict:
    """The request's body as a JSON object, or OCI's 400 ``CannotParseRequest``; an empty body is ``empty`` when
    given (an optional body), else refused."""
    raw = request_body(request)
    if not raw and empty is not None:
        return dict(empty)
    try:
        details = json.loads(raw or b"null")
    except ValueError as exc:
        raise errors.cannot_parse(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(details, dict):
        raise errors.cannot_parse("The request body must be a JSON object")
    return details


def _target(request: Request) -> str:
    """The request target exactly as sent (path still percent-encoded, query as is): what the client signed."""
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    query = request.scope.get("query_string", b"")
    return (raw + (b"?" + query if query else b"")).decode("latin-1")


def _headers(request: Request) -> dict[str, str]:
    """Header names lowercased; repeated headers joined as HTTP allows."""
    joined: dict[str, str] = {}
    for name, value in request.headers.items():
        joined[name] = f"{joined[name]}, {value}" if name in joined else value
    return joined


def oci_route(path: str, handler: Handler, methods: list[str],
              translate: Callable[[StoreError, Request], errors.OciError] | None = None,
              body_signed: bool | Callable[[Request], bool] = True) -> Route:
    """A route of a native OCI API: signature first, then ``handler``; store errors worded by ``translate``."""

    async def endpoint(request: Request) -> Response:
        request.state.body = await request.body()
        settings = request.app.state.settings
        headers = _headers(request)
        if settings.allow_unsigned and "authorization" not in headers:
            request.state.principal = signatures.Principal(settings.tenancy, settings.user, "unsigned")
        else:
            signed = body_signed(request) if callable(body_signed) else body_signed
            request.state.principal = signatures.verify(
                signatures.SignedRequest(request.method, _target(request), headers, request.state.body),
                request.app.state.keys, signed)
        try:
            return await handler(request)
        except StoreError as exc:
            if translate is None:
                raise
            raise translate(exc, request) from None

    return Route(path, endpoint, methods=methods)


def s3_route(path: str, handler: Handler, methods: list[str],
             translate: Callable[[StoreError, Request], errors.S3Error]) -> Route:
    """A route of the S3 compatibility API: OCI's checksum refusals, SigV4, then ``handler``."""

    async def endpoint(request: Request) -> Response:
        request.state.body = await request.body()
        headers = _headers(request)
        sigv4.refuse_unsupported_checksums(headers)
        request.state.access_key_id = sigv4.verify(request.method, headers.get("host", ""), _target(request),
                                                   headers, request.state.body, request.app.state.keys)
        try:
            return await handler(request)
        except StoreError as exc:
            raise translate(exc, request) from None

    return Route(path, endpoint, methods=methods)


async def render_oci_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.OciError)
    if request.method == "HEAD":
        return Response(status_code=exc.status, headers=exc.headers)
    return json_response(exc.body(), exc.status, exc.headers)


async def render_s3_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.S3Error)
    if request.method == "HEAD":
        return Response(status_code=exc.status)
    return Response(exc.xml(request.state.request_id), status_code=exc.status, media_type="application/xml")


async def render_unexpected(request: Request, exc: Exception) -> Response:
    log.error("unexpected error", exc_info=exc, extra={"fields": {"method": request.method,
                                                                  "path": request.url.path}})
    return json_response({"code": "InternalServerError", "message": "Internal server error"}, 500)


class RequestIds:
    """ASGI middleware: an ``opc-request-id`` (and ``x-amz-request-id``) on every answer, including the caller's own
    ``opc-request-id`` when it sent one, the caller's ``opc-client-request-id`` echoed, and one JSON log line per
    request."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex.upper()
        given = next((v for k, v in scope["headers"] if k == b"opc-request-id"), None)
        if given:  # "If provided, the returned request ID will include this value."
            request_id = f"{given.decode('latin-1')}/{request_id}"
        scope.setdefault("state", {})["request_id"] = request_id
        client_id = next((v for k, v in scope["headers"] if k == b"opc-client-request-id"), None)
        began, status = time.perf_counter(), 0

        async def send_with_ids(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = [(b"opc-request-id", request_id.encode()), (b"x-amz-request-id", request_id.encode())]
                if client_id is not None:
                    extra.append((b"opc-client-request-id", client_id))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_ids)
        finally:
            log.info("request", extra={"fields": {
                "method": scope["method"], "path": scope["path"], "status": status, "request_id": request_id,
                "ms": round((time.perf_counter() - began) * 1000, 2)}})
