"""What the front door costs: the fault proxy in front of every stand-in and every replica, with no fault set,
against the same stand-ins reached directly (``standins.faults.enabled: false``), in one run.

    python benchmarks/front_door_overhead.py [--requests 4000] [--concurrency 8]

For each mode: stand-ins up in a state dir of their own on free ports, one forced ``lastmile run`` (its stages
1-5 time, trigger start to registry end, from the journal), then the stable endpoint under a closed-loop client
(benchmarks/http_load.py: keep-alive connections posting one reference row), then ``lastmile down``. Prints both
and the ratios; exit code 1 when a step failed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LASTMILE = [sys.executable, "-m", "harness.cli"]
ROUTES = ("FAULTS", "OBJECT_STORE", "REGISTRY", "MLFLOW", "DEPLOYER")


def environment(state: Path, front: bool) -> dict[str, str]:
    sys.path.insert(0, str(REPO))
    from harness.infra.processes import free_port

    env = {**os.environ, "LASTMILE_STATE_DIR": str(state), "LASTMILE_STANDINS__FAULTS__ENABLED": str(front).lower(),
           "LASTMILE_STANDINS__DEPLOYER__SERVICE_PORT": str(free_port())}
    env.update({f"LASTMILE_STANDINS__{route}__PORT": str(free_port()) for route in ROUTES})
    return env


def measure(state: Path, front: bool, requests: int, concurrency: int) -> dict:
    env = environment(state, front)
    lastmile = lambda *args: subprocess.run([*LASTMILE, *args], cwd=REPO, env=env, check=True,  # noqa: E731
                                            capture_output=True, text=True)
    try:
        lastmile("up")
        record = json.loads(lastmile("run", "--force", "--json").stdout)
        stages = record["stages"]
        stages_1_5 = stages["registry"]["ended"] - stages["trigger"]["started"]
        endpoint = record["summary"]["endpoint"]
        settle(lastmile)
        body = state / "row.json"
        body.write_text(json.dumps({"dataframe_records": stages["deployment"]["outputs"]["reference_rows"][:1]}))
        load = subprocess.run([sys.executable, str(REPO / "benchmarks" / "http_load.py"), endpoint + "/invocations",
                               "--body-file", str(body), "--requests", str(requests), "--concurrency",
                               str(concurrency)], cwd=REPO, check=True, capture_output=True, text=True)
        return {"stages_1_5_s": round(stages_1_5, 2), **json.loads(load.stdout)}
    finally:
        subprocess.run([*LASTMILE, "down"], cwd=REPO, env=env, capture_output=True)


def settle(lastmile, timeout_s: float = 90.0) -> None:
    """Until the deployment is settled and its warm standby has loaded: it takes a core while it warms."""
    until = time.monotonic() + timeout_s
    while time.monotonic() < until:
        status = json.loads(lastmile("deploy", "status", "--json").stdout)
        if status["standby"] == "warm" and status["ready"] == status["desired"]:
            return
        time.sleep(1.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="rounds, alternating which mode goes first")
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"direct": [], "front door": []}
    modes = [("direct", False), ("front door", True)]
    with tempfile.TemporaryDirectory(prefix="lastmile-front-door-") as tmp:
        for round_number in range(args.rounds):
            for name, front in modes if round_number % 2 == 0 else modes[::-1]:
                try:
                    state = Path(tmp) / f"{name.replace(' ', '-')}-{round_number}"
                    runs[name].append(measure(state, front, args.requests, args.concurrency))
                except subprocess.CalledProcessError as exc:
                    print(f"{name}: {' '.join(map(str, exc.cmd[:4]))} failed:\n{exc.stderr[-2000:]}", file=sys.stderr)
                    return 1
                print(f"round {round_number + 1} {name}: {runs[name][-1]['rps']:.0f} req/s, "
                      f"stages 1-5 {runs[name][-1]['stages_1_5_s']:.2f} s", flush=True)
    direct, front = ({key: statistics.median(r[key] for r in runs[name]) for key in runs[name][0]
                      if isinstance(runs[name][0][key], (int, float)) and not isinstance(runs[name][0][key], bool)}
                     for name in ("direct", "front door"))
    print(f"medians of {args.rounds} rounds; load average {os.getloadavg()[0]:.2f}; {args.requests} requests, "
          f"{args.concurrency} connections")
    print(f"{'':28}{'direct':>12}{'front door':>12}{'front / direct':>16}")
    for key, label in (("rps", "stable endpoint req/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"),
                       ("stages_1_5_s", "stages 1-5 s")):
        ratio = front[key] / direct[key] if direct[key] else float("nan")
        print(f"{label:28}{direct[key]:>12.2f}{front[key]:>12.2f}{ratio:>15.2f}x")
    print(f"errors: direct {direct['errors']}, front door {front['errors']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
