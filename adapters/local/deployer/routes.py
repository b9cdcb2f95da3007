"""One fault-proxy route per replica, so that a drill can slow or break the hop from the Service to one replica.

Without a fault proxy the Service reaches each replica directly. Health probes always go direct, as a
kubelet's do; only the Service's traffic takes the route.
"""

from __future__ import annotations

import asyncio
import logging

from adapters.local.deployer.replicas import Replica
from adapters.local.faultproxy.client import FaultProxyClient, FaultProxyError

log = logging.getLogger("lastmile.deployer")
PREFIX = "replica-"


class ReplicaRoutes:
    def __init__(self, api_url: str | None):
        self.api_url = api_url

    async def route(self, pod: Replica) -> str:
        """The address the Service uses for ``pod``: its own proxy (kept across restarts, toxics included)."""
        if not self.api_url:
            return pod.url
        try:
            proxy = await asyncio.to_thread(self._ensure, pod.name, f"127.0.0.1:{pod.port}")
        except (FaultProxyError, OSError) as exc:
            log.warning("no route through the fault proxy; the Service goes direct", extra={"fields": {
                "replica": pod.name, "error": str(exc)}})
            return pod.url
        return f"http://127.0.0.1:{proxy.port}"

    async def forget(self, pod: Replica) -> None:
        if self.api_url:
            try:
                await asyncio.to_thread(self._delete, pod.name)
            except (FaultProxyError, OSError):
                pass  # the proxy is gone already, or the fault proxy is down: nothing routes there

    def _ensure(self, name: str, upstream: str):
        with FaultProxyClient(self.api_url or "", timeout=5.0) as client:
            return client.ensure_proxy(PREFIX + name, upstream)

    def _delete(self, name: str) -> None:
        with FaultProxyClient(self.api_url or "", timeout=5.0) as client:
            client.delete_proxy(PREFIX + name)
