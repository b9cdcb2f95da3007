#!/usr/bin/env bash
# A Docker engine for the image tests (tests/integration/test_images.py), on machines where none runs.
#
#   scripts/docker-engine.sh start   # use the running engine, or install docker.io and start dockerd
#   scripts/docker-engine.sh stop    # stop the dockerd that `start` started (and nothing else)
#
# `start` also installs debootstrap, which scripts/local-base-image.sh needs where python:3.11-slim cannot
# be pulled. Only an engine this script started is stopped: its pid is kept in .lastmile/dockerd.pid.
set -euo pipefail
cd "$(dirname "$0")/.."

PIDFILE=.lastmile/dockerd.pid
LOG=.lastmile/logs/dockerd.log
say() { echo "docker-engine: $*" >&2; }
die() { say "$*"; exit 1; }

answers() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

install_missing() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    die "missing ${missing[*]}: install them (apt-get install ${missing[*]}) and run this again"
  fi
  say "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } \
    || die "apt-get install ${missing[*]} failed"
}

start() {
  install_missing
  if answers; then
    say "a Docker engine already answers; using it"
    return 0
  fi
  [ "$(id -u)" = 0 ] || die "no Docker engine answers and starting dockerd needs root"
  mkdir -p "$(dirname "$LOG")"
  dockerd >"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 120); do
    if answers; then
      say "dockerd started (pid $(cat "$PIDFILE")), log in $LOG"
      return 0
    fi
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { tail -n 20 "$LOG" >&2; rm -f "$PIDFILE"; die "dockerd exited; see $LOG"; }
    sleep 0.5
  done
  die "dockerd did not answer within 60 s; see $LOG"
}

stop() {
  [ -f "$PIDFILE" ] || { say "no dockerd of ours to stop"; return 0; }
  local pid
  pid=$(cat "$PIDFILE")
  # The pid must still be that dockerd: a pid can be reused after its process has gone.
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] && kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    say "dockerd (pid $pid) stopped"
  fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) die "usage: scripts/docker-engine.sh start|stop" ;;
esac
