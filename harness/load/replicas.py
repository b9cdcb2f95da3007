"""The deployment's own view of a load run: each replica's figures from its ``/metrics`` (read through the Deployer
port) before and after, and which model version and revision served the load.

Per replica: scoring requests and 5xx answers (cumulative), p50 and p95 of its own latency histogram, and its
resident memory, ``process_resident_memory_bytes`` where its exposition has it, else (a local replica whose pid
the deployer reports) read from the process itself, and ``rss_from`` says which.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psutil
from prometheus_client.parser import text_string_to_metric_families

from harness.domain.ports import Deployer
from harness.pipeline import observation

RSS = "process_resident_memory_bytes"


def figures(text: str | None) -> dict[str, Any]:
    """Selected figures of one replica's exposition text ({} when it did not answer)."""
    sample = observation.parse(text)
    if sample is None:
        return {}
    p50, p95 = observation.quantile(sample.buckets, 0.5), observation.quantile(sample.buckets, 0.95)
    found: dict[str, Any] = {"requests": sample.requests, "errors_5xx": sample.errors,
                             "p50_ms": round(p50 * 1000, 2) if p50 is not None else None,
                             "p95_ms": round(p95 * 1000, 2) if p95 is not None else None,
                             "model_version": sample.version}
    for family in text_string_to_metric_families(text or ""):
        for s in family.samples:
            if s.name == RSS:
                found[RSS], found["rss_from"] = s.value, "metrics"
    return found


def _rss_of(pid: int | None) -> float | None:
    if not pid:
        return None
    try:
        return float(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return None


def snapshot(deployer: Deployer, name: str) -> dict[str, dict[str, Any]]:
    """Every replica's figures now, by replica name."""
    pids = {r.name: r.pid for r in deployer.status(name).replicas}
    seen = {}
    for m in deployer.replica_metrics(name):
        found = {"state": m.state, **figures(m.text)}
        if RSS not in found and (rss := _rss_of(pids.get(m.replica))) is not None:
            found[RSS], found["rss_from"] = rss, "process"
        seen[m.replica] = found
    return seen


def compare(start: Mapping[str, Mapping[str, Any]], end: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``[{"name", "start", "end"}]`` for every replica seen at either end."""
    return [{"name": n, "start": dict(start.get(n, {})), "end": dict(end.get(n, {}))}
            for n in sorted(set(start) | set(end))]


def served_by(deployer: Deployer, name: str, model_name: str, replicas: list[dict[str, Any]]) -> dict[str, Any]:
    """The deployment, model version and revision serving now, and the replicas whose request count rose."""
    status = deployer.status(name)
    seen = [r["name"] for r in replicas
            if (r["end"].get("requests") or 0) > (r["start"].get("requests") or 0)]
    return {"deployment": name, "model_name": model_name,
            "model_version": status.revision.model_version if status.revision else "",
            "revision": status.revision.number if status.revision else "", "replicas_seen": seen,
            "endpoint": status.endpoint}
