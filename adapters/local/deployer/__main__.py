"""``python -m adapters.local.deployer``: the deployment controller with its admin API and its Service.

The admin API (``--port``) changes state, so every call but ``/healthz`` needs the bearer token whose
SHA-256 (hex) is in ``--token-sha256-file``; the token itself stays in the secret store. The Service
(``--service-port``) is the deployment's stable endpoint: HAProxy driven by the controller (:mod:`.haproxy`), or
with ``--balancer python`` the in-process proxy (:mod:`.proxy`), the slower alternative kept for comparison.
Replicas are processes run from the revision's bundle, or with ``--runtime container`` containers of the revision's
serving image (:mod:`.containers`): a deploy request then names ``image`` rather than ``bundle_dir``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import signal
from dataclasses import fields
from pathlib import Path

import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from adapters.local.deployer.containers import CannotRun, ContainerRuntime
from adapters.local.deployer.controller import Deployment, NoPreviousRevision
from adapters.local.deployer.haproxy import HaproxyError, HaproxyService
from adapters.local.deployer.proxy import ServiceProxy
from adapters.local.deployer.replicas import RevisionSpec
from adapters.local.deployer.routes import ReplicaRoutes
from harness.infra import logs


class DeployRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    serving_digest: str
    bundle_dir: str = ""
    image: str = ""
    model_name: str
    model_version: str
    env: dict[str, str] = {}
    replicas: int | None = Field(None, ge=1, le=16)


class ScaleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    replicas: int = Field(ge=1, le=16)


def admin_app(deployment: Deployment, token_sha256: str, service_url: str) -> FastAPI:
    app = FastAPI(title="lastmile deployer", docs_url=None, redoc_url=None)

    def authorized(authorization: str = Header("")) -> None:
        scheme, _, presented = authorization.partition(" ")
        digest = hashlib.sha256(presented.encode()).hexdigest()
        if scheme != "Bearer" or not presented or not hmac.compare_digest(digest, token_sha256):
            raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})

    def named(name: str) -> Deployment:
        if name != deployment.name:
            raise HTTPException(404, f"no deployment {name}; this controller runs {deployment.name}")
        return deployment

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"ok": True}

    @app.get("/deployments/{name}", dependencies=[Depends(authorized)])
    async def status(name: str) -> dict:
        return {**named(name).status(), "endpoint": service_url}

    @app.put("/deployments/{name}", dependencies=[Depends(authorized)])
    async def deploy(name: str, request: DeployRequest) -> dict:
        target = named(name)
        await _runnable(target, request)
        spec_fields = {f.name for f in fields(RevisionSpec)}
        spec = RevisionSpec(number=0, **request.model_dump(include=spec_fields - {"number"}))
        return {"revision": _revision(target.deploy(spec, request.replicas))}

    @app.post("/deployments/{name}/rollback", dependencies=[Depends(authorized)])
    async def rollback(name: str) -> dict:
        try:
            return {"revision": _revision(named(name).rollback())}
        except NoPreviousRevision as exc:
            raise HTTPException(409, str(exc)) from None

    @app.get("/deployments/{name}/metrics", dependencies=[Depends(authorized)])
    async def metrics(name: str) -> dict:
        return {"replicas": await named(name).metrics()}

    @app.put("/deployments/{name}/scale", dependencies=[Depends(authorized)])
    async def scale(name: str, request: ScaleRequest) -> dict:
        named(name).scale(request.replicas)
        return {**deployment.status(), "endpoint": service_url}

    return app


async def _runnable(deployment: Deployment, request: DeployRequest) -> None:
    """Refuse (422) a revision this controller's replicas cannot run: a bundle for processes, an image this engine
    has for containers."""
    if deployment.containers is None:
        if not request.bundle_dir:
            raise HTTPException(422, "replicas run as processes here (--runtime process): the request needs "
                                     "bundle_dir, the serving bundle's directory")
        return
    try:
        await asyncio.to_thread(deployment.containers.check_image, request.image)
        deployment.containers.check_model_dir(request.env.get("LASTMILE_SERVING_MODEL_DIR"))
    except CannotRun as exc:
        raise HTTPException(422, str(exc)) from None


def _revision(spec: RevisionSpec) -> dict:
    return {"number": spec.number, "serving_digest": spec.serving_digest, "model_version": spec.model_version}


def kube_front_door(args: argparse.Namespace, deployment: Deployment, token_sha256: str, service_url: str):
    """The Kubernetes API front door (:mod:`.kubeapi`) over the same controller, when ``--kube-port`` asks for it."""
    from adapters.local.deployer.kubeapi import FrontDoor, kube_app
    from adapters.local.deployer.kubeauth import OkeTokens

    state = Path(args.state_dir)
    door = FrontDoor(deployment, Path(args.bundles_dir) if args.bundles_dir else state / "bundles", service_url,
                     state / "kubeapi.json")
    tokens = OkeTokens(args.oke_token_verifier, args.cluster_id) if args.oke_token_verifier else None
    return kube_app(door, token_sha256, tokens)


async def serve(args: argparse.Namespace) -> None:
    containers = ContainerRuntime(Path(args.state_dir), args.name) if args.runtime == "container" else None
    reaper = None
    if containers is not None:
        # A controller that died unstopped left its containers: a replica of it may still hold a port.
        await asyncio.to_thread(containers.remove_leftovers)
        reaper = await containers.start_reaper()
    deployment = Deployment(args.name, Path(args.state_dir), args.replicas, args.max_surge, args.max_unavailable,
                            ReplicaRoutes(args.fault_proxy), containers)
    token_sha256 = Path(args.token_sha256_file).read_text().strip()
    service_url = args.service_url or f"http://127.0.0.1:{args.service_port}"
    servers = [
        uvicorn.Server(uvicorn.Config(admin_app(deployment, token_sha256, service_url), host="127.0.0.1", port=args.port,
                                      log_level="warning", lifespan="off")),
    ]
    service: HaproxyService | ServiceProxy
    if args.balancer == "haproxy":
        service = HaproxyService(Path(args.state_dir), args.service_port)
        try:
            await service.start()
        except HaproxyError as exc:
            await service.aclose()
            raise SystemExit(f"error: {exc}") from None
        deployment.service = service
    else:
        service = ServiceProxy(deployment)
        servers.append(uvicorn.Server(uvicorn.Config(service, host="127.0.0.1", port=args.service_port,
                                                     log_level="warning", access_log=False)))
    if args.kube_port:
        servers.append(uvicorn.Server(uvicorn.Config(kube_front_door(args, deployment, token_sha256, service_url),
                                                     host="127.0.0.1", port=args.kube_port, log_level="warning",
                                                     lifespan="off")))
    reconciler = asyncio.create_task(deployment.reconcile_forever())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    for server in servers:
        # uvicorn would take SIGTERM for itself (Server.capture_signals); this process stops both servers.
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    await stop.wait()
    for server in servers:
        server.should_exit = True
    reconciler.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await deployment.shutdown()
    await service.aclose()
    if reaper is not None and reaper.stdin is not None:
        reaper.stdin.close()  # nothing left to reap: it looks, finds nothing and exits
        await reaper.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m adapters.local.deployer", description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="admin API port")
    parser.add_argument("--service-port", type=int, required=True, help="the deployment's stable endpoint")
    parser.add_argument("--service-url", help="where clients reach it (through a fault proxy); default: its port")
    parser.add_argument("--fault-proxy", help="the fault proxy's API: the Service reaches each replica through it")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--token-sha256-file", required=True, help="hex SHA-256 of the admin API's bearer token")
    parser.add_argument("--name", default="lastmile")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--max-surge", type=int, default=1)
    parser.add_argument("--max-unavailable", type=int, default=0)
    parser.add_argument("--balancer", choices=("haproxy", "python"), default="haproxy",
                        help="what serves the stable endpoint: HAProxy (default) or the in-process Python proxy")
    parser.add_argument("--runtime", choices=("process", "container"), default="process",
                        help="replicas as processes from the revision's bundle (default), or as containers of its "
                             "serving image on the local Docker engine")
    parser.add_argument("--kube-port", type=int, help="serve the Kubernetes API front door (kubeapi.py) on this port")
    parser.add_argument("--bundles-dir", help="where serving bundles are, by digest (the front door's images)")
    parser.add_argument("--oke-token-verifier", help="the OCI API stand-in: accept OKE tokens it verifies")
    parser.add_argument("--cluster-id", default="", help="with --oke-token-verifier: the cluster tokens must name")
    args = parser.parse_args()
    if args.runtime == "container" and args.kube_port:
        parser.error("--kube-port needs --runtime process: the front door's images are serving bundles")
    # httpx logs every request at INFO: each probe and, through the Service, each proxied prediction.
    logs.configure("INFO", {"service": "deployer"}, quiet=("httpx", "httpcore"))
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
