"""Network and HTTP faults: a toxic or an HTTP fault rule on the fault proxy in front of the target.

Each toxic or rule is named after its fault, so that the proxy's counters for it are the fault's own. Evidence
compares the proxy's counters with those taken just before injection.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from adapters.local.faultproxy.client import FaultProxyClient, FaultProxyError, ProxyStats
from harness.domain.errors import UnreachableError, UserError
from harness.domain.records import FaultEvidence, FaultSpec

from . import targets
from .base import ROUTES, Applied, Profile, refuse_target
from .ledger import Record

TARGETS = f"{', '.join(ROUTES)}, replica:<name> or replica:any"
RULE_FIELDS = ("method", "path", "probability", "status", "body", "headers", "content_type", "preset")


class _OnTheProxy:
    """What network and HTTP faults share: the proxy a target names, and calls to the fault proxy."""

    kind = ""

    def __init__(self, p: Profile):
        self.p = p

    def proxy_for(self, target: str) -> tuple[str, str]:
        """The proxy's name and, for ``replica:any``, which replica it stands for."""
        route = self.p.route_for(target)
        if route in ROUTES:
            return route, "" if route == target else f"; {target} is {route} on this profile"
        if target.startswith("replica:") and target != "replica:":
            if target == "replica:any":
                chosen = targets.replica(self.p, target)
                return f"replica-{chosen.name}", f"; replica:any is {chosen.name}"
            return f"replica-{target.partition(':')[2]}", ""
        raise refuse_target(self.kind, target, TARGETS)

    @contextmanager
    def client(self, target: str) -> Iterator[FaultProxyClient]:
        """A client of the fault proxy whose refusals become one line naming the target."""
        url = self.p.fault_proxy_url()
        with FaultProxyClient(url, timeout=5.0) as client:
            try:
                yield client
            except FaultProxyError as exc:
                if exc.status == 404 and "proxy not found" in exc.message:
                    names = ", ".join(sorted(client.proxies())) or "none"
                    raise UserError(f"{target}: the fault proxy at {url} has no such proxy; its proxies: "
                                    f"{names}") from None
                if exc.status in (400, 409):
                    raise UserError(f"{target}: the fault proxy refused the {self.kind} fault: {exc.message}"
                                    ) from None
                raise
            except httpx.TransportError as exc:
                raise UnreachableError(f"{target}: the fault proxy at {url} did not answer "
                                       f"({type(exc).__name__})", hint="run `lastmile up`") from None

    def remove(self, record: Record, what: str, remove_call) -> str:
        """Take a toxic or rule off its proxy; gone already (the fault proxy restarted, or is down and so lost
        its faults, which it never saves) is fine."""
        proxy, name = record.state["proxy"], record.state["name"]
        try:
            with FaultProxyClient(self.p.fault_proxy_url(), timeout=5.0) as client:
                remove_call(client, proxy, name)
        except FaultProxyError as exc:
            if exc.status != 404:
                raise
            return f"{what} {name} was already gone from proxy {proxy}"
        except httpx.ConnectError:
            return f"the fault proxy is down, and {what} {name} went with it"
        except httpx.TransportError as exc:
            raise UnreachableError(f"{record.spec.target}: the fault proxy did not answer ({type(exc).__name__}); "
                                   f"{record.id} stays active", hint="resume or restart the faults stand-in") from None
        return f"{what} {name} removed from proxy {proxy}"

    def stats(self, record: Record) -> ProxyStats | FaultEvidence:
        """The proxy's counters now, or evidence that says why they cannot be read."""
        proxy = record.state["proxy"]
        try:
            with FaultProxyClient(self.p.fault_proxy_url(), timeout=5.0) as client:
                return client.stats(proxy)
        except (FaultProxyError, httpx.TransportError, UserError) as exc:
            return FaultEvidence(False, f"the counters of proxy {proxy} could not be read ({exc}), so nothing "
                                        f"proves the fault met traffic")


