"""lastmile's typed client for the fault proxy's API (Toxiproxy's routes plus ``/faults`` and ``/stats``).

    with FaultProxyClient("http://127.0.0.1:8474") as proxies:
        s3 = proxies.ensure_proxy("s3", upstream="127.0.0.1:9000")
        proxies.add_toxic("s3", "latency", {"latency": 200})
        proxies.add_fault("s3", method="PUT", path="/models/*", preset="s3-slowdown", probability=0.5)
        assert proxies.stats("s3").faults["503_PUT_/models/*"].injected > 0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx


class FaultProxyError(Exception):
    """The API refused a call: its status and Toxiproxy-style error message."""

    def __init__(self, status: int, message: str):
        super().__init__(f"fault proxy answered {status}: {message}")
        self.status, self.message = status, message


@dataclass(frozen=True)
class Toxic:
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict) -> Toxic:
        return cls(data["name"], data["type"], data["stream"], float(data["toxicity"]), dict(data["attributes"]))


@dataclass(frozen=True)
class Proxy:
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[Toxic, ...] = ()

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @classmethod
    def from_json(cls, data: dict) -> Proxy:
        return cls(data["name"], data["listen"], data["upstream"], bool(data["enabled"]),
                   tuple(Toxic.from_json(t) for t in data.get("toxics") or ()))


@dataclass(frozen=True)
class HttpFault:
    name: str
    method: str
    path: str
    probability: float
    status: int
    body: str
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    preset: str | None = None

    @classmethod
    def from_json(cls, data: dict) -> HttpFault:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class FaultCount:
    matched: int
    injected: int


@dataclass(frozen=True)
class ToxicCount:
    connections: int
    applied: int


@dataclass(frozen=True)
class ProxyStats:
    """What a proxy has seen since it was created: the evidence a drill shows."""

    name: str
    connections_accepted: int
    connections_active: int
    upstream_connect_failures: int
    bytes_upstream: int  # read from clients
    bytes_downstream: int  # read from the upstream
    bytes_upstream_sent: int
    bytes_downstream_sent: int
    http_requests: int
    faults: dict[str, FaultCount]
    toxics: dict[str, ToxicCount]

    @classmethod
    def from_json(cls, data: dict) -> ProxyStats:
        counts = {k: data[k] for k in cls.__dataclass_fields__ if k not in ("faults", "toxics")}
        return cls(**counts, faults={k: FaultCount(**v) for k, v in data["faults"].items()},
                   toxics={k: ToxicCount(**v) for k, v in data["toxics"].items()})


class FaultProxyClient:
    """Calls one fault proxy (or a Toxiproxy server, for the Toxiproxy routes)."""

    def __init__(self, base_url: str = "http://127.0.0.1:8474", timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None):
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)

    def __enter__(self) -> FaultProxyClient:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def version(self) -> str:
        return self._call("GET", "/version")["version"]

    def proxies(self) -> dict[str, Proxy]:
        return {name: Proxy.from_json(p) for name, p in self._call("GET", "/proxies").items()}

    def proxy(self, name: str) -> Proxy:
        return Proxy.from_json(self._call("GET", f"/proxies/{name}"))

    def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True) -> Proxy:
        body = {"name": name, "upstream": upstream, "listen": listen, "enabled": enabled}
        return Proxy.from_json(self._call("POST", "/proxies", body))

    def ensure_proxy(self, name: str, upstream: str, listen: str | None = None) -> Proxy:
        """The proxy ``name`` to ``upstream``, enabled: created when missing, updated in place (keeping its port
        unless ``listen`` says otherwise, and its toxics) when it differs."""
        try:
            current = self.proxy(name)
        except FaultProxyError as exc:
            if exc.status != 404:
                raise
            return self.create_proxy(name, upstream, listen or "127.0.0.1:0")
        if current.upstream == upstream and listen in (None, current.listen) and current.enabled:
            return current
        body = {"upstream": upstream, "listen": listen or current.listen, "enabled": True}
        return Proxy.from_json(self._call("POST", f"/proxies/{name}", body))

    def set_enabled(self, name: str, enabled: bool) -> Proxy:
        return Proxy.from_json(self._call("POST", f"/proxies/{name}", {"enabled": enabled}))

    def delete_proxy(self, name: str) -> None:
        self._call("DELETE", f"/proxies/{name}")

    def toxics(self, proxy: str) -> list[Toxic]:
        return [Toxic.from_json(t) for t in self._call("GET", f"/proxies/{proxy}/toxics")]

    def add_toxic(self, proxy: str, type: str, attributes: dict[str, Any] | None = None, stream: str = "downstream",
                  toxicity: float = 1.0, name: str | None = None) -> Toxic:
        body = {"type": type, "stream": stream, "toxicity": toxicity, "attributes": attributes or {}}
        if name:
            body["name"] = name
        return Toxic.from_json(self._call("POST", f"/proxies/{proxy}/toxics", body))

    def update_toxic(self, proxy: str, name: str, attributes: dict[str, Any] | None = None,
                     toxicity: float | None = None) -> Toxic:
        body: dict[str, Any] = {"attributes": attributes or {}}
        if toxicity is not None:
            body["toxicity"] = toxicity
        return Toxic.from_json(self._call("POST", f"/proxies/{proxy}/toxics/{name}", body))

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")

    def faults(self, proxy: str) -> list[HttpFault]:
        return [HttpFault.from_json(f) for f in self._call("GET", f"/proxies/{proxy}/faults")]

    def add_fault(self, proxy: str, method: str = "*", path: str = "*", *, status: int | None = None,
                  probability: float = 1.0, preset: str | None = None, body: str | None = None,
                  headers: dict[str, str] | None = None, content_type: str | None = None,
                  name: str | None = None) -> HttpFault:
        rule = {"method": method, "path": path, "probability": probability, "status": status, "preset": preset,
                "body": body, "headers": headers, "content_type": content_type, "name": name}
        sent = {k: v for k, v in rule.items() if v is not None}
        return HttpFault.from_json(self._call("POST", f"/proxies/{proxy}/faults", sent))

    def remove_fault(self, proxy: str, name: str) -> None:
        """Remove a rule by name; a default name holds the rule's path, slashes and all."""
        self._call("DELETE", f"/proxies/{proxy}/faults/{quote(name, safe='/')}")

    def clear_faults(self, proxy: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/faults")

    def stats(self, proxy: str) -> ProxyStats:
        return ProxyStats.from_json(self._call("GET", f"/proxies/{proxy}/stats"))

    def reset(self) -> None:
        """Every proxy enabled; every toxic and fault rule removed."""
        self._call("POST", "/reset")

    def _call(self, method: str, path: str, body: object = None) -> Any:
        answer = self._http.request(method, path, json=body)
        if answer.status_code >= 400:
            try:
                message = answer.json()["error"]
            except (ValueError, KeyError, TypeError):
                message = answer.text.strip()
            raise FaultProxyError(answer.status_code, message)
        return answer.json() if answer.content else None
