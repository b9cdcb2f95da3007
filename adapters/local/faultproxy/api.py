"""The HTTP API: Toxiproxy 2.x's routes, bodies and status codes, plus lastmile's ``/faults`` and ``/stats``.

Toxiproxy's routes: ``GET /version``, ``GET|POST /proxies``, ``POST /populate``, ``POST /reset``,
``GET|POST|PATCH|DELETE /proxies/{proxy}``, ``GET|POST /proxies/{proxy}/toxics`` and
``GET|POST|PATCH|DELETE /proxies/{proxy}/toxics/{toxic}``. lastmile's: ``GET /proxies/{proxy}/stats``,
``GET|POST|DELETE /proxies/{proxy}/faults`` and ``GET|DELETE /proxies/{proxy}/faults/{fault}``.
Refusals are ``{"error": "...", "status": N}``; like Toxiproxy, requests from browsers are refused (403).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from . import errors
from .faults import parse_rule
from .registry import Registry
from .toxics import parse_toxic

#: The Toxiproxy release whose API this one follows.
VERSION = "2.12.0"


def create_app(registry: Registry) -> Starlette:
    """The API over ``registry``; proxies are restored when the app starts and stopped when it stops."""

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await registry.restore()
        yield
        await registry.shutdown()

    async def version(_request: Request) -> Response:
        return Response(f'{{"version": "{VERSION}"}}\n', media_type="application/json;charset=utf-8")

    async def proxies(request: Request) -> Response:
        if request.method == "GET":
            return _json({name: proxy.to_json() for name, proxy in registry.proxies.items()})
        proxy = await registry.create(await _payload(request))
        return _json(proxy.to_json(), 201)

    async def populate(request: Request) -> Response:
        done, error = await registry.populate(await _payload(request))
        body = {**(error.body() if error else {}), "proxies": [p.to_json() for p in done]}
        return _json(body, error.status if error else 201)

    async def reset(_request: Request) -> Response:
        await registry.reset()
        return Response(status_code=204)

    async def proxy(request: Request) -> Response:
        name = request.path_params["proxy"]
        if request.method == "GET":
            return _json(registry.get(name).to_json())
        if request.method == "DELETE":
            await registry.delete(name)
            return Response(status_code=204)
        return _json((await registry.update(name, await _payload(request))).to_json())

    async def toxics(request: Request) -> Response:
        target = registry.get(request.path_params["proxy"])
        if request.method == "GET":
            return _json([t.to_json() for t in target.toxic_list()])
        return _json(target.add_toxic(parse_toxic(await _payload(request))).to_json())

    async def toxic(request: Request) -> Response:
        target, name = registry.get(request.path_params["proxy"]), request.path_params["toxic"]
        if request.method == "GET":
            return _json(target.toxic(name).to_json())
        if request.method == "DELETE":
            target.remove_toxic(name)
            return Response(status_code=204)
        return _json(target.update_toxic(name, await _payload(request)).to_json())

    async def stats(request: Request) -> Response:
        return _json(registry.get(request.path_params["proxy"]).stats_json())

    async def faults(request: Request) -> Response:
        target = registry.get(request.path_params["proxy"])
        if request.method == "GET":
            return _json([rule.to_json() for rule in target.rules.values()])
        if request.method == "DELETE":
            target.rules.clear()
            return Response(status_code=204)
        return _json(target.add_rule(parse_rule(await _payload(request))).to_json())

    async def fault(request: Request) -> Response:
        target, name = registry.get(request.path_params["proxy"]), request.path_params["fault"]
        if request.method == "GET":
            return _json(target.rule(name).to_json())
        target.remove_rule(name)
        return Response(status_code=204)

    routes = [
        Route("/version", version, methods=["GET"]),
        Route("/proxies", proxies, methods=["GET", "POST"]),
        Route("/populate", populate, methods=["POST"]),
        Route("/reset", reset, methods=["POST"]),
        Route("/proxies/{proxy}", proxy, methods=["GET", "POST", "PATCH", "DELETE"]),
        Route("/proxies/{proxy}/toxics", toxics, methods=["GET", "POST"]),
        Route("/proxies/{proxy}/toxics/{toxic}", toxic, methods=["GET", "POST", "PATCH", "DELETE"]),
        Route("/proxies/{proxy}/stats", stats, methods=["GET"]),
        Route("/proxies/{proxy}/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/proxies/{proxy}/faults/{fault:path}", fault, methods=["GET", "DELETE"]),  # a name may hold "/"
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={errors.ApiError: _api_error})
    return _refuse_browsers(app)


def _json(data: object, status: int = 200) -> Response:
    return Response(json.dumps(data), status_code=status, media_type="application/json")


async def _payload(request: Request) -> object:
    raw = await request.body()
    if not raw.strip():
        raise errors.bad_request_body("EOF")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise errors.bad_request_body(str(exc)) from None


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.ApiError)
    return Response(json.dumps(exc.body()) + "\n", status_code=exc.status, media_type="application/json")


def _refuse_browsers(app):
    """Toxiproxy's guard: a web page must not be able to drive the proxy from a browser."""

    async def guarded(scope, receive, send):
        if scope["type"] == "http":
            agent = dict(scope["headers"]).get(b"user-agent", b"")
            if agent.startswith(b"Mozilla/"):
                await PlainTextResponse("User agent not allowed\n", status_code=403)(scope, receive, send)
                return
        await app(scope, receive, send)

    return guarded
