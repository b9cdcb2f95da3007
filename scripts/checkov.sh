#!/usr/bin/env bash
# checkov (the static IaC scanner, from PyPI), in a tool venv of its own: `scripts/checkov.sh ARGS...` runs
# `checkov ARGS...`.
#
# checkov 3 cannot share the project's .venv: it pins networkx<2.7 where the pinned stack has networkx 3, and the
# only checkov a resolver finds alongside our pins is 2.0.708 (2022): 35 more packages in the pinned stack, and
# none of the OKE or network-security-group checks (it has the Object Storage and security-list ones). So it lives in
# .lastmile/tools/checkov/, created on first use like scripts/oci-cli.sh's (python3 -m venv, pip install
# checkov==$CHECKOV_VERSION, one line of progress on stderr, pip's output in .lastmile/logs/checkov-install.log).
# Exit codes of its own: 3 when PyPI cannot be reached (nothing installed), 1 when the install failed otherwise;
# then checkov's own.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
CHECKOV_VERSION=3.3.30
TOOL_DIR=$ROOT/.lastmile/tools/checkov
CHECKOV=$TOOL_DIR/bin/checkov
MARKER=$TOOL_DIR/.installed-$CHECKOV_VERSION
LOG=$ROOT/.lastmile/logs/checkov-install.log

die() { echo "checkov.sh: $1" >&2; exit "${2:-1}"; }

pypi_reachable() {
  local index
  index=${PIP_INDEX_URL:-$("$PYTHON" -m pip config get global.index-url 2>/dev/null || echo https://pypi.org/simple)}
  "$PYTHON" - "$index" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1].rstrip("/") + "/checkov/", timeout=15).read(1)
PY
}

install() {
  echo "checkov.sh: installing checkov $CHECKOV_VERSION into ${TOOL_DIR#"$ROOT"/} (first use, a minute or two)" >&2
  rm -rf "$TOOL_DIR"
  "$PYTHON" -m venv "$TOOL_DIR" >>"$LOG" 2>&1 || die "python3 -m venv failed: see $LOG"
  if ! "$TOOL_DIR/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --timeout 30 --retries 2 \
      "checkov==$CHECKOV_VERSION" >>"$LOG" 2>&1; then
    rm -rf "$TOOL_DIR"
    pypi_reachable || die "PyPI cannot be reached, so checkov $CHECKOV_VERSION cannot be installed" 3
    die "pip install checkov==$CHECKOV_VERSION failed: see $LOG"
  fi
  touch "$MARKER"
}

if [ ! -e "$MARKER" ] || [ ! -x "$CHECKOV" ]; then
  mkdir -p "$ROOT/.lastmile/tools" "$ROOT/.lastmile/logs"
  exec 9>"$ROOT/.lastmile/tools/checkov.lock"
  flock 9
  if [ ! -e "$MARKER" ] || [ ! -x "$CHECKOV" ]; then
    install
  fi
  flock -u 9
  exec 9>&-
fi
exec "$CHECKOV" "$@"
