"""Stages 1-5 and all seven on ``oci-local`` against ``local``: the same pipeline, one profile through the oci
adapters and the OCI API stand-in (every request signed and verified; DevOps build runs, a Data Science job run,
the OKE deployer through the Kubernetes API front door), the other through the local adapters, in one run.

    python benchmarks/profile_stages.py [--runs 3]

For each profile: stand-ins up in a state dir of their own on free ports, ``--runs`` forced runs
(``lastmile run --force --json``; stages 1-5 = registry end minus trigger start in the journal, seven stages =
observation end minus trigger start), then ``lastmile down``. The profiles take turns run by run, so a busy
moment of the machine hits both. Each run changes a file under ``training/`` and ``serving/`` in a scratch clone
and commits it, so every run builds both deployables (the DevOps builder builds commits; an unchanged tree would
be skipped on both profiles). Prints each run, the medians and the ratios.
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
PROFILES = ("local", "oci-local")
LASTMILE = [sys.executable, "-m", "harness.cli"]


def environment(profile: str, state: Path) -> dict[str, str]:
    env = {**os.environ, "LASTMILE_PROFILE": profile, "LASTMILE_STATE_DIR": str(state),
           "LASTMILE_STANDINS__DEPLOYER__SERVICE_PORT": str(free_port()),
           **{f"LASTMILE_STANDINS__{route}__PORT": str(free_port()) for route in ROUTES}}
    if profile == "oci-local":
        env["LASTMILE_STANDINS__DEPLOYER__KUBE_PORT"] = str(free_port())
    return env


def change_and_commit(clone: Path, n: int) -> None:
    for folder in ("training", "serving"):
        (clone / folder / "BENCHMARK").write_text(f"run {n}\n")
    subprocess.run(["git", "add", "-A"], cwd=clone, check=True)
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm",
                    f"benchmark run {n}"], cwd=clone, check=True)


def one_run(clone: Path, env: dict[str, str]) -> tuple[float, float]:
    done = subprocess.run([*LASTMILE, "run", "--force", "--json"], cwd=clone, env=env, check=True,
                          capture_output=True, text=True)
    record = json.loads(done.stdout)
    if record["status"] != "succeeded":
        raise RuntimeError(f"run {record['run_id']} {record['status']}")
    stages = record["stages"]
    start = stages["trigger"]["started"]
    return stages["registry"]["ended"] - start, stages["observation"]["ended"] - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    figures: dict[str, list[tuple[float, float]]] = {p: [] for p in PROFILES}
    with tempfile.TemporaryDirectory(prefix="lastmile-profiles-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        envs = {p: environment(p, Path(tmp) / p) for p in PROFILES}
        try:
            for profile in PROFILES:
                subprocess.run([*LASTMILE, "up"], cwd=clone, env=envs[profile], check=True, capture_output=True)
            for n in range(args.runs):
                for profile in PROFILES if n % 2 == 0 else PROFILES[::-1]:
                    change_and_commit(clone, n * 2 + PROFILES.index(profile))
                    figures[profile].append(one_run(clone, envs[profile]))
                    five, seven = figures[profile][-1]
                    print(f"run {n + 1} {profile}: stages 1-5 {five:.2f} s, seven stages {seven:.2f} s", flush=True)
        except (subprocess.CalledProcessError, RuntimeError) as exc:
            print(f"failed: {exc}\n{getattr(exc, 'stderr', '') or ''}"[-3000:], file=sys.stderr)
            return 1
        finally:
            for profile in PROFILES:
                subprocess.run([*LASTMILE, "down"], cwd=clone, env=envs[profile], capture_output=True)
    medians = {p: (statistics.median(f[0] for f in figures[p]), statistics.median(f[1] for f in figures[p]))
               for p in PROFILES}
    (local5, local7), (oci5, oci7) = medians["local"], medians["oci-local"]
    print(f"medians of {args.runs} runs, load average {os.getloadavg()[0]:.2f}:")
    print(f"  stages 1-5:   local {local5:.2f} s, oci-local {oci5:.2f} s, oci-local / local = {oci5 / local5:.2f}x")
    print(f"  seven stages: local {local7:.2f} s, oci-local {oci7:.2f} s, oci-local / local = {oci7 / local7:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
