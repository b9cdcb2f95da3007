#!/usr/bin/env bash
# A fresh clone to a deployed champion: `make e2e` with the bootstrap's uv path against its pip path
# (LASTMILE_NO_UV=1), each in a fresh clone of this repository's HEAD with empty pip and uv caches, on free
# ports. Prints both wall times, the install part of each, and the ratio.
#
#     bash benchmarks/fresh_clone_e2e.sh [ROUNDS]     (default 1 round; the median is printed for more)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-1}
work=$(mktemp -d /tmp/lastmile-fresh-XXXXXX)
trap 'rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

run() {  # run NAME [VAR=VALUE...]: one fresh clone's `make e2e`; prints "total install"
  local dir="$work/$1"; shift
  git clone -q "$repo" "$dir"
  local env=(PIP_CACHE_DIR="$dir.pip-cache" UV_CACHE_DIR="$dir.uv-cache" "$@")
  for name in FAULTS OBJECT_STORE REGISTRY MLFLOW DEPLOYER; do env+=("LASTMILE_STANDINS__${name}__PORT=$(free_port)"); done
  env+=("LASTMILE_STANDINS__DEPLOYER__SERVICE_PORT=$(free_port)")
  local start=$EPOCHREALTIME
  (cd "$dir" && env "${env[@]}" make deps >"$dir.log" 2>&1)
  local installed=$EPOCHREALTIME
  (cd "$dir" && env "${env[@]}" make e2e >>"$dir.log" 2>&1) || { tail -20 "$dir.log" >&2; exit 1; }
  local end=$EPOCHREALTIME
  python3 -c "print(f'{$end - $start:.1f} {$installed - $start:.1f}')"
  rm -rf "$dir" "$dir.pip-cache" "$dir.uv-cache"
}

uv_totals=() pip_totals=()
for round in $(seq 1 "$rounds"); do
  read -r total install < <(run "uv-$round")
  echo "round $round uv:  make e2e from a fresh clone ${total} s (install ${install} s)"
  uv_totals+=("$total")
  read -r total install < <(run "pip-$round" LASTMILE_NO_UV=1)
  echo "round $round pip: make e2e from a fresh clone ${total} s (install ${install} s)"
  pip_totals+=("$total")
done
python3 - "${uv_totals[*]}" "${pip_totals[*]}" <<'PY'
import os, statistics, sys
uv, pip = (statistics.median(float(x) for x in arg.split()) for arg in sys.argv[1:3])
print(f"median over {len(sys.argv[1].split())} round(s), load average {os.getloadavg()[0]:.2f}: "
      f"uv {uv:.1f} s, pip {pip:.1f} s, pip / uv = {pip / uv:.2f}x")
PY
