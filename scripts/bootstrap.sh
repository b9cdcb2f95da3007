#!/usr/bin/env bash
# Installs what lastmile needs on a fresh Debian machine: .venv with the pinned dependencies, and
# the Distribution registry (Debian's docker-registry). Where it cannot install something, it stops
# with one line saying what is missing and how to get it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

die() { echo "lastmile bootstrap: $*" >&2; exit 1; }

can_apt() { command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; }

apt_install() {
  echo "lastmile bootstrap: installing Debian packages: $*" >&2
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
      || die "apt-get install $* failed"
  fi
}

command -v "$PYTHON" >/dev/null 2>&1 || die "no $PYTHON on PATH: install Python 3.11 or newer (apt-get install python3)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "Python 3.11 or newer is needed, $PYTHON is $("$PYTHON" -V 2>&1): set PYTHON=python3.11"

need_pkgs=()
command -v git >/dev/null 2>&1 || need_pkgs+=(git)
command -v docker-registry >/dev/null 2>&1 || need_pkgs+=(docker-registry)
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || need_pkgs+=(python3-venv)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if can_apt; then
    apt_install "${need_pkgs[@]}"
  else
    die "missing ${need_pkgs[*]}: install with 'sudo apt-get install ${need_pkgs[*]}' (docker-registry is the CNCF Distribution registry)"
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "lastmile bootstrap: creating .venv" >&2
  "$PYTHON" -m venv .venv
fi
echo "lastmile bootstrap: installing pinned dependencies into .venv (first time: about 2 minutes)" >&2
mkdir -p .lastmile/logs
log=.lastmile/logs/bootstrap.log
if ! .venv/bin/python -m pip install --disable-pip-version-check -c constraints.txt -e ".[dev]" >"$log" 2>&1; then
  tail -n 15 "$log" >&2
  die "pip could not install the pinned dependencies; the whole output is in $log"
fi
.venv/bin/python -c 'import harness, mlflow, moto, oras' || die "the Python dependencies did not import; see $log"
