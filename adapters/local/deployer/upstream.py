"""What the Service measures for each replica: the time from sending a request to it until its whole answer is back.

A replica's own ``/metrics`` time the request inside its server; a slow network hop between the Service and that
replica (a fault-proxy toxic on its route, a congested node) does not show there. The Service's histogram does
(fed by HAProxy's access log, :mod:`.haproxy`, at its millisecond resolution; or timed by the Python proxy),
and the controller appends it to the replica's own exposition text (``GET /deployments/{name}/metrics``), so
observation reads both through the same Deployer port call.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest

NAME = "lastmile_service_upstream_duration_seconds"
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UNMATCHED = "unmatched"
"""The route label of requests the replica answered 404: unknown paths must not grow the label set."""


class UpstreamLatency:
    """One replica's histogram, in a registry of its own so that its text is that replica's alone."""

    def __init__(self, replica: str):
        self.registry = CollectorRegistry()
        self._histogram = Histogram(NAME, "Time from the Service sending a request to a replica until its answer is "
                                    "back, the hop included", ["replica", "route"], buckets=BUCKETS,
                                    registry=self.registry)
        self.replica = replica

    def observe(self, path: str, status: int, seconds: float) -> None:
        self._histogram.labels(self.replica, path if status != 404 else UNMATCHED).observe(seconds)

    def text(self) -> str:
        return generate_latest(self.registry).decode()
