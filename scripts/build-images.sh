#!/usr/bin/env bash
# Builds the images from their Dockerfiles and prints each build's wall time and image size (and how much of it
# is the base): the deployables, lastmile-serving:dev (serving/) and lastmile-training:dev (training/), and the
# containers profile's stand-ins, lastmile-objectstore:dev, lastmile-mlflow:dev and lastmile-registry:dev
# (compose/images/<name>/). Docker's layer cache makes a rebuild of unchanged sources take seconds.
#
#   scripts/build-images.sh [docker build options, e.g. --no-cache]
#   IMAGES="objectstore mlflow registry" scripts/build-images.sh      # only some of them
#
# Base image: $BASE_IMAGE when set; else the official base (python:3.11-slim, or debian:bookworm-slim for the
# registry) when the engine already has it; else the local stand-in lastmile/python:3.11-slim-local (Debian
# bookworm with Python 3.11), built first by scripts/local-base-image.sh when missing (nothing is pulled in that
# case). Environment: BASE_IMAGE, IMAGES, IMAGE_TAG (default dev). Build logs go to .lastmile/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."

LOCAL_BASE=${LASTMILE_LOCAL_BASE_IMAGE:-lastmile/python:3.11-slim-local}
TAG=${IMAGE_TAG:-dev}
IMAGES=${IMAGES:-serving training objectstore mlflow registry}

die() { echo "build-images: $*" >&2; exit 1; }

command -v docker >/dev/null 2>&1 || die "no docker CLI on PATH: install it (apt-get install docker.io) and start dockerd"
docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info failed): start dockerd, or check DOCKER_HOST"

# name -> build context and the official base it is built on where the engine has it
context_of() {
  case $1 in
    serving|training) echo "$1" ;;
    objectstore|mlflow|registry) echo "compose/images/$1" ;;
    *) die "no image '$1': IMAGES names some of serving training objectstore mlflow registry" ;;
  esac
}
official_base_of() {
  case $1 in
    registry) echo debian:bookworm-slim ;;
    *) echo python:3.11-slim ;;
  esac
}

# Sets $base for the official base $1, deciding (and saying) each official base's stand-in once per run.
declare -A chosen=()
choose_base() {
  local official=$1
  if [ -n "${BASE_IMAGE:-}" ]; then
    base=$BASE_IMAGE
  elif [ -n "${chosen[$official]:-}" ]; then
    base=${chosen[$official]}
  elif docker image inspect "$official" >/dev/null 2>&1; then
    base=$official
  else
    echo "build-images: $official is not in the engine, using the local stand-in $LOCAL_BASE" >&2
    LASTMILE_LOCAL_BASE_IMAGE=$LOCAL_BASE bash scripts/local-base-image.sh >&2
    base=$LOCAL_BASE
  fi
  chosen[$official]=$base
}

mb() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1e6 }'; }

# BuildKit when the CLI has it (the buildx plugin); the classic builder otherwise, without the CLI's complaint
# that BuildKit was asked for. The Dockerfiles need nothing BuildKit-only.
if docker buildx version >/dev/null 2>&1; then
  export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-1}
else
  export DOCKER_BUILDKIT=0
fi

mkdir -p .lastmile/logs
for component in $IMAGES; do
  context=$(context_of "$component")
  choose_base "$(official_base_of "$component")"
  image=lastmile-$component:$TAG
  log=.lastmile/logs/build-$component.log
  started=$EPOCHREALTIME
  if ! docker build --build-arg "BASE_IMAGE=$base" -t "$image" "$@" "$context/" >"$log" 2>&1; then
    tail -n 25 "$log" >&2
    die "building $image from $context/Dockerfile failed; the whole output is in $log"
  fi
  seconds=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  bytes=$(docker image inspect -f '{{.Size}}' "$image")
  base_bytes=$(docker image inspect -f '{{.Size}}' "$base")
  printf 'build-images: %s built in %ss, %s MB (base %s, %s MB; %s MB on top)\n' \
    "$image" "$seconds" "$(mb "$bytes")" "$base" "$(mb "$base_bytes")" "$(mb $((bytes - base_bytes)))"
done
