"""lastmile's own report of a load run: one HTML file that opens offline (inline CSS, charts as inline SVG).

``render(result)`` takes the ``result.json`` that ``lastmile load run`` writes; ``python -m harness.load.report
RESULT_JSON`` renders a kept one again. Every string from the result is escaped (scenario names, URLs and messages
are user input), and a missing part (no history, no served_by, a null percentile) shows as "no data".
"""

from __future__ import annotations

import argparse
import json
import math
import posixpath
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from harness.load.charts import Limit, Series, line_chart
from harness.load.report_style import CSS

STOP_REASONS = {"duration": "duration reached", "max_requests": "request limit reached",
                "signal": "stopped by a signal", "error": "stopped by an error"}
BLUE, RED, GREEN, AMBER, PURPLE, TEAL = "#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2"
NO_DATA = '<p class="no-data">no data</p>'
LIMIT_COLORS = {"p50": "#166534", "p95": "#92400e", "p99": "#5b21b6"}  # darker than the line they bound
_PERCENTILE = re.compile(r"(?<![a-z0-9])p(50|95|99)(?![0-9])")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def render(result: Mapping[str, Any]) -> str:
    """The report of one load run as a self-contained HTML document."""
    scenario = _mapping(result.get("scenario"))
    title = f"Load report: {scenario.get('name') or 'unnamed scenario'}"
    body = [_header(result, scenario), _totals(_mapping(result.get("totals"))),
            _section("Over time", _charts(result)), _section("Gates", _gates(result.get("gates"))),
            _section("Model that served the load", _served_by(result.get("served_by"))),
            _section("Per request type", _by_request(result.get("by_request"))),
            _section("Replicas' own view (/metrics, start to end)", _replicas(result.get("replicas"))),
            _section("Locust's own reports", _artifacts(_mapping(result.get("artifacts"))))]
    footer = f'<footer>lastmile load report · run {_text(result.get("id"))}</footer>'
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head>"
            f"<body><main>{''.join(body)}{footer}</main></body></html>\n")


# Values --------------------------------------------------------------------------------------------
def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _rows(value: Any) -> list[Mapping[str, Any]]:
    return [row for row in value if isinstance(row, Mapping)] if isinstance(value, list) else []


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _text(value: Any) -> str:
    return escape(str(value)) if value not in (None, "") else '<span class="no-data">no data</span>'


def _fmt(value: Any, unit: str = "") -> str:
    """A number for a table: integers as they are, others to four significant digits; null as "no data"."""
    number = _num(value)
    if number is None:
        return _text(value) if value is not None and not isinstance(value, int | float) else _text(None)
    shown = f"{int(number):,}" if number.is_integer() and abs(number) < 1e15 else f"{number:.4g}"
    return f"{shown}{unit}"


def _percent(value: Any) -> str:
    number = _num(value)
    return _text(None) if number is None else f"{number * 100:.3g} %"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return _text(None)
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{seconds:.3g} s"


def _section(title: str, content: str) -> str:
    return f'<section><h2>{escape(title)}</h2>{content}</section>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], cls: str, align: str) -> str:
    """A table of already-escaped cells; ``align`` has one letter a column: l(eft), n(umeric) or c(entre)."""
    classes = [{"l": "", "n": " class=num", "c": " class=mid"}[a] for a in align]
    head = "".join(f"<th{c}>{escape(h)}</th>" for c, h in zip(classes, headers, strict=True))
    body = "".join("<tr>" + "".join(f"<td{c}>{cell}</td>" for c, cell in zip(classes, row, strict=True)) + "</tr>"
                   for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


# Sections ------------------------------------------------------------------------------------------
def _header(result: Mapping[str, Any], scenario: Mapping[str, Any]) -> str:
    passed = result.get("passed")
    verdict, cls = ("PASS", "pass") if passed is True else ("FAIL", "fail") if passed is False else ("NO VERDICT", "none")
    gates = _rows(result.get("gates"))
    held = sum(1 for g in gates if g.get("passed") is True)
    summary = f"{held} of {len(gates)} gates passed" if gates else "no gates defined"
    started = _num(result.get("started_at"))
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)) if started is not None else None
    stop = result.get("stopped_by")
    load = (f"{_fmt(scenario.get('rate'))} requests/s (constant rate)" if scenario.get("mode") == "rate"
            else f"{_fmt(scenario.get('users'))} users, spawning {_fmt(scenario.get('spawn_rate'))}/s")
    facts = [("Target", _text(result.get("target"))), ("Scenario file", _text(scenario.get("file"))),
             ("Load", load), ("Workers", _fmt(result.get("workers"))), ("Started", _text(when)),
             ("Duration", _duration(_num(result.get("elapsed_s")))),
             ("Stopped", _text(STOP_REASONS.get(stop, stop) if isinstance(stop, str) else stop))]
    dl = "".join(f"<div><dt>{escape(k)}</dt><dd>{v}</dd></div>" for k, v in facts)
    return (f'<header><div class="verdict {cls}" data-verdict="{cls}">{verdict}<small>{escape(summary)}</small></div>'
            f'<div><h1>{_text(scenario.get("name"))}</h1><dl class="facts">{dl}</dl></div></header>')


