"""The deployment's stable endpoint against one replica reached directly: HAProxy and the Python proxy, one run.

    .venv/bin/python benchmarks/stable_endpoint.py                 # 3 rounds of 10 s per target
    .venv/bin/python benchmarks/stable_endpoint.py --rounds 5 --seconds 15 --json

In a temporary directory it registers iris (StandardScaler + DecisionTreeClassifier) in a SQLite-backed MLflow and
downloads version 1, then starts two deployment controllers (``python -m adapters.local.deployer``), one with
``--balancer haproxy`` and one with ``--balancer python``, each rolling out two replicas of that version. ``wrk``
(1 thread, 8 connections) POSTs one valid single-row ``dataframe_split`` body to ``/invocations`` of: one replica
directly, the HAProxy endpoint, the Python proxy's endpoint; the order rotates from round to round. The table shows
medians over rounds and the ratios against the target of issue 12: through the endpoint (two replicas) at least the
throughput of one replica directly, at a p99 no more than 1.5 times the direct one. The machine's load average is
printed: on a shared machine the figures move with it. Exit status: 0 when the comparison ran, whatever it found;
1 when something broke; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from support import REPO, ServerProcess, free_port, python_env, register_iris, run_benchmark

TARGETS = ("direct", "haproxy", "python")
LABELS = {"direct": "one replica directly", "haproxy": "endpoint: HAProxy, 2 replicas",
          "python": "endpoint: Python proxy, 2 replicas"}
THROUGHPUT_TARGET, P99_TARGET = 1.0, 1.5
TOKEN = "benchmark-token"
WRK_SCRIPT = """wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="wrk runs per target, order rotating (default 3)")
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8), on 1 thread")
    parser.add_argument("--startup-timeout", type=float, default=180.0, help="seconds for the replicas to be ready")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, registry)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    if min(args.rounds, args.seconds, args.connections) < 1:
        parser.error("--rounds, --seconds and --connections must be positive")
    if shutil.which("wrk") is None:
        parser.error("wrk is not on PATH (Debian/Ubuntu: apt-get install wrk)")
    return args


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _call(url: str, method: str = "GET", body: dict | None = None) -> dict:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def start_controller(root: Path, balancer: str, model: dict, stack: ExitStack, timeout: float) -> dict:
    """A controller with two ready replicas of the model; its admin URL, its endpoint and its status."""
    state = root / balancer
    state.mkdir()
    (state / "token.sha256").write_text(hashlib.sha256(TOKEN.encode()).hexdigest())
    port, service = free_port(), free_port()
    admin = f"http://127.0.0.1:{port}"
    server = ServerProcess(f"controller ({balancer})", [
        sys.executable, "-m", "adapters.local.deployer", "--port", str(port), "--service-port", str(service),
        "--state-dir", str(state), "--token-sha256-file", str(state / "token.sha256"), "--name", "iris",
        "--replicas", "2", "--balancer", balancer], python_env(root), REPO, state / "controller.log",
        f"{admin}/healthz")
    stack.enter_context(server)
    server.wait_until_answering(None, 60)
    _call(f"{admin}/deployments/iris", "PUT", {
        "serving_digest": "sha256:benchmark", "bundle_dir": str(REPO), "model_name": "iris",
        "model_version": model["version"], "replicas": 2,
        "env": {"MLFLOW_TRACKING_URI": model["tracking_uri"], "LASTMILE_SERVING_MODEL_DIR": model["model_dir"],
                "LASTMILE_SERVING_PREDICTION_SAMPLE_RATE": "0", "LASTMILE_SERVING_LOG_LEVEL": "WARNING"}})
    deadline = time.monotonic() + timeout
    while True:
        status = _call(f"{admin}/deployments/iris")
        if status["ready"] == 2 and all(r["state"] == "ready" for r in status["replicas"]):
            return {"endpoint": f"http://127.0.0.1:{service}", "status": status}
        if time.monotonic() > deadline:
            raise TimeoutError(f"the {balancer} deployment was not ready in {timeout:.0f} s\n{server.log_tail()}")
        time.sleep(0.25)


