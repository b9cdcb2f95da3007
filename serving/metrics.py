"""Prometheus metrics of one app instance, in a registry of its own (never the process-global one)."""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServingMetrics:
    """Requests by route and status, their latency, predictions by class, which model is served, and how many
    sampled prediction lines were shipped to object storage or dropped."""

    def __init__(self, replica: str):
        self.registry = CollectorRegistry()
        self.replica = replica
        self.requests = Counter("lastmile_serving_requests_total", "HTTP requests answered",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("lastmile_serving_request_duration_seconds", "Time to answer a request",
                                 ["route", "status"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.predictions = Counter("lastmile_serving_predictions_total", "Rows predicted, by predicted class",
                                   ["class"], registry=self.registry)
        self.rows = Counter("lastmile_serving_rows_total", "Rows scored, by route", ["route"], registry=self.registry)
        self.model_info = Gauge("lastmile_serving_model_info", "The model version this replica serves (value 1)",
                                ["model_name", "model_version", "run_id", "build_digest", "replica"],
                                registry=self.registry)
        self.ready = Gauge("lastmile_serving_ready", "1 when the model is loaded and answers, else 0",
                           registry=self.registry)
        self.samples_shipped = Counter("lastmile_serving_samples_shipped_total", "Sampled prediction lines uploaded to "
                                       "object storage", registry=self.registry)
        self.samples_dropped = Counter("lastmile_serving_samples_dropped_total", "Sampled prediction lines given up "
                                       "(buffer full, or left at shutdown)", registry=self.registry)
        self._children: dict[tuple, tuple] = {}
        self._counters: dict[tuple, Counter] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self.requests.labels(route, method, str(status)),
                                               self.latency.labels(route, str(status)))
        children[0].inc()
        children[1].observe(seconds)

    def count_predictions(self, route: str, predictions: list, classified: bool) -> None:
        """Count rows; by class too when the model is a classifier (a regressor's values would be unbounded)."""
        self._child(self.rows, route).inc(len(predictions))
        if not classified:
            return
        if len(predictions) == 1:
            self._child(self.predictions, str(predictions[0])).inc()
            return
        for label, count in Tally(predictions).items():
            self._child(self.predictions, str(label)).inc(count)

    def _child(self, counter: Counter, label: str) -> Counter:
        """``counter.labels(label)``, looked up once (``labels`` costs a lock and a validation per call)."""
        key = (id(counter), label)
        child = self._counters.get(key)
        if child is None:
            child = self._counters[key] = counter.labels(label)
        return child

    def set_model(self, name: str, version: str, run_id: str | None, build_digest: str) -> None:
        self.model_info.clear()
        self.model_info.labels(name, version, run_id or "", build_digest, self.replica).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