def _totals(totals: Mapping[str, Any]) -> str:
    cards = [("Requests", _fmt(totals.get("requests"))), ("Failures", _fmt(totals.get("failures"))),
             ("Error ratio", _percent(totals.get("error_ratio"))), ("Intended 4xx", _fmt(totals.get("intended_4xx"))),
             ("Throughput", _fmt(totals.get("rps"), " req/s")), ("p50", _fmt(totals.get("p50_ms"), " ms")),
             ("p95", _fmt(totals.get("p95_ms"), " ms")), ("p99", _fmt(totals.get("p99_ms"), " ms")),
             ("Max", _fmt(totals.get("max_ms"), " ms"))]
    return '<div class="totals">' + "".join(f"<div><span>{k}</span><b>{v}</b></div>" for k, v in cards) + "</div>"


def _charts(result: Mapping[str, Any]) -> str:
    history = sorted((row for row in _rows(result.get("history")) if _num(row.get("t")) is not None),
                     key=lambda row: row["t"])

    def points(field: str, scale: float = 1.0) -> list[tuple[float, float | None]]:
        out = []
        for row in history:
            y = _num(row.get(field))
            out.append((float(row["t"]), None if y is None else y * scale))
        return out

    gates = [(g, lim) for g in _rows(result.get("gates")) if (lim := _num(g.get("limit"))) is not None]
    error_limits = [Limit(f"gate {_plain(g.get('name'))} ≤ {lim * 100:.3g} %", lim * 100)
                    for g, lim in gates if _gate_kind(g) == "error_ratio"]
    latency_limits = [Limit(f"gate {_plain(g.get('name'))} ≤ {lim:.4g} ms", lim, LIMIT_COLORS[kind])
                      for g, lim in gates if (kind := _gate_kind(g)) in LIMIT_COLORS]
    charts = [
        ("throughput", "Throughput", line_chart("throughput", "Throughput", "per second", [
            Series("requests/s", points("rps"), BLUE), Series("failures/s", points("failures_per_s"), RED)])),
        ("latency", "Latency percentiles", line_chart("latency", "Latency percentiles", "milliseconds", [
            Series("p50", points("p50_ms"), GREEN), Series("p95", points("p95_ms"), AMBER),
            Series("p99", points("p99_ms"), PURPLE)], limits=latency_limits)),
        ("error_ratio", "Error ratio (intended 4xx excluded)", line_chart(
            "error_ratio", "Error ratio", "% of requests", [Series("error ratio", points("error_ratio", 100), RED)],
            limits=error_limits)),
        ("users", "Users", line_chart("users", "Users", "users", [Series("users", points("users"), TEAL)])),
    ]
    figures = []
    for key, title, svg in charts:
        drawn = 'data-points="0"' not in svg
        content = svg if drawn else f'<p class="no-data" data-chart="{key}" data-points="0">no data over time</p>'
        figures.append(f"<figure><figcaption>{escape(title)}</figcaption>{content}</figure>")
    return '<div class="charts">' + "".join(figures) + "</div>"


def _plain(value: Any) -> str:
    return str(value) if value is not None else ""


def _gate_kind(gate: Mapping[str, Any]) -> str:
    """Which chart a gate's limit belongs on, from its name: "error_ratio", "p50", "p95", "p99" or ""."""
    name = re.sub(r"[\s-]+", "_", _plain(gate.get("name")).lower())
    if "error_ratio" in name:
        return "error_ratio"
    percentile = _PERCENTILE.search(name)
    return percentile.group(0) if percentile else ""


def _gates(value: Any) -> str:
    gates = _rows(value)
    if not gates:
        return '<p class="no-data">no gates defined</p>'
    rows = []
    for g in gates:
        ok = g.get("passed") is True
        badge = f'<span class="badge {"pass" if ok else "fail"}">{"pass" if ok else "fail"}</span>'
        rows.append([_text(g.get("name")), _fmt(g.get("limit")), _fmt(g.get("actual")), badge, _text(g.get("message"))])
    return _table(["Gate", "Limit", "Actual", "Result", "Message"], rows, "gates", "lnncl")


