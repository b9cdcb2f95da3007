"""One proxy: a listener on 127.0.0.1, its live connections, its toxics, its HTTP fault rules and its counters."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from . import errors
from .connection import Connection
from .faults import FaultRule
from .toxics import Toxic, check_update

LOOPBACK = "127.0.0.1"


def resolve_listen(listen: str) -> str:
    """``127.0.0.1:PORT`` for a loopback listen address (``localhost`` resolves to it; empty means port 0);
    anything else is refused, since the proxy never listens beyond this machine."""
    host, colon, port = (listen.strip() or f"{LOOPBACK}:0").rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise errors.ApiError(f"bad listen address {listen!r}: expected 127.0.0.1:PORT", 400)
    if host not in (LOOPBACK, "localhost"):
        raise errors.ApiError(f"listen address {listen!r} refused: proxies listen on {LOOPBACK} only", 400)
    return f"{LOOPBACK}:{int(port)}"


def check_upstream(upstream: str) -> str:
    host, colon, port = upstream.rpartition(":")
    if not colon or not host or not port.isdigit() or int(port) > 65535:
        raise errors.ApiError(f"bad upstream address {upstream!r}: expected HOST:PORT", 400)
    return upstream


@dataclass
class ProxyStats:
    """Evidence that a fault took effect, counted since the proxy was created."""

    connections_accepted: int = 0
    upstream_connect_failures: int = 0
    http_requests: int = 0
    bytes: dict[str, dict[str, int]] = field(default_factory=lambda: {
        "upstream": {"received": 0, "sent": 0}, "downstream": {"received": 0, "sent": 0}})
    faults: dict[str, dict[str, int]] = field(default_factory=dict)  # rule -> matched, injected
    toxics: dict[str, dict[str, int]] = field(default_factory=dict)  # toxic -> connections, applied

    def count(self, direction: str, received: int = 0, sent: int = 0) -> None:
        counts = self.bytes[direction]
        counts["received"] += received
        counts["sent"] += sent

    def toxic_offered(self, name: str) -> None:
        self.toxics.setdefault(name, {"connections": 0, "applied": 0})["connections"] += 1

    def toxic_applied(self, name: str) -> None:
        self.toxics.setdefault(name, {"connections": 0, "applied": 0})["applied"] += 1

    def fault_matched(self, name: str) -> None:
        self.faults.setdefault(name, {"matched": 0, "injected": 0})["matched"] += 1

    def fault_injected(self, name: str) -> None:
        self.faults.setdefault(name, {"matched": 0, "injected": 0})["injected"] += 1


class Proxy:
    """``name`` forwards what reaches ``listen`` to ``upstream``, through its toxics and fault rules."""

    def __init__(self, name: str, listen: str, upstream: str):
        self.name, self.listen, self.upstream = name, listen, upstream
        self.enabled = False
        self.server: asyncio.Server | None = None
        self.connections: set[Connection] = set()
        self.toxics: dict[str, Toxic] = {}
        self.rules: dict[str, FaultRule] = {}
        self.stats = ProxyStats()

    def record(self) -> dict:
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream, "enabled": self.enabled}

    def to_json(self) -> dict:
        return {**self.record(), "toxics": [t.to_json() for t in self.toxic_list()]}

    def stats_json(self) -> dict:
        s = self.stats
        return {"name": self.name, "connections_accepted": s.connections_accepted,
                "connections_active": len(self.connections), "upstream_connect_failures": s.upstream_connect_failures,
                "bytes_upstream": s.bytes["upstream"]["received"], "bytes_downstream": s.bytes["downstream"]["received"],
                "bytes_upstream_sent": s.bytes["upstream"]["sent"],
                "bytes_downstream_sent": s.bytes["downstream"]["sent"], "http_requests": s.http_requests,
                "faults": {k: dict(v) for k, v in s.faults.items()},
                "toxics": {k: dict(v) for k, v in s.toxics.items()}}

    async def start(self) -> None:
        if self.enabled:
            return
        port = int(resolve_listen(self.listen).rpartition(":")[2])
        loop = asyncio.get_running_loop()
        try:
            self.server = await loop.create_server(lambda: Connection(self).client, LOOPBACK, port, backlog=1024)
        except OSError as exc:
            raise errors.ApiError(f"listen tcp {self.listen}: {exc.strerror or exc}", 500) from None
        self.listen = f"{LOOPBACK}:{self.server.sockets[0].getsockname()[1]}"
        self.enabled = True

    def stop(self) -> None:
        """Stop listening and close every connection (a disabled proxy refuses connections)."""
        if not self.enabled:
            return
        self.enabled = False
        if self.server is not None:
            self.server.close()
            self.server = None
        for conn in list(self.connections):
            conn.close()

    def connection_opened(self, conn: Connection) -> None:
        self.connections.add(conn)
        self.stats.connections_accepted += 1

    def connection_closed(self, conn: Connection) -> None:
        self.connections.discard(conn)

    def toxic_list(self) -> list[Toxic]:
        """Upstream toxics, then downstream ones, each in the order they were added (Toxiproxy's listing)."""
        return ([t for t in self.toxics.values() if t.stream == "upstream"]
                + [t for t in self.toxics.values() if t.stream == "downstream"])

    def toxic(self, name: str) -> Toxic:
        if name not in self.toxics:
            raise errors.toxic_not_found()
        return self.toxics[name]

    def add_toxic(self, toxic: Toxic) -> Toxic:
        if toxic.name in self.toxics:
            raise errors.toxic_already_exists()
        self.toxics[toxic.name] = toxic
        for link in self._links(toxic.stream):
            link.add_stage(toxic)
        return toxic

    def update_toxic(self, name: str, payload: object) -> Toxic:
        toxic = self.toxic(name)
        toxic.attributes, toxic.toxicity = check_update(toxic, payload)
        for link in self._links(toxic.stream):
            link.restart_stage(name)
        return toxic

    def remove_toxic(self, name: str) -> None:
        toxic = self.toxics.pop(self.toxic(name).name)
        for link in self._links(toxic.stream):
            link.remove_stage(name)

    def reset_toxics(self) -> None:
        for name in list(self.toxics):
            self.remove_toxic(name)

    def rule(self, name: str) -> FaultRule:
        if name not in self.rules:
            raise errors.fault_not_found()
        return self.rules[name]

    def add_rule(self, rule: FaultRule) -> FaultRule:
        if rule.name in self.rules:
            raise errors.fault_already_exists()
        self.rules[rule.name] = rule
        self.stats.faults.setdefault(rule.name, {"matched": 0, "injected": 0})
        return rule

    def remove_rule(self, name: str) -> None:
        del self.rules[self.rule(name).name]

    def match(self, method: str, target: str) -> FaultRule | None:
        """The first rule that matches the request and wins its draw; counts every rule that matched."""
        for rule in list(self.rules.values()):
            if rule.matches(method, target):
                self.stats.fault_matched(rule.name)
                if random.random() < rule.probability:
                    return rule
        return None

    def _links(self, stream: str) -> list:
        return [conn.links[stream] for conn in list(self.connections) if stream in conn.links and not conn.closed]
