"""Stages 1-5 on ``oci-local`` against ``local``: the same pipeline, one profile through the oci adapters and the
OCI API stand-in (every request signed and verified), the other through the local adapters, in one run.

    python benchmarks/profile_stages.py [--runs 3]

For each profile: stand-ins up in a state dir of their own on free ports, ``--runs`` forced runs through the
registry stage (``lastmile run --force --until registry --json``; stages 1-5 time = registry end minus trigger
start in the journal), then ``lastmile down``. Prints each run, the medians and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from harness.infra.processes import free_port  # noqa: E402

ROUTES = ("FAULTS", "OBJECT_STORE", "REGISTRY", "MLFLOW", "DEPLOYER", "OCI")


def stages_1_5(profile: str, state: Path, runs: int) -> list[float]:
    env = {**os.environ, "LASTMILE_PROFILE": profile, "LASTMILE_STATE_DIR": str(state),
           "LASTMILE_STANDINS__DEPLOYER__SERVICE_PORT": str(free_port()),
           **{f"LASTMILE_STANDINS__{route}__PORT": str(free_port()) for route in ROUTES}}
    lastmile = [sys.executable, "-m", "harness.cli"]
    figures = []
    try:
        subprocess.run([*lastmile, "up"], cwd=REPO, env=env, check=True, capture_output=True)
        for _ in range(runs):
            done = subprocess.run([*lastmile, "run", "--force", "--until", "registry", "--json"], cwd=REPO, env=env,
                                  check=True, capture_output=True, text=True)
            stages = json.loads(done.stdout)["stages"]
            figures.append(stages["registry"]["ended"] - stages["trigger"]["started"])
            print(f"{profile}: stages 1-5 in {figures[-1]:.2f} s", flush=True)
    finally:
        subprocess.run([*lastmile, "down"], cwd=REPO, env=env, capture_output=True)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    medians = {}
    with tempfile.TemporaryDirectory(prefix="lastmile-profiles-") as tmp:
        for profile in ("local", "oci-local"):
            try:
                medians[profile] = statistics.median(stages_1_5(profile, Path(tmp) / profile, args.runs))
            except subprocess.CalledProcessError as exc:
                print(f"{profile}: {' '.join(exc.cmd[2:])} failed:\n{(exc.stderr or b'')[-2000:]!r}", file=sys.stderr)
                return 1
    local, oci = medians["local"], medians["oci-local"]
    print(f"median of {args.runs} runs, load average {os.getloadavg()[0]:.2f}: local {local:.2f} s, "
          f"oci-local {oci:.2f} s, oci-local / local = {oci / local:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
