"""How long a replica takes to become ready: registry mode against a model directory (``LASTMILE_SERVING_MODEL_DIR``).

    .venv/bin/python benchmarks/serving_startup.py            # 5 starts of each, alternating
    .venv/bin/python benchmarks/serving_startup.py --starts 9 --json

In a temporary directory it registers the iris pipeline in a SQLite-backed MLflow and downloads version 1 with the
``version.json`` a deployer writes. Then it starts ``python -m serving --host 127.0.0.1 --port <free>`` repeatedly,
alternating the two modes, and times each from the moment the process is spawned to the first ``GET /ready`` that
answers 200 (polled every 50 ms), and reads the CPU time the server had used by then (from /proc: unlike the wall
time, it hardly depends on what else the machine is doing); the server is stopped (its process group) before the
next start. Both modes serve ``models:/iris/1``; the registry one reads it through ``MLFLOW_TRACKING_URI``, the
other never imports MLflow. It prints the median, fastest and slowest start of each mode and the ratio of the
medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from support import REPO, ServerProcess, free_port, python_env, register_iris, run_benchmark

MODES = ("registry", "model_dir")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=5, help="starts per mode (default 5)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one start may take (default 120)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    if args.starts < 1:
        parser.error("--starts must be positive")
    return args


def time_one_start(root: Path, env: dict[str, str], mode: str, timeout: float) -> tuple[float, float | None]:
    """Seconds from spawn to ready, and the CPU seconds the server used to get there."""
    port = free_port()
    server = ServerProcess(f"python -m serving ({mode})",
                           [sys.executable, "-m", "serving", "--host", "127.0.0.1", "--port", str(port)],
                           env, REPO, root / f"serving-{mode}.log", f"http://127.0.0.1:{port}/ready")
    with server:
        return server.wait_until_answering(None, timeout), server.cpu_seconds()


def measure(args: argparse.Namespace, root: Path) -> dict:
    print(f"[{time.strftime('%H:%M:%S')}] registering and downloading the iris model in {root}", file=sys.stderr)
    model = register_iris(root, download=root / "downloaded")
    base = {**python_env(root), "LASTMILE_SERVING_MODEL_URI": f"models:/{model['name']}/{model['version']}",
            "LASTMILE_SERVING_REPLICA": "benchmark", "LASTMILE_SERVING_LOAD_RETRY_SECONDS": "0"}
    envs = {"registry": base, "model_dir": {**base, "LASTMILE_SERVING_MODEL_DIR": model["model_dir"]}}
    seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
    for start in range(args.starts):
        for mode in MODES if start % 2 == 0 else reversed(MODES):
            wall, used = time_one_start(root, envs[mode], mode, args.timeout)
            seconds[mode].append(round(wall, 3))
            cpu[mode].append(round(used, 2) if used is not None else float("nan"))
            print(f"[{time.strftime('%H:%M:%S')}] start {start + 1}/{args.starts} {mode:<9} ready after "
                  f"{wall:.2f} s ({cpu[mode][-1]:.2f} s of CPU)", file=sys.stderr, flush=True)
    medians = {mode: statistics.median(values) for mode, values in seconds.items()}
    return {"seconds": seconds, "cpu_seconds": cpu, "median_s": medians,
            "median_cpu_s": {mode: statistics.median(values) for mode, values in cpu.items()},
            "ratio": round(medians["registry"] / medians["model_dir"], 2),
            "cpus": os.cpu_count(), "load_average_at_start": args.load_average_at_start,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}


def render(summary: dict) -> str:
    lines = [f"process spawn to first /ready 200, {len(summary['seconds']['registry'])} starts per mode, "
             f"{summary['cpus']} CPUs, 1-min load average {summary['load_average_at_start'][0]} at start, "
             f"{summary['load_average_at_end'][0]} at end",
             f"{'mode':<40}{'median':>8}{'fastest':>9}{'slowest':>9}{'CPU (median)':>14}"]
    labels = {"registry": "registry (MLFLOW_TRACKING_URI)", "model_dir": "model dir (LASTMILE_SERVING_MODEL_DIR)"}
    for mode in MODES:
        values = summary["seconds"][mode]
        lines.append(f"{labels[mode]:<40}{summary['median_s'][mode]:>7.2f}s{min(values):>8.2f}s{max(values):>8.2f}s"
                     f"{summary['median_cpu_s'][mode]:>13.2f}s")
    lines.append(f"registry / model dir (medians): {summary['ratio']:.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(parse_args(argv), "lastmile-startup-", measure, render, lambda message: print(message, file=sys.stderr))

if __name__ == "__main__":
    sys.exit(main())