def run_wrk(url: str, script: Path, args: argparse.Namespace) -> dict:
    done = subprocess.run(["wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds}s", "--latency", "-s",
                           str(script), url], capture_output=True, text=True, timeout=args.seconds + 30, check=True)
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": _ms(out, "50%"), "p99_ms": _ms(out, "99%"),
            "errors": errors + (int(non_2xx.group(1)) if non_2xx else 0)}


def _ms(out: str, percentile: str) -> float:
    value, unit = re.search(rf"^\s+{percentile}\s+([\d.]+)(us|ms|s)", out, re.M).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def compare(args: argparse.Namespace, root: Path) -> dict:
    say("registering iris in a throwaway MLflow")
    model = register_iris(root, download=root / "model")
    body = json.dumps({"dataframe_split": {"columns": model["columns"], "data": [model["row"]]}})
    script = root / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=body))
    with ExitStack() as stack:
        deployments = {b: start_controller(root, b, model, stack, args.startup_timeout) for b in ("haproxy", "python")}
        urls = {"direct": deployments["haproxy"]["status"]["replicas"][0]["address"] + "/invocations",
                **{b: d["endpoint"] + "/invocations" for b, d in deployments.items()}}
        runs: dict[str, list[dict]] = {t: [] for t in TARGETS}
        for number in range(args.rounds):
            order = TARGETS[number % 3:] + TARGETS[:number % 3]
            for target in order:
                run_wrk(urls[target], script, argparse.Namespace(**{**vars(args), "seconds": 1}))  # warm-up
                runs[target].append(run_wrk(urls[target], script, args))
                say(f"round {number + 1} {target}: {runs[target][-1]}")
    return summarize(runs, args)


def summarize(runs: dict[str, list[dict]], args: argparse.Namespace) -> dict:
    def median(target: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[target])

    medians = {t: {"rps": median(t, "rps"), "p50_ms": median(t, "p50_ms"), "p99_ms": median(t, "p99_ms"),
                   "errors": sum(run["errors"] for run in runs[t])} for t in TARGETS}
    direct = medians["direct"]
    ratios = {b: {"throughput": round(medians[b]["rps"] / direct["rps"], 2),
                  "p99": round(medians[b]["p99_ms"] / direct["p99_ms"], 2)} for b in ("haproxy", "python")}
    met = {b: r["throughput"] >= THROUGHPUT_TARGET and r["p99"] <= P99_TARGET and medians[b]["errors"] == 0
           for b, r in ratios.items()}
    return {"targets": medians, "ratios": ratios, "target_met": met, "rounds": args.rounds, "seconds": args.seconds,
            "connections": args.connections, "cpus": os.cpu_count(),
            "load_average_at_start": args.load_average_at_start,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()], "runs": runs}


def render(summary: dict) -> str:
    rows = [("", "req/s", "p50 ms", "p99 ms", "errors", "req/s vs direct", "p99 vs direct")]
    for target in TARGETS:
        figures = summary["targets"][target]
        ratio = summary["ratios"].get(target)
        rows.append((LABELS[target], f"{figures['rps']:.0f}", f"{figures['p50_ms']:.2f}", f"{figures['p99_ms']:.2f}",
                     str(figures["errors"]), f"{ratio['throughput']:.2f}x" if ratio else "",
                     f"{ratio['p99']:.2f}x" if ratio else ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"wrk, 1 thread, {summary['connections']} connections, one single-row POST /invocations; median of "
             f"{summary['rounds']} rounds of {summary['seconds']} s; {summary['cpus']} CPUs, load average "
             f"{summary['load_average_at_start']} at start, {summary['load_average_at_end']} at end"]
    lines += ["  ".join(cell.rjust(width) if i else cell.ljust(width) for i, (cell, width) in
                        enumerate(zip(row, widths, strict=True))) for row in rows]
    for balancer, met in summary["target_met"].items():
        lines.append(f"{LABELS[balancer]}: target (>= {THROUGHPUT_TARGET:g}x direct throughput, p99 <= "
                     f"{P99_TARGET:g}x direct, no errors) {'MET' if met else 'NOT MET'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(parse_args(argv), "lastmile-endpoint-", compare, render, say)


if __name__ == "__main__":
    sys.exit(main())
