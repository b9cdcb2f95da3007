"""lastmile's model server against ``mlflow models serve``: same model, same load generator, same run.

    .venv/bin/python benchmarks/serving_vs_mlflow.py                # 3 rounds, 8 connections
    .venv/bin/python benchmarks/serving_vs_mlflow.py --concurrency 32 --rounds 5 --json

In a temporary directory it trains an iris pipeline (StandardScaler + DecisionTreeClassifier) and registers it as
version 1 of ``iris`` in a SQLite-backed MLflow, then starts, on free loopback ports,

  * ``mlflow models serve -m models:/iris/1 --env-manager local -w 1`` (MLflow's scoring server, one worker), and
  * ``python -m serving`` with ``LASTMILE_SERVING_MODEL_URI=models:/iris/1`` (one uvicorn worker, registry mode),

waits until both answer a prediction, and drives each in turn with ``benchmarks/http_load.py`` (a separate process:
keep-alive HTTP/1.1 connections POSTing one single-row ``dataframe_split`` body to ``/invocations``), alternating
which server goes first from round to round. The table shows the median over rounds of throughput, p50 and p99,
the errors of all rounds, and the ratios lastmile / MLflow. The target is >= 10x MLflow's throughput at an equal
or lower p99, without errors. Both servers are stopped (their whole process groups) however the run ends.
Exit status: 0 when the comparison ran, whatever it found; 1 when something broke; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from support import REPO, ServerProcess, free_port, python_env, register_iris, run_benchmark

LOAD_CLIENT = Path(__file__).with_name("http_load.py")
SERVERS = {"mlflow": "mlflow models serve", "lastmile": "python -m serving"}
TARGET_RATIO = 10.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="load runs per server, alternating (default 3)")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections (default 8)")
    parser.add_argument("--requests", type=int, default=5000, help="measured requests per run (default 5000)")
    parser.add_argument("--max-seconds", type=float, default=20.0, help="time cap per run (default 20)")
    parser.add_argument("--warmup", type=int, default=300, help="unmeasured requests before each run (default 300)")
    parser.add_argument("--startup-timeout", type=float, default=180.0,
                        help="seconds each server may take to answer its first prediction (default 180)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, registry)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    if min(args.rounds, args.concurrency, args.requests) < 1 or args.max_seconds <= 0:
        parser.error("--rounds, --concurrency, --requests and --max-seconds must be positive")
    return args


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def make_servers(root: Path, uri: str) -> dict[str, ServerProcess]:
    env = python_env(root)
    mlflow_port, lastmile_port = free_port(), free_port()
    mlflow = ServerProcess(
        SERVERS["mlflow"], [sys.executable, "-m", "mlflow", "models", "serve", "-m", uri, "--env-manager", "local",
                            "-h", "127.0.0.1", "-p", str(mlflow_port), "-w", "1"],
        env, root, root / "mlflow-serve.log", f"http://127.0.0.1:{mlflow_port}/invocations")
    lastmile = ServerProcess(
        SERVERS["lastmile"], [sys.executable, "-m", "serving", "--host", "127.0.0.1", "--port", str(lastmile_port)],
        {**env, "LASTMILE_SERVING_MODEL_URI": uri, "LASTMILE_SERVING_REPLICA": "benchmark"}, REPO,
        root / "lastmile-serving.log", f"http://127.0.0.1:{lastmile_port}/invocations")
    return {"mlflow": mlflow, "lastmile": lastmile}


def run_load(url: str, body_file: Path, args: argparse.Namespace) -> dict:
    command = [sys.executable, str(LOAD_CLIENT), url, "--body-file", str(body_file), "--requests", str(args.requests),
               "--concurrency", str(args.concurrency), "--warmup", str(args.warmup),
               "--max-seconds", str(args.max_seconds)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=args.max_seconds + 120)
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


def compare(args: argparse.Namespace, root: Path) -> dict:
    say(f"registering the iris model in {root}")
    model = register_iris(root)
    uri = f"models:/{model['name']}/{model['version']}"
    body_file = root / "body.json"
    body_file.write_text(json.dumps({"dataframe_split": {"columns": model["columns"], "data": [model["row"]]}}))
    runs: dict[str, list[dict]] = {name: [] for name in SERVERS}
    startup: dict[str, float] = {}
    with ExitStack() as stack:
        servers = make_servers(root, uri)
        for name, server in servers.items():
            say(f"starting {server.name}")
            stack.enter_context(server)
            startup[name] = server.wait_until_answering(body_file.read_bytes(), args.startup_timeout)
            say(f"{server.name} answers on {server.url} after {startup[name]:.1f} s")
        for round_number in range(args.rounds):
            order = list(SERVERS) if round_number % 2 == 0 else list(reversed(SERVERS))
            for name in order:
                result = run_load(servers[name].url, body_file, args)
                runs[name].append(result)
                say(f"round {round_number + 1}/{args.rounds} {SERVERS[name]:<20} {result['rps']:>9.1f} rps  "
                    f"p50 {result['p50_ms']} ms  p99 {result['p99_ms']} ms  errors {result['errors']}"
                    + ("  (time cap)" if result["capped"] else ""))
    return summarize(runs, startup, args)


def summarize(runs: dict[str, list[dict]], startup: dict[str, float], args: argparse.Namespace) -> dict:
    def median(name: str, key: str) -> float:
        values = [run[key] for run in runs[name] if run[key] is not None]
        return statistics.median(values) if values else float("nan")

    medians = {name: {"rps": median(name, "rps"), "p50_ms": median(name, "p50_ms"), "p99_ms": median(name, "p99_ms"),
                      "errors": sum(run["errors"] for run in runs[name]), "startup_s": round(startup[name], 2)}
               for name in SERVERS}
    ours, theirs = medians["lastmile"], medians["mlflow"]
    throughput_ratio = ours["rps"] / theirs["rps"] if theirs["rps"] else float("inf")
    p99_ratio = ours["p99_ms"] / theirs["p99_ms"] if theirs["p99_ms"] else float("inf")
    met = throughput_ratio >= TARGET_RATIO and p99_ratio <= 1.0 and ours["errors"] == 0
    per_round = [round(a["rps"] / b["rps"], 2) if b["rps"] else None for a, b in zip(runs["lastmile"], runs["mlflow"], strict=True)]
    return {"servers": medians, "throughput_ratio": round(throughput_ratio, 2), "p99_ratio": round(p99_ratio, 3),
            "throughput_ratio_per_round": per_round,
            "target_met": met, "rounds": args.rounds, "concurrency": args.concurrency, "requests": args.requests,
            "cpus": os.cpu_count(), "load_average_at_start": args.load_average_at_start,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()], "runs": runs}


def render(summary: dict) -> str:
    ours, theirs = summary["servers"]["lastmile"], summary["servers"]["mlflow"]
    rows = [("", SERVERS["mlflow"], SERVERS["lastmile"], "lastmile / mlflow"),
            ("throughput (rps)", f"{theirs['rps']:.1f}", f"{ours['rps']:.1f}", f"{summary['throughput_ratio']:.2f}x"),
            ("p50 latency (ms)", f"{theirs['p50_ms']:.2f}", f"{ours['p50_ms']:.2f}",
             f"{ours['p50_ms'] / theirs['p50_ms']:.3f}"),
            ("p99 latency (ms)", f"{theirs['p99_ms']:.2f}", f"{ours['p99_ms']:.2f}", f"{summary['p99_ratio']:.3f}"),
            ("errors (all rounds)", str(theirs["errors"]), str(ours["errors"]), ""),
            ("first answer after (s)", f"{theirs['startup_s']:.1f}", f"{ours['startup_s']:.1f}", "")]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"median of {summary['rounds']} rounds, {summary['concurrency']} connections, up to "
             f"{summary['requests']} single-row requests per run, {summary['cpus']} CPUs, 1-min load average "
             f"{summary['load_average_at_start'][0]} at start, {summary['load_average_at_end'][0]} at end"]
    lines += ["  ".join(cell.rjust(width) if i else cell.ljust(width) for i, (cell, width) in
                        enumerate(zip(row, widths, strict=True))) for row in rows]
    lines.append("throughput ratio round by round: " + ", ".join(
        f"{ratio:.2f}x" if ratio is not None else "n/a" for ratio in summary["throughput_ratio_per_round"]))
    verdict = "MET" if summary["target_met"] else "NOT MET"
    lines.append(f"target (>= {TARGET_RATIO:g}x throughput at equal or lower p99, no errors): {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(parse_args(argv), "lastmile-bench-", compare, render, say)

if __name__ == "__main__":
    sys.exit(main())
