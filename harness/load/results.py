"""A load run's figures from Locust's CSV files, and the SLO gates judged on them.

``<prefix>_stats.csv`` gives the totals and each request kind; ``<prefix>_stats_history.csv`` (``--csv-full-history``)
a row a second, from which the history's rates and error ratio are the differences of the cumulative counts
between rows. Its percentiles are Locust's "current" ones: over about the last 10 seconds
(``PERCENTILE_WINDOW_S``). Intended 4xx answers are successes to Locust (the locustfile marks them so), so every
failure counted here is an error of the service.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.load.payloads import INVALID_PREFIX
from harness.load.scenario import Gates

PERCENTILE_WINDOW_S = 10
AGGREGATED = "Aggregated"


def _number(text: str | None) -> float | None:
    if text in (None, "", "N/A"):
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _read(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


def history(rows: Iterable[Mapping[str, str]], started_at: float) -> list[dict[str, Any]]:
    """One point per history row of the aggregate: rates from the change of the cumulative counts since the row
    before, percentiles as Locust's window gives them."""
    points: list[dict[str, Any]] = []
    last_t, last_requests, last_failures = 0.0, 0.0, 0.0
    for row in rows:
        if row.get("Name") != AGGREGATED:
            continue
        t = (_number(row.get("Timestamp")) or started_at) - started_at
        requests = _number(row.get("Total Request Count")) or 0.0
        failures = _number(row.get("Total Failure Count")) or 0.0
        span = t - last_t
        if span <= 0 and points:
            continue
        d_requests, d_failures = requests - last_requests, failures - last_failures
        points.append({"t": round(t, 2), "rps": round(d_requests / span, 2) if span > 0 else 0.0,
                       "failures_per_s": round(d_failures / span, 2) if span > 0 else 0.0,
                       "error_ratio": round(d_failures / d_requests, 5) if d_requests > 0 else 0.0,
                       "p50_ms": _number(row.get("50%")), "p95_ms": _number(row.get("95%")),
                       "p99_ms": _number(row.get("99%")), "users": int(_number(row.get("User Count")) or 0),
                       "requests": int(requests), "failures": int(failures)})
        last_t, last_requests, last_failures = t, requests, failures
    return points


def by_request(rows: Iterable[Mapping[str, str]]) -> list[dict[str, Any]]:
    return [{"name": r["Name"], "method": r.get("Type", ""), "requests": int(_number(r["Request Count"]) or 0),
             "failures": int(_number(r["Failure Count"]) or 0), "p50_ms": _number(r.get("50%")),
             "p95_ms": _number(r.get("95%")), "p99_ms": _number(r.get("99%")),
             "rps": round(_number(r.get("Requests/s")) or 0.0, 2)}
            for r in rows if r.get("Name") != AGGREGATED]


def totals(rows: Iterable[Mapping[str, str]], kinds: list[dict[str, Any]], elapsed_s: float) -> dict[str, Any]:
    """The aggregate row, with the error ratio and the answered intended 4xx; rps over the run's elapsed time."""
    aggregate = next((r for r in rows if r.get("Name") == AGGREGATED), None) or {}
    requests = int(_number(aggregate.get("Request Count")) or 0)
    failures = int(_number(aggregate.get("Failure Count")) or 0)
    intended = sum(k["requests"] - k["failures"] for k in kinds if k["name"].startswith(INVALID_PREFIX))
    return {"requests": requests, "failures": failures, "intended_4xx": intended,
            "error_ratio": round(failures / requests, 6) if requests else 0.0,
            "rps": round(requests / elapsed_s, 2) if elapsed_s > 0 else 0.0,
            "p50_ms": _number(aggregate.get("50%")), "p95_ms": _number(aggregate.get("95%")),
            "p99_ms": _number(aggregate.get("99%")), "max_ms": _number(aggregate.get("Max Response Time"))}


def error_kinds(rows: Iterable[Mapping[str, str]]) -> dict[str, int]:
    """``<prefix>_failures.csv``: occurrences by error."""
    kinds: dict[str, int] = {}
    for r in rows:
        error = r.get("Error", "?")
        kinds[error] = kinds.get(error, 0) + int(_number(r.get("Occurrences")) or 0)
    return kinds


def percentile(response_times: Mapping[float, int], q: float) -> float | None:
    """Nearest-rank percentile (ms) of Locust's response-time histogram ``{ms: count}``."""
    count = sum(response_times.values())
    if not count:
        return None
    rank, seen = max(1, math.ceil(q * count)), 0
    for ms in sorted(response_times):
        seen += response_times[ms]
        if seen >= rank:
            return float(ms)
    return float(max(response_times))


