"""Pure ASGI middleware: what every request needs (a request id, a body size limit, metrics, an access log), and a
quiet startup failure.

The access log line of a request answered below 400 is at DEBUG: at thousands of predictions a second one JSON line
each was the largest cost after the model's (about a sixth of the request's CPU), and the metrics already count every
request by route, status and latency. A refused or failed request keeps its INFO line with its request id;
``LASTMILE_SERVING_LOG_LEVEL=DEBUG`` brings back every line.

Pure ASGI (not Starlette's ``BaseHTTPMiddleware``) so that it adds microseconds, not a task per request.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping

from serving.logs import LOGGER_NAME, request_id
from serving.metrics import ServingMetrics

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
INTERNAL_ERROR = json.dumps({"error_code": "INTERNAL_ERROR", "message": "internal error; see the server log"}).encode()
Answerer = Callable[[bytes, str | None], Awaitable[tuple[int, bytes]]]
"""``(body, Content-Type) -> (status, JSON body)``: a route the middleware answers itself."""


class RequestMiddleware:
    """Wraps the app: X-Request-ID in and out, 413 above ``max_body_bytes``, one metric and log line per request.

    A POST to a path of ``answers`` (the scoring routes) is answered here with the body already read, by
    ``answers[path](body, content_type) -> (status, JSON bytes)``; everything else goes on to the app.
    """

    def __init__(self, app, metrics: ServingMetrics, max_body_bytes: int, routes: frozenset[str],
                 answers: Mapping[str, Answerer] | None = None):
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.routes = routes
        self.answers = dict(answers or {})
        self.logger = logging.getLogger(LOGGER_NAME)
        self._new_request_id = _request_ids().__next__

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given_id, content_type, content_length = _read_headers(scope["headers"])
        rid = given_id or self._new_request_id()
        token = request_id.set(rid)
        status = 500
        rid_header = (b"x-request-id", rid.encode("ascii"))

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        try:
            if scope["method"] in _BODY_METHODS:
                body, unread = await self._read_body(content_length, receive)
                if body is None:
                    if unread:
                        await _drain(receive)
                    await _too_large(send_with_id, self.max_body_bytes)
                    return
                answer = self.answers.get(scope["path"]) if scope["method"] == "POST" else None
                if answer is not None:
                    status = await _answer(answer, body, content_type, send, rid_header, self.logger)
                    return
                receive = _replay(body, receive)
            await self.app(scope, receive, send_with_id)
        finally:
            path = scope["path"]
            route = path if path in self.routes else "unmatched"
            elapsed = time.perf_counter() - started
            self.metrics.observe_request(route, scope["method"], status, elapsed)
            level = logging.DEBUG if status < 400 else logging.INFO
            if self.logger.isEnabledFor(level):
                # makeRecord + handle is logger.log without its stack walk for the caller's file and line.
                self.logger.handle(self.logger.makeRecord(
                    LOGGER_NAME, level, __file__, 0, "request", (), None, extra={"fields": {
                        "method": scope["method"], "path": path, "status": status,
                        "duration_ms": round(elapsed * 1000, 3)}}))
            request_id.reset(token)

    async def _read_body(self, content_length: int | None, receive) -> tuple[bytes | None, bool]:
        """The whole body, or None when it is larger than the limit (by Content-Length or by what arrives); and
        whether some of it is still unread."""
        if content_length is not None and content_length > self.max_body_bytes:
            return None, content_length > 0
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None, bool(message.get("more_body", False))
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), False


DRAIN_BYTES = 16 << 20
DRAIN_S = 2.0


async def _drain(receive) -> None:
    """Read and drop what is left of a refused body, up to ``DRAIN_BYTES`` or ``DRAIN_S``, before answering 413.

    A server that answers and closes while the client is still sending makes the kernel reset the connection, and
    the client (or the Service in front of the replica) then loses the answer with it: the 413 reached callers only
    some of the time. Nothing read here is kept; past either bound the answer goes out and the connection closes."""
    deadline, dropped = time.monotonic() + DRAIN_S, 0
    while dropped < DRAIN_BYTES:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        try:
            message = await asyncio.wait_for(receive(), remaining)
        except TimeoutError:
            return
        if message["type"] != "http.request":
            return
        dropped += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _request_ids() -> Iterator[str]:
    """32 hex digits: 16 random per process, then a counter; unique without a system call per request (uuid4)."""
    prefix = os.urandom(8).hex()
    return (f"{prefix}{n:016x}" for n in itertools.count())


def _read_headers(headers) -> tuple[str | None, str | None, int | None]:
    """The client's request id when it is safe to echo, Content-Type and Content-Length."""
    rid: str | None = None
    content_type: str | None = None
    content_length: int | None = None
    for name, value in headers:
        if name == b"content-type" and content_type is None:
            content_type = value.decode("latin-1")
        elif name == b"content-length":
            try:
                content_length = int(value)
            except ValueError:
                pass
        elif name == b"x-request-id" and rid is None:
            candidate = value.decode("latin-1")
            rid = candidate if _VALID_REQUEST_ID.fullmatch(candidate) else ""
    return rid or None, content_type, content_length


async def _answer(answer: Answerer, body: bytes, content_type: str | None, send, rid_header, logger) -> int:
    """Send what ``answer`` makes of the body; an exception it raises is logged and answered 500."""
    try:
        status, payload = await answer(body, content_type)
    except Exception as exc:
        logger.error("unhandled error", exc_info=exc)
        status, payload = 500, INTERNAL_ERROR
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            rid_header]})
    await send({"type": "http.response.body", "body": payload})
    return status


def _replay(body: bytes, receive):
    delivered = False

    async def replay():
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replay


async def _too_large(send, limit: int) -> None:
    payload = json.dumps({"error_code": "PAYLOAD_TOO_LARGE",
                          "message": f"the request body is larger than the limit of {limit} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload})


class QuietStartupFailure:
    """Drops the traceback Starlette hands uvicorn when the lifespan fails to start, once the failure is logged.

    uvicorn logs that text as it is: a traceback of framework frames after the one JSON line that already names
    the model and the reason. A failure nobody has logged (``logged()`` is false) keeps its traceback.
    """

    def __init__(self, app, logged: Callable[[], bool]):
        self.app = app
        self.logged = logged

    async def __call__(self, scope, receive, send):
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_quietly(message):
            if message["type"] == "lifespan.startup.failed" and self.logged():
                message = {**message, "message": ""}
            await send(message)

        await self.app(scope, receive, send_quietly)
