"""The Service in front of the replicas: one stable address that routes only to ready replicas.

A pure ASGI app that forwards each request to the next ready replica (round robin) over a
keep-alive pool. A request that cannot reach its replica (refused, reset before an answer) is
retried once on another ready replica, as a Service would route around a terminating endpoint.
So is a request still waiting on a replica that stops being ready (it no longer answers its probes:
paused, hung, or dead): without that, every request the Service sent to a frozen replica before the
controller noticed would wait until the client gave up. Every route of the serving app only scores
rows, so sending a request again is safe (a sampled prediction line may be written twice).

For each replica the Service times every answer, the hop included (:mod:`.upstream`).

The path goes to the replica as it came (``raw_path``: never decoded, so ``/metrics%23x`` is not ``/metrics``). A
body is read only up to the replicas' limit (``LASTMILE_SERVING_MAX_BODY_BYTES`` of the revision, else the serving
app's default); above it the Service answers 413 as a replica would, without reading the rest.

This is the slower alternative to HAProxy (:mod:`.haproxy`), kept so that ``benchmarks/stable_endpoint.py`` can
compare them; ``--balancer python`` selects it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import httpx

from adapters.local.deployer.controller import Deployment
from adapters.local.deployer.replicas import Replica

_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length",
        "content-encoding"}
# How a request fails to reach a replica that is stopping or was killed: refused, no connect in time, the
# connection reset while the request was written, or closed (or reset) before any answer.
_UNREACHED = (httpx.ConnectError, httpx.ConnectTimeout, httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError)
_ANSWERING = ("ready", "draining")
"""A replica in any other state failed its probe or exited: what waits on it is sent elsewhere (a draining one
is alive and finishes what it has)."""
MAX_BODY_BYTES = 1024 * 1024
"""The serving app's default ``max_body_bytes`` (the deployables and the adapters share no code)."""
WATCH_S = 0.1
"""How often a request waiting on a replica looks at that replica's state."""


class _Abandoned(Exception):
    """The replica stopped being ready while the request waited on it."""


class ServiceProxy:
    def __init__(self, deployment: Deployment):
        self.deployment = deployment
        self._turn = itertools.count()
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=1.0),
                                         limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        limit = self._body_limit()
        body = await _read_body(scope, receive, limit)
        if body is None:  # the client left before its body arrived: nothing to forward
            return
        if len(body) > limit:
            await _too_large(send, limit)
            return
        raw = scope.get("raw_path") or scope["path"].encode()
        path = (raw + (b"?" + scope["query_string"] if scope["query_string"] else b"")).decode("latin-1")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]
                   if k.decode("latin-1").lower() not in _HOP]
        tried: set[str] = set()
        for _ in range(2):
            pods = [p for p in self.deployment.routable() if p.name not in tried]
            if not pods:
                break
            pod = pods[next(self._turn) % len(pods)]
            tried.add(pod.name)
            pod.inflight += 1
            began = time.perf_counter()
            try:
                response = await self._exchange(pod, scope["method"], (pod.route_url or pod.url) + path, headers,
                                                body)
            except (*_UNREACHED, _Abandoned):
                continue
            finally:
                pod.inflight -= 1
            pod.upstream.observe(scope["path"], response.status_code, time.perf_counter() - began)
            out = [(k.encode(), v.encode()) for k, v in response.headers.items() if k.lower() not in _HOP]
            out += [(b"content-length", str(len(response.content)).encode()),
                    (b"x-lastmile-replica", pod.name.encode())]
            await send({"type": "http.response.start", "status": response.status_code, "headers": out})
            await send({"type": "http.response.body", "body": response.content})
            return
        await send({"type": "http.response.start", "status": 503,
                    "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1")]})
        await send({"type": "http.response.body", "body": b'{"error": "no ready replica"}'})

    def _body_limit(self) -> int:
        current = self.deployment.current
        try:
            return int(current.env.get("LASTMILE_SERVING_MAX_BODY_BYTES", MAX_BODY_BYTES)) if current else MAX_BODY_BYTES
        except ValueError:
            return MAX_BODY_BYTES

    async def _exchange(self, pod: Replica, method: str, url: str, headers: list, body: bytes) -> httpx.Response:
        """The replica's answer; :class:`_Abandoned` when it stops being ready before answering."""
        request = asyncio.ensure_future(self._client.request(method, url, headers=headers, content=body))
        try:
            while True:
                done, _ = await asyncio.wait({request}, timeout=WATCH_S)
                if done:
                    return request.result()
                if pod.state not in _ANSWERING:
                    raise _Abandoned(pod.name)
        finally:
            if not request.done():
                request.cancel()  # closes that connection; the replica answers into the void if it ever wakes
                request.add_done_callback(_settled)

    async def aclose(self) -> None:
        await self._client.aclose()


async def _read_body(scope, receive, limit: int) -> bytes | None:
    """The request's body, or its first ``limit + 1`` bytes when it is larger (by Content-Length or by what
    arrives): enough to know it is too large. None when the client left first."""
    declared = dict(scope["headers"]).get(b"content-length", b"")
    if declared.isdigit() and int(declared) > limit:
        return b"\0" * (limit + 1)
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit or not message.get("more_body"):
            return b"".join(chunks)


async def _too_large(send, limit: int) -> None:
    """What a replica answers to a body above its limit (serving's middleware)."""
    payload = json.dumps({"error_code": "PAYLOAD_TOO_LARGE",
                          "message": f"the request body is larger than the limit of {limit} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload})


def _settled(task: asyncio.Future) -> None:
    """Retrieve an abandoned request's outcome, so that asyncio does not report it as never retrieved."""
    if not task.cancelled():
        task.exception()


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