def _entry(e: Mapping[str, Any], elapsed_s: float, times: Mapping[float, int]) -> dict[str, Any]:
    return {"name": e["name"], "method": e["method"], "requests": e["num_requests"], "failures": e["num_failures"],
            "p50_ms": percentile(times, 0.50), "p95_ms": percentile(times, 0.95), "p99_ms": percentile(times, 0.99),
            "rps": round(e["num_requests"] / elapsed_s, 2) if elapsed_s > 0 else 0.0}


def from_final(entries: list[Mapping[str, Any]], elapsed_s: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(totals, by_request)`` from Locust's final statistics (``--json-file``): exact, where the CSV files hold
    the last periodic write only."""
    kinds: list[dict[str, Any]] = []
    merged: dict[float, int] = {}
    for e in sorted(entries, key=lambda e: e["name"]):
        times = {float(ms): int(n) for ms, n in e["response_times"].items()}
        for ms, n in times.items():
            merged[ms] = merged.get(ms, 0) + n
        kinds.append(_entry(e, elapsed_s, times))
    requests, failures = sum(k["requests"] for k in kinds), sum(k["failures"] for k in kinds)
    intended = sum(k["requests"] - k["failures"] for k in kinds if k["name"].startswith(INVALID_PREFIX))
    top = max((e.get("max_response_time") or 0.0 for e in entries), default=None)
    totals_ = {"requests": requests, "failures": failures, "intended_4xx": intended,
               "error_ratio": round(failures / requests, 6) if requests else 0.0,
               "rps": round(requests / elapsed_s, 2) if elapsed_s > 0 else 0.0,
               "p50_ms": percentile(merged, 0.50), "p95_ms": percentile(merged, 0.95),
               "p99_ms": percentile(merged, 0.99), "max_ms": round(top, 2) if top is not None else None}
    return totals_, kinds


def final_span(prefix: Path) -> float:
    """Seconds from the first request to the last answer, by Locust's final statistics (0 without them)."""
    final = Path(f"{prefix}-final.json")
    if not final.is_file():
        return 0.0
    entries = json.loads(final.read_text())
    if not entries:
        return 0.0
    return max(e["last_request_timestamp"] or 0.0 for e in entries) - min(e["start_time"] for e in entries)


def read(prefix: Path, started_at: float, elapsed_s: float) -> dict[str, Any]:
    """``history``, ``totals``, ``by_request`` and ``error_kinds`` from the files at ``prefix``: the final
    statistics when Locust wrote them (at its end), else the CSV files it rewrites every second."""
    final = Path(f"{prefix}-final.json")
    if final.is_file():
        totals_, kinds = from_final(json.loads(final.read_text()), elapsed_s)
    else:
        stats = _read(Path(f"{prefix}_stats.csv"))
        kinds = by_request(stats)
        totals_ = totals(stats, kinds, elapsed_s)
    return {"history": history(_read(Path(f"{prefix}_stats_history.csv")), started_at),
            "totals": totals_, "by_request": kinds,
            "error_kinds": error_kinds(_read(Path(f"{prefix}_failures.csv")))}


_UNITS = {"p50_ms": "ms", "p95_ms": "ms", "p99_ms": "ms", "error_ratio": "", "min_rps": "req/s"}


def judge(gates: Gates, totals_: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each gate the scenario sets, with its limit, the run's figure and whether it passed. Latencies and the error
    ratio are upper limits, ``min_rps`` a lower one; a gate without a figure (nothing answered) fails."""
    judged = []
    for name, limit in gates.model_dump(exclude_none=True).items():
        actual = totals_.get("rps" if name == "min_rps" else name)
        unit = _UNITS[name]
        if actual is None or not totals_.get("requests"):
            passed, message = False, f"gate {name}: no figure (no request answered); limit {limit:g} {unit}".rstrip()
        elif name == "min_rps":
            passed = actual >= limit
            message = f"gate {name}: {actual:g} {unit} {'>=' if passed else '<'} {limit:g} {unit}"
        else:
            passed = actual <= limit
            shown = f"{actual:.4%}" if name == "error_ratio" else f"{actual:g} {unit}"
            bound = f"{limit:.4%}" if name == "error_ratio" else f"{limit:g} {unit}"
            message = f"gate {name}: {shown} {'<=' if passed else '>'} {bound}"
        judged.append({"name": name, "limit": limit, "actual": actual, "passed": passed, "message": message})
    return judged
