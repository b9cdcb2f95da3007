#!/usr/bin/env bash
# `make e2e`: bring the local stand-ins up, check them, and tear them down unless KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
LM=.venv/bin/lastmile

teardown() { [ "${KEEP:-0}" = 1 ] || $LM down >/dev/null; }
trap teardown EXIT

SECONDS=0
$LM up
$LM status
printf 'e2e: stand-ins up and healthy in %d s' "$SECONDS"
[ "${KEEP:-0}" = 1 ] && echo " (KEEP=1: left running; stop with '.venv/bin/lastmile down')" || echo
