#!/usr/bin/env bash
# Builds the two images from their Dockerfiles, lastmile-serving:dev (serving/) and lastmile-training:dev
# (training/), and prints each build's wall time and image size. Docker's layer cache makes a rebuild of
# unchanged sources take seconds.
#
#   scripts/build-images.sh [docker build options, e.g. --no-cache]
#
# Base image: $BASE_IMAGE when set; else python:3.11-slim when the engine already has it; else the local
# stand-in lastmile/python:3.11-slim-local, built first by scripts/local-base-image.sh when missing (nothing is
# pulled in that case). Environment: BASE_IMAGE, IMAGE_TAG (default dev). Build logs go to .lastmile/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."

OFFICIAL_BASE=python:3.11-slim
LOCAL_BASE=${LASTMILE_LOCAL_BASE_IMAGE:-lastmile/python:3.11-slim-local}
TAG=${IMAGE_TAG:-dev}

die() { echo "build-images: $*" >&2; exit 1; }

command -v docker >/dev/null 2>&1 || die "no docker CLI on PATH: install it (apt-get install docker.io) and start dockerd"
docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info failed): start dockerd, or check DOCKER_HOST"

if [ -n "${BASE_IMAGE:-}" ]; then
  base=$BASE_IMAGE
elif docker image inspect "$OFFICIAL_BASE" >/dev/null 2>&1; then
  base=$OFFICIAL_BASE
else
  echo "build-images: $OFFICIAL_BASE is not in the engine, using the local stand-in $LOCAL_BASE" >&2
  LASTMILE_LOCAL_BASE_IMAGE=$LOCAL_BASE bash scripts/local-base-image.sh
  base=$LOCAL_BASE
fi

# BuildKit when the CLI has it (the buildx plugin); the classic builder otherwise, without the CLI's complaint
# that BuildKit was asked for. The Dockerfiles need nothing BuildKit-only.
if docker buildx version >/dev/null 2>&1; then
  export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-1}
else
  export DOCKER_BUILDKIT=0
fi

mkdir -p .lastmile/logs
for component in serving training; do
  image=lastmile-$component:$TAG
  log=.lastmile/logs/build-$component.log
  started=$EPOCHREALTIME
  if ! docker build --build-arg "BASE_IMAGE=$base" -t "$image" "$@" "$component/" >"$log" 2>&1; then
    tail -n 25 "$log" >&2
    die "building $image from $component/Dockerfile failed; the whole output is in $log"
  fi
  seconds=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  bytes=$(docker image inspect -f '{{.Size}}' "$image")
  printf 'build-images: %s built in %ss, %s MB (base %s)\n' \
    "$image" "$seconds" "$(awk -v b="$bytes" 'BEGIN { printf "%.0f", b / 1e6 }')" "$base"
done
