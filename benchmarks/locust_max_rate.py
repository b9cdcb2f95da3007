"""Locust's maximum sustained rate with FastHttpUser against an endpoint: ``lastmile load run max-rate`` at a rising
``--rate``, step by step, until the rate achieved falls under 95 % of the rate offered, p99 passes its gate or
errors appear. Prints each step and the last sustained rate, with the load average (the machine is shared).

    python benchmarks/locust_max_rate.py --target http://127.0.0.1:PORT --start 100 --step 100 --max 2000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def step(target: str, rate: float, seconds: float, workers: int) -> dict:
    argv = [sys.executable, "-m", "harness.cli", "load", "run", "max-rate", "--target", target, "--rate", f"{rate:g}",
            "--duration", f"{seconds:g}", "--json", "--workers", str(workers)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120)
    if not done.stdout.strip():
        raise SystemExit(f"lastmile load run failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--start", type=float, default=100)
    parser.add_argument("--step", type=float, default=100)
    parser.add_argument("--max", type=float, default=2000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    sustained, rate = None, args.start
    while rate <= args.max:
        result = step(args.target, rate, args.seconds, args.workers)
        t = result["totals"]
        held = t["rps"] >= 0.95 * rate and result["passed"]
        print(f"offered {rate:g} req/s: achieved {t['rps']:g} req/s, p50 {t['p50_ms']} ms, p99 {t['p99_ms']} ms, "
              f"errors {t['error_ratio']:.3%}, {'held' if held else 'NOT held'}; load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
        if not held:
            break
        sustained, rate = rate, rate + args.step
    print(f"maximum sustained rate: {sustained if sustained is not None else 'under ' + format(args.start, 'g')} "
          f"req/s (workers {args.workers}, {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
