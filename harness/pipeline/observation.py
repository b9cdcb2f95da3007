"""Observation: each replica's Prometheus metrics, read through the Deployer port, summarised as health, rate,
latency and errors per replica and in total."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from harness.domain.records import ReplicaMetrics

REQUESTS = "lastmile_serving_requests"
LATENCY = "lastmile_serving_request_duration_seconds"
MODEL_INFO = "lastmile_serving_model_info"
SCORING_ROUTES = ("/invocations", "/predict")


@dataclass(frozen=True)
class Sample:
    """One scrape of one replica: request counts by status and the latency histogram, cumulative."""

    requests: float
    errors: float
    buckets: tuple[tuple[float, float], ...]  # (upper bound, cumulative count)
    version: str | None


@dataclass(frozen=True)
class ReplicaView:
    name: str
    health: str
    version: str | None
    rate: float
    p50_ms: float | None
    p95_ms: float | None
    error_rate: float


def parse(text: str | None) -> Sample | None:
    """One replica's exposition text as a :class:`Sample`; None when the replica did not answer."""
    if text is None:
        return None
    requests = errors = 0.0
    buckets: dict[float, float] = {}
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
            elif s.name == MODEL_INFO and s.value == 1:
                version = s.labels.get("model_version")
    return Sample(requests, errors, tuple(sorted(buckets.items())), version)


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
    before_buckets = dict(before.buckets)
    return Sample(after.requests - before.requests, after.errors - before.errors,
                  tuple((b, c - before_buckets.get(b, 0.0)) for b, c in after.buckets), after.version)


def view(name: str, state: str, window: Sample | None, seconds: float) -> ReplicaView:
    if window is None:
        return ReplicaView(name, state if state != "ready" else "unreachable", None, 0.0, None, None, 0.0)
    p50, p95 = quantile(window.buckets, 0.5), quantile(window.buckets, 0.95)
    return ReplicaView(name, state, window.version, window.requests / seconds if seconds else 0.0,
                       p50 * 1000 if p50 is not None else None, p95 * 1000 if p95 is not None else None,
                       window.errors / window.requests if window.requests else 0.0)


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
                   _merge(w.buckets for w in windows), None)
    versions = {v.version for v in views if v.version}
    summary = view("total", f"{sum(v.health == 'ready' for v in views)}/{len(views)} ready", total, seconds)
    return views, ReplicaView(**{**summary.__dict__, "version": ",".join(sorted(versions)) or None})


def _merge(bucket_sets: Iterable[tuple[tuple[float, float], ...]]) -> tuple[tuple[float, float], ...]:
    merged: dict[float, float] = {}
    for buckets in bucket_sets:
        for bound, count in buckets:
            merged[bound] = merged.get(bound, 0.0) + count
    return tuple(sorted(merged.items()))
