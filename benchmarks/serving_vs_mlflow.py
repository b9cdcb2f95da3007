"""lastmile's model server against ``mlflow models serve`` and the naive FastAPI app: same model, same client, one run.

    .venv/bin/python benchmarks/serving_vs_mlflow.py                      # 3 rounds, 8 connections
    .venv/bin/python benchmarks/serving_vs_mlflow.py --workers 1 2        # also python -m serving --workers 2
    .venv/bin/python benchmarks/serving_vs_mlflow.py --endpoint http://127.0.0.1:8080/invocations --json

In a temporary directory it trains an iris pipeline (StandardScaler + DecisionTreeClassifier) and registers it as
version 1 of ``iris`` in a SQLite-backed MLflow, then starts, on free loopback ports,

  * ``mlflow models serve -m models:/iris/1 --env-manager local -w 1`` (MLflow's scoring server, one worker),
  * ``benchmarks/naive_app.py`` (FastAPI, a pandas DataFrame, ``model.predict``, one uvicorn worker), and
  * ``python -m serving`` with ``LASTMILE_SERVING_MODEL_URI=models:/iris/1`` (registry mode), once per
    ``--workers`` count (default: one worker),

plus, with ``--endpoint URL``, an endpoint already running that serves a model with iris's four columns (the stable
endpoint in front of replicas, say): it is measured beside the direct replica, never started or stopped here.

It waits until each answers a prediction, then drives each in turn with ``benchmarks/http_load.py`` (a separate
process: keep-alive HTTP/1.1 connections POSTing one ``dataframe_split`` body to ``/invocations``), for two bodies:
a single row, and a batch of 100 rows. The order of the contenders rotates from round to round. The tables show,
per body, the median over rounds of throughput (requests/s, and rows/s), p50 and p99, the errors of all rounds, and
the ratios of one lastmile worker to each other contender. Targets for one worker: >= 20x MLflow's throughput and
>= 1.5x the naive app's, each at an equal or lower p99, without errors. The client shares the machine's cores with
the servers, and the load average is printed: figures move with what else runs. Servers started here are stopped
(their whole process groups) however the run ends. Exit status: 0 when the comparison ran, whatever it found;
1 when something broke; 130 when interrupted.
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

from support import REPO, ServerProcess, answers, free_port, python_env, register_iris, run_benchmark

LOAD_CLIENT = Path(__file__).with_name("http_load.py")
NAIVE_APP = Path(__file__).with_name("naive_app.py")
BODIES = {"single": 1, "batch": 100}
OURS = "lastmile"
TARGETS = {"mlflow": 20.0, "naive": 1.5}
"""The lowest throughput ratio of one lastmile worker over each contender (at an equal or lower p99)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="load runs per contender and body (default 3)")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections (default 8)")
    parser.add_argument("--requests", type=int, default=5000, help="measured requests per run at most (default 5000)")
    parser.add_argument("--max-seconds", type=float, default=10.0, help="time cap per run (default 10)")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests before each run (default 200)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1],
                        help="python -m serving contenders, one per worker count (default: 1)")
    parser.add_argument("--endpoint", help="URL of a running /invocations (same columns) to measure as well")
    parser.add_argument("--startup-timeout", type=float, default=180.0,
                        help="seconds each server may take to answer its first prediction (default 180)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, registry)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    args = parser.parse_args(argv)
    if min(args.rounds, args.concurrency, args.requests, *args.workers) < 1 or args.max_seconds <= 0:
        parser.error("--rounds, --concurrency, --requests, --workers and --max-seconds must be positive")
    if 1 not in args.workers:
        args.workers.insert(0, 1)
    return args


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def contender_names(args: argparse.Namespace) -> dict[str, str]:
    """Key to display name, in table order."""
    names = {"mlflow": "mlflow models serve", "naive": "naive FastAPI app"}
    for workers in args.workers:
        names[_ours(workers)] = "python -m serving" + (f" --workers {workers}" if workers > 1 else "")
    if args.endpoint:
        names["endpoint"] = "--endpoint"
    return names


def _ours(workers: int) -> str:
    return OURS if workers == 1 else f"{OURS}-w{workers}"


def make_servers(root: Path, uri: str, args: argparse.Namespace) -> dict[str, ServerProcess]:
    env = python_env(root)
    names = contender_names(args)

    def server(key: str, command: list[str], cwd: Path, extra_env: dict[str, str] | None = None) -> ServerProcess:
        port = free_port()
        return ServerProcess(names[key], [*command, "--port", str(port)], {**env, **(extra_env or {})}, cwd,
                             root / f"{key}.log", f"http://127.0.0.1:{port}/invocations")

    servers = {"mlflow": server("mlflow", [sys.executable, "-m", "mlflow", "models", "serve", "-m", uri,
                                           "--env-manager", "local", "-h", "127.0.0.1", "-w", "1"], root),
               "naive": server("naive", [sys.executable, str(NAIVE_APP), uri, "--host", "127.0.0.1"], root)}
    for workers in args.workers:
        servers[_ours(workers)] = server(
            _ours(workers), [sys.executable, "-m", "serving", "--host", "127.0.0.1",
                             *(["--workers", str(workers)] if workers > 1 else [])], REPO,
            {"LASTMILE_SERVING_MODEL_URI": uri, "LASTMILE_SERVING_REPLICA": "benchmark"})
    return servers


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
    bodies = {}
    for kind, rows in BODIES.items():
        bodies[kind] = root / f"{kind}.json"
        data = [model["row"]] if rows == 1 else model["batch"][:rows]
        bodies[kind].write_text(json.dumps({"dataframe_split": {"columns": model["columns"], "data": data}}))
    names = contender_names(args)
    urls: dict[str, str] = {}
    startup: dict[str, float] = {}
    runs: dict[str, dict[str, list[dict]]] = {kind: {key: [] for key in names} for kind in BODIES}
    with ExitStack() as stack:
        for key, server in make_servers(root, uri, args).items():
            say(f"starting {server.name}")
            stack.enter_context(server)
            startup[key] = server.wait_until_answering(bodies["single"].read_bytes(), args.startup_timeout)
            urls[key] = server.url
            say(f"{server.name} answers on {server.url} after {startup[key]:.1f} s")
        if args.endpoint:
            if not answers(args.endpoint, bodies["single"].read_bytes()):
                raise RuntimeError(f"--endpoint {args.endpoint} does not answer a single-row dataframe_split with 200")
            startup["endpoint"], urls["endpoint"] = 0.0, args.endpoint
        order = list(names)
        for round_number in range(args.rounds):
            turn = order[round_number % len(order):] + order[:round_number % len(order)]
            for kind in BODIES:
                for key in turn:
                    result = run_load(urls[key], bodies[kind], args)
                    runs[kind][key].append(result)
                    say(f"round {round_number + 1}/{args.rounds} {kind:<6} {names[key]:<28} {result['rps']:>9.1f} "
                        f"rps  p50 {result['p50_ms']} ms  p99 {result['p99_ms']} ms  errors {result['errors']}"
                        + ("  (time cap)" if result["capped"] else "") + f"  load {os.getloadavg()[0]:.2f}")
    return summarize(runs, startup, names, args)


def summarize(runs: dict[str, dict[str, list[dict]]], startup: dict[str, float], names: dict[str, str],
              args: argparse.Namespace) -> dict:
    tables = {}
    for kind, by_key in runs.items():
        medians = {key: _medians(results, BODIES[kind]) | {"startup_s": round(startup[key], 2)}
                   for key, results in by_key.items()}
        ours = medians[OURS]
        ratios = {key: {"throughput": _ratio(ours["rps"], m["rps"]), "p99": _ratio(ours["p99_ms"], m["p99_ms"])}
                  for key, m in medians.items() if key != OURS}
        verdicts = {key: ratios[key]["throughput"] >= target and ratios[key]["p99"] <= 1.0 and ours["errors"] == 0
                    for key, target in TARGETS.items()}
        per_round = {key: [_ratio(a["rps"], b["rps"]) for a, b in zip(by_key[OURS], by_key[key], strict=True)]
                     for key in TARGETS}
        tables[kind] = {"rows_per_request": BODIES[kind], "servers": medians, "ratios": ratios,
                        "throughput_ratio_per_round": per_round, "targets_met": verdicts}
    return {"bodies": tables, "names": names, "targets": TARGETS, "rounds": args.rounds,
            "concurrency": args.concurrency, "requests": args.requests, "max_seconds": args.max_seconds,
            "cpus": os.cpu_count(), "load_average_at_start": args.load_average_at_start,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "all_targets_met": all(all(t["targets_met"].values()) for t in tables.values()), "runs": runs}


def _medians(results: list[dict], rows: int) -> dict:
    def median(key: str) -> float:
        values = [run[key] for run in results if run[key] is not None]
        return statistics.median(values) if values else float("nan")

    return {"rps": median("rps"), "rows_per_s": round(median("rps") * rows, 1), "p50_ms": median("p50_ms"),
            "p99_ms": median("p99_ms"), "errors": sum(run["errors"] for run in results)}


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("inf")


def render(summary: dict) -> str:
    names = summary["names"]
    lines = [f"median of {summary['rounds']} rounds, {summary['concurrency']} connections, up to "
             f"{summary['requests']} requests or {summary['max_seconds']:g} s per run, {summary['cpus']} CPUs shared "
             f"with the load client; 1-min load average {summary['load_average_at_start'][0]} at start, "
             f"{summary['load_average_at_end'][0]} at end"]
    for table in summary["bodies"].values():
        header = ("", "req/s", "rows/s", "p50 ms", "p99 ms", "errors", "lastmile x", "p99 ratio", "first answer s")
        rows = [header]
        for key, m in table["servers"].items():
            ratio = None if key.startswith(OURS) else table["ratios"].get(key)
            rows.append((names[key], f"{m['rps']:.1f}", f"{m['rows_per_s']:.0f}", f"{m['p50_ms']:.2f}",
                         f"{m['p99_ms']:.2f}", str(m["errors"]), f"{ratio['throughput']:.2f}" if ratio else "",
                         f"{ratio['p99']:.3f}" if ratio else "", f"{m['startup_s']:.1f}"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines.append(f"\n{table['rows_per_request']} row(s) per request:")
        lines += ["  ".join(cell.rjust(width) if i else cell.ljust(width)
                            for i, (cell, width) in enumerate(zip(row, widths, strict=True))) for row in rows]
        for key, target in summary["targets"].items():
            rounds = ", ".join(f"{r:.2f}x" for r in table["throughput_ratio_per_round"][key])
            verdict = "MET" if table["targets_met"][key] else "NOT MET"
            lines.append(f"  vs {names[key]}: >= {target:g}x throughput at equal or lower p99, no errors: {verdict}"
                         f" (round by round {rounds})")
        for key in table["servers"]:
            if key.startswith(OURS) and key != OURS:
                scaling = 1 / table["ratios"][key]["throughput"] if table["ratios"][key]["throughput"] else 0.0
                lines.append(f"  {names[key]}: {scaling:.2f}x the throughput of one worker")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(parse_args(argv), "lastmile-bench-", compare, render, say)


if __name__ == "__main__":
    sys.exit(main())
