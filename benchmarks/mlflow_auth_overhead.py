"""What MLflow's basic-auth app (the stand-in's configuration) costs per call, against the same server without it.

    .venv/bin/python benchmarks/mlflow_auth_overhead.py             # 3 rounds of each, alternating
    .venv/bin/python benchmarks/mlflow_auth_overhead.py --rounds 5 --calls 400

Each round starts ``mlflow server`` (one worker, SQLite, a local artifact root) in a temporary directory, once as the
stand-in runs it (``--app-name basic-auth``, credential cache of 60 s, calls as the admin user) and once without
auth, and times the calls a training run makes most: ``runs/log-metric`` and artifact uploads through the server's
artifact proxy (one call in five), after a warm-up of the same calls. It prints the median latency per call of each
and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from support import ServerProcess, free_port

PASSWORD = "benchmark-only-password-0123"  # a throwaway server in a temporary directory


def server(root: Path, auth: bool) -> ServerProcess:
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1", "--backend-store-uri", f"sqlite:///{root}/mlflow.db",
               "--artifacts-destination", str(root / "artifacts")]
    if auth:
        ini = root / "basic_auth.ini"
        ini.write_text("[mlflow]\ndefault_permission = NO_PERMISSIONS\n"
                       f"database_uri = sqlite:///{root}/basic_auth.db\nadmin_username = lastmile\n"
                       "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                       "auth_cache_ttl_seconds = 60\n")
        env.update(MLFLOW_AUTH_CONFIG_PATH=str(ini), MLFLOW_AUTH_ADMIN_PASSWORD=PASSWORD,
                   MLFLOW_FLASK_SERVER_SECRET_KEY="benchmark-only-key-" + "0" * 16)
        command[4:4] = ["--app-name", "basic-auth"]
    return ServerProcess("mlflow" + (" (auth)" if auth else ""), command, env, root, root / "server.log",
                         f"http://127.0.0.1:{port}/health")


def calls(base: str, auth: bool, count: int) -> list[float]:
    """Seconds per call: ``count`` calls, one artifact upload in five, the rest metric logs, in one run."""
    with httpx.Client(base_url=base, auth=("lastmile", PASSWORD) if auth else None, timeout=30) as client:
        name = f"bench-{time.monotonic_ns()}"
        experiment = client.post("/api/2.0/mlflow/experiments/create", json={"name": name}).json()["experiment_id"]
        run = client.post("/api/2.0/mlflow/runs/create", json={"experiment_id": experiment}).json()["run"]["info"]
        took = []
        for i in range(count):
            began = time.perf_counter()
            if i % 5 == 4:
                answer = client.put(f"/api/2.0/mlflow-artifacts/artifacts/{experiment}/{run['run_id']}/artifacts/"
                                    f"f{i}.txt", content=b"x" * 10_000)
            else:
                answer = client.post("/api/2.0/mlflow/runs/log-metric", json={
                    "run_id": run["run_id"], "key": "m", "value": i, "timestamp": 0, "step": i})
            took.append(time.perf_counter() - began)
            if answer.status_code != 200:
                raise RuntimeError(f"call {i} answered {answer.status_code}: {answer.text[:300]}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each configuration, alternating")
    parser.add_argument("--calls", type=int, default=250, help="timed calls per round (after as many warm-up calls)")
    args = parser.parse_args()
    medians: dict[bool, list[float]] = {False: [], True: []}
    for round_number in range(1, args.rounds + 1):
        for auth in (False, True):
            with tempfile.TemporaryDirectory(prefix="lastmile-auth-bench-") as tmp, server(Path(tmp), auth) as mlflow:
                mlflow.wait_until_answering(None, timeout=120)
                base = mlflow.url.rsplit("/health", 1)[0]
                calls(base, auth, args.calls)  # warm-up: imports, first PBKDF2 check, SQLite pages
                median_ms = statistics.median(calls(base, auth, args.calls)) * 1000
            medians[auth].append(median_ms)
            print(f"round {round_number}/{args.rounds} {'basic-auth' if auth else 'no auth   '} "
                  f"median {median_ms:.2f} ms per call", flush=True)
    plain, guarded = statistics.median(medians[False]), statistics.median(medians[True])
    print(f"median of {args.rounds} rounds, {args.calls} calls each, 2 CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"{'':24}{'no auth':>10}{'basic-auth':>12}{'auth / none':>13}")
    print(f"{'ms per call (median)':24}{plain:>10.2f}{guarded:>12.2f}{guarded / plain:>12.2f}x")
    print(f"added per call: {guarded - plain:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
