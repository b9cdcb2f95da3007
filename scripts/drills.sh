#!/usr/bin/env bash
# `make drills`: every failure drill in scenarios/drills, on stand-ins of their own (state in .lastmile-drills/,
# free ports, so a running `make e2e` or `lastmile up` is never touched). A champion is deployed first, then
# `lastmile drill run --all` runs each drill with its verdict, journal and the invariants; the JUnit XML goes to
# reports/drills.xml. The stand-ins are stopped at the end unless KEEP=1. Exit code: the drill run's.
# PROFILE=oci-local runs them on that profile (state in .lastmile-drills-oci-local/, reports/drills-oci-local.xml);
# PROFILE=containers on stand-ins, training jobs and replicas in Docker containers (state in
# .lastmile-drills-containers/, reports/drills-containers.xml): it needs a Docker engine and builds the images first,
# as `make e2e PROFILE=containers` does; process faults then go through the engine (docker kill, pause, restart).
# DRILL_TAGS=a,b only the drills with any of those tags; DRILLS="a b" only those drills.
set -euo pipefail
cd "$(dirname "$0")/.."
LM=.venv/bin/lastmile
export LASTMILE_PROFILE=${PROFILE:-${LASTMILE_PROFILE:-local}}
suffix=${LASTMILE_PROFILE#local}
export LASTMILE_STATE_DIR=${LASTMILE_STATE_DIR:-.lastmile-drills${suffix:+-$suffix}}
junit=reports/drills${suffix:+-$suffix}.xml
free_port() { .venv/bin/python -c 'from harness.infra.processes import free_port; print(free_port())'; }
for name in FAULTS OBJECT_STORE REGISTRY MLFLOW DEPLOYER OCI; do
  export "LASTMILE_STANDINS__${name}__PORT=$(free_port)"
done
export LASTMILE_STANDINS__DEPLOYER__SERVICE_PORT=$(free_port)
if [ "$LASTMILE_PROFILE" = oci-local ]; then  # the deployer's Kubernetes API front door, for the oke deployer
  export LASTMILE_STANDINS__DEPLOYER__KUBE_PORT=$(free_port)
fi
if [ "$LASTMILE_PROFILE" = containers ]; then
  if ! docker info >/dev/null 2>&1; then
    echo "drills: PROFILE=containers needs a Docker engine and none answers: start one (scripts/docker-engine.sh start)" >&2
    exit 1
  fi
  bash scripts/build-images.sh
fi
mkdir -p reports

teardown() {
  local rc=$?
  if [ "${KEEP:-0}" = 1 ]; then
    echo "KEEP=1: the drills' stand-ins keep running (state in $LASTMILE_STATE_DIR)"
  else
    $LM down >/dev/null || true
  fi
  exit $rc
}
trap teardown EXIT

SECONDS=0
$LM up
$LM run --force
if [ -n "${DRILLS:-}" ]; then
  # shellcheck disable=SC2086  # DRILLS is a list of names
  $LM drill run $DRILLS --junit "$junit"
else
  $LM drill run --all --junit "$junit" ${DRILL_TAGS:+--tags "$DRILL_TAGS"}
fi
echo "drills ($LASTMILE_PROFILE): every drill passed in ${SECONDS} s; JUnit XML in $junit"
