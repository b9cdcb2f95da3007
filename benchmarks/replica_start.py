"""A replica's start to ready as a container against as a process; optionally the stable endpoint's throughput with
container replicas against process replicas.

    .venv/bin/python benchmarks/replica_start.py                       # 5 cold starts of each, alternating
    .venv/bin/python benchmarks/replica_start.py --starts 9 --throughput --json

In a temporary directory it registers iris in a SQLite-backed MLflow and downloads version 1 (the model copy a
deployer hands its replicas). A *process* start is ``python -m serving --host 127.0.0.1 --port N`` from this checkout;
a *container* start is the ``docker run`` the controller's container runtime builds (:mod:`adapters.local.deployer.
containers`: the serving image, host network, the image's user, the model copy mounted read-only), so it includes
the container's creation. Both are timed from the spawn to the first ``GET /ready`` that answers 200 (polled every
50 ms), alternating, each stopped before the next. With ``--throughput`` it then starts a deployment controller per
runtime in turn (two replicas, HAProxy) and runs ``wrk`` (1 thread, 8 connections, one single-row POST
``/invocations``) against each endpoint. The load average is printed: on a shared machine the figures move with it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path

from stable_endpoint import WRK_SCRIPT, run_wrk
from support import REPO, ServerProcess, free_port, python_env, register_iris, run_benchmark

from adapters.local.deployer.containers import LABEL_STATE_DIR, ContainerRuntime, remove_labelled

RUNTIMES = ("process", "container")
TOKEN = "benchmark-token"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=5, help="cold starts per runtime (default 5)")
    parser.add_argument("--image", default="lastmile-serving:dev",
                        help="the serving image (default lastmile-serving:dev)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one start may take (default 120)")
    parser.add_argument("--throughput", action="store_true", help="also wrk each runtime's stable endpoint")
    parser.add_argument("--rounds", type=int, default=3, help="with --throughput: wrk runs per runtime (default 3)")
    parser.add_argument("--seconds", type=int, default=10, help="with --throughput: length of each run (default 10)")
    parser.add_argument("--connections", type=int, default=8, help="with --throughput: wrk connections (default 8)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, registry)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    if min(args.starts, args.rounds, args.seconds, args.connections) < 1:
        parser.error("--starts, --rounds, --seconds and --connections must be positive")
    return args


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def readable(root: Path) -> None:
    """The temporary directory and the model copy readable by the image's user (the containers run as it)."""
    root.chmod(0o755)
    for entry in root.rglob("*"):
        entry.chmod(entry.stat().st_mode | (0o555 if entry.is_dir() else 0o444))


def time_one_start(root: Path, runtime: str, image: str, containers: ContainerRuntime, model: dict,
                   timeout: float) -> float:
    port = free_port()
    replica_env = {"LASTMILE_SERVING_MODEL_URI": f"models:/{model['name']}/{model['version']}",
                   "LASTMILE_SERVING_MODEL_DIR": model["model_dir"], "LASTMILE_SERVING_REPLICA": "benchmark",
                   "LASTMILE_SERVING_PREDICTION_SAMPLE_RATE": "0"}
    if runtime == "container":
        run = containers.command(image, "benchmark", ["--port", str(port)], replica_env, interactive=False,
                                 environ={k: v for k, v in os.environ.items() if k.startswith("DOCKER_")} |
                                 {"PATH": os.environ["PATH"]})
        command, env = run.argv, run.env
    else:
        command = [sys.executable, "-m", "serving", "--host", "127.0.0.1", "--port", str(port)]
        env = {**python_env(root), **replica_env}
    with ServerProcess(f"replica ({runtime})", command, env, REPO, root / f"replica-{runtime}.log",
                       f"http://127.0.0.1:{port}/ready") as server:
        return server.wait_until_answering(None, timeout)