class NetworkFaults(_OnTheProxy):
    """``action`` is the toxic's type; ``params`` its attributes plus ``stream``, ``toxicity`` and ``name``."""

    kind = "network"

    def inject(self, fault_id: str, spec: FaultSpec) -> Applied:
        proxy, note = self.proxy_for(spec.target)
        attributes = dict(spec.params)
        stream = attributes.pop("stream", "downstream")
        toxicity = attributes.pop("toxicity", 1.0)
        name = attributes.pop("name", None) or fault_id
        with self.client(spec.target) as client:
            before = _traffic(client.stats(proxy), name)
            toxic = client.add_toxic(proxy, spec.action, attributes, stream, toxicity, name)
        shown = ", ".join(f"{k}={v}" for k, v in toxic.attributes.items())
        return Applied(f"toxic {toxic.name} ({toxic.type} {shown}; {toxic.stream}, toxicity {toxic.toxicity:g}) "
                       f"on proxy {proxy}{note}", {"proxy": proxy, "name": toxic.name, "before": before})

    def evidence(self, record: Record) -> FaultEvidence:
        stats = self.stats(record)
        if isinstance(stats, FaultEvidence):
            return stats
        proxy, name = record.state["proxy"], record.state["name"]
        now, before = _traffic(stats, name), record.state["before"]
        if now["connections"] < before["connections"]:
            return FaultEvidence(False, f"proxy {proxy} was recreated since injection (its counters restarted), so "
                                        f"nothing proves toxic {name} met traffic")
        got = now["applied"] - before["applied"]
        new = now["connections"] - before["connections"]
        moved = now["bytes"] - before["bytes"]
        seen = f"{new} new connection(s) and {moved} bytes through proxy {proxy} since injection"
        if got > 0 and (new > 0 or moved > 0):
            return FaultEvidence(True, f"{got} connection(s) got toxic {name}; {seen}")
        return FaultEvidence(False, f"no traffic met toxic {name}: {seen}")

    def revert(self, record: Record) -> str:
        return self.remove(record, "toxic", lambda client, proxy, name: client.remove_toxic(proxy, name))


class HttpFaults(_OnTheProxy):
    """``action`` ``error``; ``params`` are the fault proxy's rule fields (method, path, probability, status, body,
    headers, content_type, preset)."""

    kind = "http"

    def inject(self, fault_id: str, spec: FaultSpec) -> Applied:
        unknown = sorted(set(spec.params) - set(RULE_FIELDS))
        if unknown:
            raise UserError(f"{spec.target}: http fault params {', '.join(unknown)} are not known; "
                            f"allowed: {', '.join(RULE_FIELDS)}")
        proxy, note = self.proxy_for(spec.target)
        fields: dict[str, Any] = {**_s3_compat_only(proxy, spec.params), **spec.params} if proxy == "oci" else \
            dict(spec.params)
        with self.client(spec.target) as client:
            before = client.stats(proxy).faults.get(fault_id)
            rule = client.add_fault(proxy, fields.pop("method", "*"), fields.pop("path", "*"), name=fault_id,
                                    **fields)
        chance = "" if rule.probability == 1 else f", probability {rule.probability:g}"
        return Applied(f"rule {rule.name} on proxy {proxy}: {rule.method} {rule.path} answered {rule.status}"
                       f"{f' ({rule.preset})' if rule.preset else ''}{chance}{note}",
                       {"proxy": proxy, "name": rule.name, "status": rule.status,
                        "before": {"matched": before.matched if before else 0,
                                   "injected": before.injected if before else 0}})

    def evidence(self, record: Record) -> FaultEvidence:
        stats = self.stats(record)
        if isinstance(stats, FaultEvidence):
            return stats
        proxy, name, before = record.state["proxy"], record.state["name"], record.state["before"]
        count = stats.faults.get(name)
        matched = count.matched - before["matched"] if count else 0
        injected = count.injected - before["injected"] if count else 0
        if injected > 0:
            return FaultEvidence(True, f"{injected} request(s) answered {record.state['status']} by rule {name} on "
                                       f"proxy {proxy} ({matched} matched)")
        if matched > 0:
            return FaultEvidence(False, f"{matched} request(s) matched rule {name} on proxy {proxy}, but none was "
                                        f"drawn to fail")
        return FaultEvidence(False, f"no request matched rule {name} on proxy {proxy}")

    def revert(self, record: Record) -> str:
        return self.remove(record, "rule", lambda client, proxy, name: client.remove_fault(proxy, name))


def _s3_compat_only(proxy: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """On the OCI API stand-in, S3's ``SlowDown`` is answered only on the S3 compatibility API (``/s3/...``, what the
    training job and MLflow use), not on the native, Vault or Logging APIs, which throttle with OCI's 429."""
    return {"path": "^/s3/"} if params.get("preset") == "s3-slowdown" and "path" not in params else {}


def _traffic(stats: ProxyStats, toxic: str) -> dict[str, int]:
    count = stats.toxics.get(toxic)
    return {"applied": count.applied if count else 0, "connections": stats.connections_accepted,
            "bytes": stats.bytes_upstream + stats.bytes_downstream}
