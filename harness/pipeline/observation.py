"""Observation: each replica's Prometheus metrics, read through the Deployer port, summarised as health, rate,
latency and errors per replica and in total, and which replica is the slowest.

A replica's own latency histogram times requests inside its server. Where the deployer's Service also times each
replica's answers (``lastmile_service_upstream_duration_seconds``, appended to that replica's text), its p50 and
p95 come from the Service's histogram instead: that is what a client waits for, the hop to the replica included,
so a slow network path to one replica shows on that replica."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from harness.domain.ports import ObjectStore
from harness.domain.records import ReplicaMetrics

REQUESTS = "lastmile_serving_requests"
LATENCY = "lastmile_serving_request_duration_seconds"
MODEL_INFO = "lastmile_serving_model_info"
UPSTREAM = "lastmile_service_upstream_duration_seconds"
SCORING_ROUTES = ("/invocations", "/predict")
SAMPLE_KEY = re.compile(r"(\d{13})-\d+\.jsonl$")
"""The name the replicas give each sample object: its upload time in epoch milliseconds, then a sequence."""
REPLICA, SERVICE = "replica", "service"
"""Where a view's p50 and p95 come from: the replica's own histogram, or the Service's of that replica."""


@dataclass(frozen=True)
class Sample:
    """One scrape of one replica: request counts by status and the latency histogram, cumulative."""

    requests: float
    errors: float
    buckets: tuple[tuple[float, float], ...]  # (upper bound, cumulative count)
    version: str | None
    hop_buckets: tuple[tuple[float, float], ...] = ()  # the Service's histogram of this replica, when it has one


@dataclass(frozen=True)
class ReplicaView:
    name: str
    health: str
    version: str | None
    rate: float
    p50_ms: float | None
    p95_ms: float | None
    error_rate: float
    latency_from: str | None = None  # REPLICA or SERVICE: whose histogram p50 and p95 come from


def parse(text: str | None) -> Sample | None:
    """One replica's exposition text as a :class:`Sample`; None when the replica did not answer."""
    if text is None:
        return None
    requests = errors = 0.0
    buckets: dict[float, float] = {}
    hop: dict[float, float] = {}
    version = None
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            route = s.labels.get("route")
            if s.name == REQUESTS + "_total" and route in SCORING_ROUTES:
                requests += s.value
                errors += s.value if s.labels.get("status", "").startswith("5") else 0.0
            elif s.name == LATENCY + "_bucket" and route in SCORING_ROUTES:
                bound = float(s.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + s.value
            elif s.name == UPSTREAM + "_bucket" and route in SCORING_ROUTES:
                bound = float(s.labels["le"])
                hop[bound] = hop.get(bound, 0.0) + s.value
            elif s.name == MODEL_INFO and s.value == 1:
                version = s.labels.get("model_version")
    return Sample(requests, errors, tuple(sorted(buckets.items())), version, tuple(sorted(hop.items())))


def quantile(buckets: Iterable[tuple[float, float]], q: float) -> float | None:
    """The q-quantile from cumulative histogram buckets, interpolated linearly inside a bucket."""
    buckets = list(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    target = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= target:
            if bound == float("inf"):
                return lower_bound
            width = count - lower_count
            return lower_bound + (bound - lower_bound) * ((target - lower_count) / width if width else 1.0)
        lower_bound, lower_count = bound, count
    return lower_bound


def delta(before: Sample, after: Sample) -> Sample:
    return Sample(after.requests - before.requests, after.errors - before.errors,
                  _minus(after.buckets, before.buckets), after.version, _minus(after.hop_buckets, before.hop_buckets))


def _minus(after: tuple[tuple[float, float], ...], before: tuple[tuple[float, float], ...]
           ) -> tuple[tuple[float, float], ...]:
    earlier = dict(before)
    return tuple((b, c - earlier.get(b, 0.0)) for b, c in after)


def view(name: str, state: str, window: Sample | None, seconds: float) -> ReplicaView:
    if window is None:
        return ReplicaView(name, state if state != "ready" else "unreachable", None, 0.0, None, None, 0.0)
    source, buckets = (SERVICE, window.hop_buckets) if _counted(window.hop_buckets) else (REPLICA, window.buckets)
    p50, p95 = quantile(buckets, 0.5), quantile(buckets, 0.95)
    return ReplicaView(name, state, window.version, window.requests / seconds if seconds else 0.0,
                       p50 * 1000 if p50 is not None else None, p95 * 1000 if p95 is not None else None,
                       window.errors / window.requests if window.requests else 0.0,
                       source if p50 is not None else None)


def _counted(buckets: tuple[tuple[float, float], ...]) -> bool:
    return bool(buckets) and buckets[-1][1] > 0


def slowest(views: Iterable[ReplicaView]) -> ReplicaView | None:
    """The replica whose answers took longest in the window, by p50 (then p95): the one a slow replica or a slow
    path to it shows on. None when no replica answered a scoring request in the window."""
    timed = [v for v in views if v.p50_ms is not None]
    return max(timed, key=lambda v: (v.p50_ms, v.p95_ms or 0.0)) if timed else None


def observe(scrape: Callable[[], Sequence[ReplicaMetrics]], window_s: float = 2.0
            ) -> tuple[list[ReplicaView], ReplicaView]:
    """Scrape every replica twice, ``window_s`` apart (``scrape`` is the Deployer port's ``replica_metrics``);
    per replica and in total."""
    first = {m.replica: m for m in scrape()}
    started = time.monotonic()
    time.sleep(window_s)
    second = {m.replica: m for m in scrape()}
    seconds = time.monotonic() - started
    views, windows = [], []
    for name, now in second.items():
        a, b = parse(first[name].text) if name in first else None, parse(now.text)
        window = delta(a, b) if a and b else None
        views.append(view(name, now.state, window, seconds))
        if window:
            windows.append(window)
    total = Sample(sum(w.requests for w in windows), sum(w.errors for w in windows),
                   _merge(w.buckets for w in windows), None, _merge(w.hop_buckets for w in windows))
    versions = {v.version for v in views if v.version}
    summary = view("total", f"{sum(v.health == 'ready' for v in views)}/{len(views)} ready", total, seconds)
    return views, ReplicaView(**{**summary.__dict__, "version": ",".join(sorted(versions)) or None})


def _merge(bucket_sets: Iterable[tuple[tuple[float, float], ...]]) -> tuple[tuple[float, float], ...]:
    merged: dict[float, float] = {}
    for buckets in bucket_sets:
        for bound, count in buckets:
            merged[bound] = merged.get(bound, 0.0) + count
    return tuple(sorted(merged.items()))


def sampled_rows(store: ObjectStore, bucket: str, prefix: str, since: float, until: float | None = None
                 ) -> list[dict[str, float]]:
    """The feature rows of the prediction samples under ``prefix`` whose requests were scored between ``since``
    and ``until`` (epoch seconds): what a drift check over a window reads, rather than every sample ever shipped
    (load tests repeat one row thousands of times). Objects uploaded before ``since`` are not even read."""
    rows = []
    for ref in store.list(bucket, prefix):
        uploaded = SAMPLE_KEY.search(ref.key)
        if uploaded and int(uploaded.group(1)) / 1000 < since:
            continue
        for line in store.get(bucket, ref.key).decode().splitlines():
            entry = json.loads(line) if line.strip() else {}
            if since <= entry.get("ts", 0) and (until is None or entry["ts"] <= until):
                rows.append(entry["features"])
    return rows
