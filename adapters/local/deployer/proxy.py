"""The Service in front of the replicas: one stable address that routes only to ready replicas.

A pure ASGI app that forwards each request to the next ready replica (round robin) over a
keep-alive pool. A request that cannot reach its replica (refused, reset before an answer) is
retried once on another ready replica, as a Service would route around a terminating endpoint.
"""

from __future__ import annotations

import itertools

import httpx

from adapters.local.deployer.controller import Deployment

_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length",
        "content-encoding"}
# How a request fails to reach a replica that is stopping or was killed: refused, no connect in time, the
# connection reset while the request was written, or closed (or reset) before any answer.
_UNREACHED = (httpx.ConnectError, httpx.ConnectTimeout, httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError)


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
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":  # the client left before its body arrived: nothing to forward
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"] + (("?" + scope["query_string"].decode()) if scope["query_string"] else "")
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k.decode().lower() not in _HOP]
        tried: set[str] = set()
        for _ in range(2):
            pods = [p for p in self.deployment.routable() if p.name not in tried]
            if not pods:
                break
            pod = pods[next(self._turn) % len(pods)]
            tried.add(pod.name)
            pod.inflight += 1
            try:
                response = await self._client.request(scope["method"], (pod.route_url or pod.url) + path,
                                                      headers=headers, content=body)
            except _UNREACHED:
                continue
            finally:
                pod.inflight -= 1
            out = [(k.encode(), v.encode()) for k, v in response.headers.items() if k.lower() not in _HOP]
            out += [(b"content-length", str(len(response.content)).encode()),
                    (b"x-lastmile-replica", pod.name.encode())]
            await send({"type": "http.response.start", "status": response.status_code, "headers": out})
            await send({"type": "http.response.body", "body": response.content})
            return
        await send({"type": "http.response.start", "status": 503,
                    "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1")]})
        await send({"type": "http.response.body", "body": b'{"error": "no ready replica"}'})

    async def aclose(self) -> None:
        await self._client.aclose()


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