def _call(url: str, method: str = "GET", body: dict | None = None) -> dict:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def endpoint_throughput(root: Path, runtime: str, image: str, model: dict, script: Path,
                        args: argparse.Namespace) -> list[dict]:
    state = root / f"controller-{runtime}"
    state.mkdir()
    (state / "token.sha256").write_text(hashlib.sha256(TOKEN.encode()).hexdigest())
    port, service = free_port(), free_port()
    admin = f"http://127.0.0.1:{port}"
    serving = {"image": image} if runtime == "container" else {"bundle_dir": str(REPO)}
    with ServerProcess(f"controller ({runtime})", [
            sys.executable, "-m", "adapters.local.deployer", "--port", str(port), "--service-port", str(service),
            "--state-dir", str(state), "--token-sha256-file", str(state / "token.sha256"), "--name", "iris",
            "--replicas", "2", "--runtime", runtime], python_env(root), REPO, state / "controller.log",
            f"{admin}/healthz") as controller:
        controller.wait_until_answering(None, 60)
        _call(f"{admin}/deployments/iris", "PUT", {
            "serving_digest": "sha256:benchmark", **serving, "model_name": "iris", "model_version": model["version"],
            "replicas": 2, "env": {"MLFLOW_TRACKING_URI": model["tracking_uri"],
                                   "LASTMILE_SERVING_MODEL_DIR": model["model_dir"],
                                   "LASTMILE_SERVING_PREDICTION_SAMPLE_RATE": "0",
                                   "LASTMILE_SERVING_LOG_LEVEL": "WARNING"}})
        deadline = time.monotonic() + args.timeout
        while True:
            status = _call(f"{admin}/deployments/iris")
            if status["ready"] == 2 and status["standby"] == "warm":  # the standby warm: nothing else starting
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {runtime} deployment was not ready\n{controller.log_tail()}")
            time.sleep(0.25)
        url = f"http://127.0.0.1:{service}/invocations"
        run_wrk(url, script, argparse.Namespace(**{**vars(args), "seconds": 1}))  # warm-up
        runs = []
        for number in range(args.rounds):
            runs.append(run_wrk(url, script, args))
            say(f"{runtime} replicas, round {number + 1}: {runs[-1]}")
        return runs


def measure(args: argparse.Namespace, root: Path) -> dict:
    containers = ContainerRuntime(root / "starts", "bench")
    image = containers.check_image(args.image)  # its id; refuses a missing image or one that runs as root
    say(f"registering and downloading the iris model in {root}")
    model = register_iris(root, download=root / "downloaded")
    readable(root)
    seconds: dict[str, list[float]] = {r: [] for r in RUNTIMES}
    try:
        for start in range(args.starts):
            for runtime in RUNTIMES if start % 2 == 0 else reversed(RUNTIMES):
                wall = time_one_start(root, runtime, image, containers, model, args.timeout)
                seconds[runtime].append(round(wall, 3))
                say(f"start {start + 1}/{args.starts} {runtime:<9} ready after {wall:.2f} s")
        throughput: dict[str, list[dict]] = {}
        if args.throughput:
            script = root / "post.lua"
            script.write_text(WRK_SCRIPT.format(body=json.dumps(
                {"dataframe_split": {"columns": model["columns"], "data": [model["row"]]}})))
            for runtime in RUNTIMES:
                throughput[runtime] = endpoint_throughput(root, runtime, image, model, script, args)
    finally:
        remove_labelled({LABEL_STATE_DIR: containers.key})
    return {"seconds": seconds, "median_s": {r: statistics.median(v) for r, v in seconds.items()},
            "throughput": {r: {"rps": statistics.median(x["rps"] for x in runs),
                               "p99_ms": statistics.median(x["p99_ms"] for x in runs),
                               "errors": sum(x["errors"] for x in runs)} for r, runs in throughput.items()},
            "image": args.image, "cpus": os.cpu_count(), "load_average_at_start": args.load_average_at_start,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}


def render(summary: dict) -> str:
    lines = [f"replica spawn to first /ready 200 (model copy, cold), {len(summary['seconds']['process'])} starts "
             f"each, image {summary['image']}; {summary['cpus']} CPUs, load average "
             f"{summary['load_average_at_start']} at start, {summary['load_average_at_end']} at end",
             f"{'runtime':<12}{'median':>8}{'fastest':>9}{'slowest':>9}"]
    for runtime in RUNTIMES:
        values = summary["seconds"][runtime]
        lines.append(f"{runtime:<12}{summary['median_s'][runtime]:>7.2f}s{min(values):>8.2f}s{max(values):>8.2f}s")
    extra = summary["median_s"]["container"] - summary["median_s"]["process"]
    lines.append(f"container - process (medians): {extra:+.2f} s")
    for runtime, figures in summary["throughput"].items():
        lines.append(f"endpoint (HAProxy, 2 {runtime} replicas): {figures['rps']:.0f} req/s, p99 "
                     f"{figures['p99_ms']:.2f} ms, {figures['errors']} errors (median of rounds)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(parse_args(argv), "lastmile-replica-start-", measure, render, say)


if __name__ == "__main__":
    sys.exit(main())