def _served_by(value: Any) -> str:
    served = _mapping(value)
    if not served:
        return '<p class="no-data">no data: the run did not record which model served it</p>'
    seen = served.get("replicas_seen")
    replicas = ", ".join(escape(str(r)) for r in seen) if isinstance(seen, list) and seen else _text(None)
    facts = [("Deployment", _text(served.get("deployment"))), ("Model", _text(served.get("model_name"))),
             ("Version", _text(served.get("model_version"))), ("Revision", _text(served.get("revision"))),
             ("Replicas seen", replicas)]
    return '<dl class="facts served">' + "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in facts) + "</dl>"


def _by_request(value: Any) -> str:
    rows = [[_text(r.get("name")), _text(r.get("method")), _fmt(r.get("requests")), _fmt(r.get("failures")),
             _fmt(r.get("rps")), _fmt(r.get("p50_ms")), _fmt(r.get("p95_ms")), _fmt(r.get("p99_ms"))]
            for r in _rows(value)]
    if not rows:
        return NO_DATA
    return _table(["Name", "Method", "Requests", "Failures", "req/s", "p50 ms", "p95 ms", "p99 ms"], rows,
                  "by-request", "llnnnnnn")


def _cell(value: Any, divisor: float, unit: str) -> tuple[float | None, str]:
    """A replica metric as a number (divided, for bytes as MiB) and as its table cell; strings stay as they are."""
    number = _num(value)
    if number is None:
        return None, _fmt(value)
    number = round(number / divisor, 1) if divisor != 1 else number
    return number, _fmt(number, unit)


def _replicas(value: Any) -> str:
    rows = []
    for replica in _rows(value):
        start, end = _mapping(replica.get("start")), _mapping(replica.get("end"))
        for metric in sorted({*start, *end}, key=str):
            # RSS reads better as 150.0 MiB than as 157,286,400
            divisor, unit = (2**20, " MiB") if str(metric).endswith("_bytes") else (1, "")
            (before, before_cell), (after, after_cell) = (_cell(start.get(metric), divisor, unit),
                                                          _cell(end.get(metric), divisor, unit))
            change = _fmt(after - before, unit) if before is not None and after is not None else _text(None)
            if before is not None and after is not None and after > before:
                change = "+" + change
            rows.append([_text(replica.get("name")), _text(metric), before_cell, after_cell, change])
    if not rows:
        return NO_DATA
    return _table(["Replica", "Metric", "Start", "End", "Change"], rows, "replicas", "llnnn")


def _artifacts(artifacts: Mapping[str, Any]) -> str:
    """Links relative to the report's own folder, so the run's folder can move as a whole."""
    base = posixpath.dirname(_plain(artifacts.get("report_html")))
    prefix = _plain(artifacts.get("locust_csv_prefix"))
    wanted = [("Locust's HTML report", _plain(artifacts.get("locust_html")))]
    if prefix:
        wanted += [(f"Locust's CSV: {kind}", f"{prefix}_{kind}.csv") for kind in ("stats", "stats_history", "failures")]
    items = [f"<li>{escape(label)}: {_link(path, base)}</li>" for label, path in wanted if path]
    return f'<ul class="artifacts">{"".join(items)}</ul>' if items else NO_DATA


def _link(path: str, base: str) -> str:
    if _SCHEME.match(path):  # a URL, or javascript:, is shown and never followed
        return f"<code>{escape(path)}</code>"
    comparable = path.startswith("/") == base.startswith("/")
    relative = posixpath.relpath(path, base or ".") if comparable else path
    return f'<a href="{escape(relative)}"><code>{escape(relative)}</code></a>'


# Command line --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.load.report",
                                     description="Render lastmile's HTML report of a load run from its result.json.")
    parser.add_argument("result", metavar="RESULT_JSON", help="the result.json that `lastmile load run` wrote")
    parser.add_argument("-o", "--out", metavar="OUT_HTML",
                        help="where to write the report (default: report.html next to RESULT_JSON)")
    args = parser.parse_args(argv)
    source = Path(args.result)
    try:
        result = json.loads(source.read_text())
    except (OSError, ValueError) as exc:
        parser.exit(1, f"lastmile load report: cannot read {source}: {exc}\n")
    if not isinstance(result, dict):
        parser.exit(1, f"lastmile load report: {source} holds no JSON object\n")
    out = Path(args.out) if args.out else source.with_name("report.html")
    out.write_text(render(result), encoding="utf-8")
    print(f"lastmile load report: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
