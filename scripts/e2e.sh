#!/usr/bin/env bash
# `make e2e`: stand-ins up, the seven stages (forced, so every stage runs), the deployed champion
# answering on its stable endpoint, the smoke load scenario (every request format, its SLO gates) on that
# endpoint, and a teardown unless KEEP=1.
# PROFILE=containers runs it with every stand-in, the training job and the replicas in Docker containers (state in
# .lastmile-containers/): it needs a Docker engine, and builds the images first (Docker's cache keeps them).
set -euo pipefail
cd "$(dirname "$0")/.."
LM=.venv/bin/lastmile
export LASTMILE_PROFILE=${PROFILE:-${LASTMILE_PROFILE:-local}}
if [ "$LASTMILE_PROFILE" = containers ]; then
  export LASTMILE_STATE_DIR=${LASTMILE_STATE_DIR:-.lastmile-containers}
  if ! docker info >/dev/null 2>&1; then
    echo "e2e: PROFILE=containers needs a Docker engine and none answers: start one (scripts/docker-engine.sh start)" >&2
    exit 1
  fi
  bash scripts/build-images.sh
fi

teardown() {
  local rc=$?
  if [ "${KEEP:-0}" = 1 ]; then
    echo "KEEP=1: the stand-ins and the deployment keep running; stop them with '$LM down'"
  else
    $LM down >/dev/null || true
  fi
  exit $rc
}
trap teardown EXIT

SECONDS=0
$LM up
$LM run --force
endpoint=$($LM deploy status --json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["endpoint"])')
row='{"dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"], "data": [[6.3, 2.9, 5.6, 1.8]]}}'
answer=$(.venv/bin/python -c 'import sys, httpx; r = httpx.post(sys.argv[1] + "/invocations", content=sys.argv[2], headers={"content-type": "application/json"}, timeout=10); r.raise_for_status(); print(r.text)' "$endpoint" "$row")
echo "e2e: POST $endpoint/invocations $row"
echo "e2e: -> $answer"
$LM load run smoke
echo "e2e: seven stages, a deployed champion and its smoke load in ${SECONDS} s"
