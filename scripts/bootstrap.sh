#!/usr/bin/env bash
# Installs what lastmile needs on a fresh Debian machine: .venv with the pinned dependencies, the Distribution
# registry (Debian's docker-registry) and HAProxy (the stable endpoint's load balancer). Where it cannot install
# something, it stops with one line saying what is missing and how to get it.
#
# The pinned dependencies are installed with uv (a pinned version from PyPI, in .lastmile/tools/), which
# takes seconds where pip takes minutes; when uv cannot be had or fails, pip installs the same pins, as it
# did before. LASTMILE_NO_UV=1 goes straight to pip.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
UV_VERSION=0.13.9
UV_DIR=.lastmile/tools/uv-$UV_VERSION
UV=$UV_DIR/bin/uv

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
command -v haproxy >/dev/null 2>&1 || need_pkgs+=(haproxy)
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || need_pkgs+=(python3-venv)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if can_apt; then
    apt_install "${need_pkgs[@]}"
  else
    die "missing ${need_pkgs[*]}: install with 'sudo apt-get install ${need_pkgs[*]}' (docker-registry is the CNCF Distribution registry; haproxy serves the deployment's stable endpoint)"
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "lastmile bootstrap: creating .venv" >&2
  "$PYTHON" -m venv .venv
fi
mkdir -p .lastmile/logs
log=.lastmile/logs/bootstrap.log
: >"$log"

# uv from PyPI, installed by the venv's pip into its own folder (not into .venv, so `make lock` does not pin
# it). No source builds, and a short timeout: an index that cannot be reached means pip, not a long wait.
get_uv() {
  if "$UV" --version >/dev/null 2>&1; then return 0; fi
  rm -rf "$UV_DIR"
  .venv/bin/python -m pip install --disable-pip-version-check --no-input --timeout 20 --retries 1 \
      --only-binary :all: --target "$UV_DIR" "uv==$UV_VERSION" >>"$log" 2>&1 \
    && "$UV" --version >>"$log" 2>&1
}

pip_install() {
  echo "lastmile bootstrap: installing pinned dependencies into .venv with pip (first time: about 2 minutes)" >&2
  if ! .venv/bin/python -m pip install --disable-pip-version-check -c constraints.txt -e ".[dev]" >>"$log" 2>&1; then
    tail -n 15 "$log" >&2
    die "pip could not install the pinned dependencies; the whole output is in $log"
  fi
}

uv_install() {
  echo "lastmile bootstrap: installing pinned dependencies into .venv with uv $UV_VERSION (first time: about 20 s)" >&2
  "$UV" pip install --python .venv/bin/python -c constraints.txt -e ".[dev]" >>"$log" 2>&1
}

installer=uv
if [ "${LASTMILE_NO_UV:-0}" = 1 ]; then
  echo "lastmile bootstrap: LASTMILE_NO_UV=1, so pip installs the dependencies" >&2
  installer=pip
elif ! get_uv; then
  echo "lastmile bootstrap: uv $UV_VERSION could not be installed or did not start (see $log); pip installs the dependencies instead" >&2
  installer=pip
elif ! uv_install; then
  echo "lastmile bootstrap: uv could not install the pinned dependencies (see $log); trying pip" >&2
  installer=pip
fi
if [ "$installer" = pip ]; then pip_install; fi

# pip compiles bytecode and uv does not: after uv, the import check also writes the bytecode of what
# lastmile's processes import (scripts/warm_bytecode.py says why and what).
if [ "$installer" = uv ]; then
  .venv/bin/python scripts/warm_bytecode.py >>"$log" 2>&1 || die "the Python dependencies did not import; see $log"
else
  .venv/bin/python -c 'import harness, mlflow, moto, chaoslib' || die "the Python dependencies did not import; see $log"
fi
