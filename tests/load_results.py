"""A synthetic result of `lastmile load run`, shaped as result.json is, for the load report's tests."""

from __future__ import annotations

import math
from typing import Any


def synthetic_result(seconds: int = 60) -> dict[str, Any]:
    """A 25-user run sampled each second: a ramp-up, a burst of errors at 40 s, no percentiles in the first second."""
    history = []
    for t in range(seconds + 1):
        users = min(25, 5 * (t + 1))
        rps = 0.0 if t == 0 else users * 4.0 * (1 + 0.05 * math.sin(t / 3))
        burst = 40 <= t < 45
        error_ratio = 0.0 if t == 0 else (0.06 if burst else 0.002 * (1 + math.sin(t)))
        p50 = None if t == 0 else 18 + 3 * math.sin(t / 5) + (25 if burst else 0)
        history.append({"t": float(t), "rps": round(rps, 2), "failures_per_s": round(rps * error_ratio, 3),
                        "error_ratio": round(error_ratio, 4), "p50_ms": p50,
                        "p95_ms": None if p50 is None else p50 * 2.4, "p99_ms": None if p50 is None else p50 * 4.1,
                        "users": users})
    return {
        "id": "20261201-120000-smoke-ab12",
        "scenario": {"name": "smoke", "file": "scenarios/load/smoke.yaml", "mode": "users", "users": 25, "rate": None,
                     "spawn_rate": 5.0, "duration_s": float(seconds), "max_requests": 0},
        "target": "http://127.0.0.1:8080/invocations", "workers": 2, "started_at": 1796126400.0,
        "elapsed_s": float(seconds), "stopped_by": "duration", "history": history,
        "totals": {"requests": 5880, "failures": 33, "intended_4xx": 118, "error_ratio": 0.0056, "rps": 98.0,
                   "p50_ms": 19.0, "p95_ms": 46.0, "p99_ms": 81.0, "max_ms": 312.5},
        "by_request": [
            {"name": "predict", "method": "POST", "requests": 5644, "failures": 33, "p50_ms": 19.0, "p95_ms": 46.0,
             "p99_ms": 81.0, "rps": 94.07},
            {"name": "predict (bad input)", "method": "POST", "requests": 118, "failures": 0, "p50_ms": 4.0,
             "p95_ms": 9.0, "p99_ms": 12.0, "rps": 1.97},
            {"name": "health", "method": "GET", "requests": 118, "failures": 0, "p50_ms": 1.0, "p95_ms": 3.0,
             "p99_ms": 5.0, "rps": 1.97}],
        "gates": [
            {"name": "error_ratio", "limit": 0.01, "actual": 0.0056, "passed": True,
             "message": "0.56 % of requests failed (limit 1 %)"},
            {"name": "p95_ms", "limit": 40.0, "actual": 46.0, "passed": False,
             "message": "p95 latency 46 ms is over 40 ms"},
            {"name": "min_rps", "limit": 50.0, "actual": 98.0, "passed": True, "message": "98 req/s"}],
        "passed": False,
        "served_by": {"deployment": "iris-classifier", "model_name": "iris", "model_version": "7", "revision": 3,
                      "replicas_seen": ["iris-classifier-3-a1b2", "iris-classifier-3-c3d4"]},
        "replicas": [
            {"name": "iris-classifier-3-a1b2",
             "start": {"lastmile_predictions_total": 120.0, "process_resident_memory_bytes": 1.5e8},
             "end": {"lastmile_predictions_total": 3061.0, "process_resident_memory_bytes": 1.62e8}},
            {"name": "iris-classifier-3-c3d4",
             "start": {"lastmile_predictions_total": 98.0, "process_resident_memory_bytes": 1.49e8},
             "end": {"lastmile_predictions_total": 2819.0, "process_resident_memory_bytes": 1.58e8}}],
        "artifacts": {"locust_html": ".lastmile/load/20261201-120000-smoke-ab12/locust.html",
                      "locust_csv_prefix": ".lastmile/load/20261201-120000-smoke-ab12/locust",
                      "report_html": ".lastmile/load/20261201-120000-smoke-ab12/report.html"},
    }
