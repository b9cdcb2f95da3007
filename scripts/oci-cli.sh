#!/usr/bin/env bash
# The real `oci` CLI (oci-cli from PyPI), in a tool venv of its own: `scripts/oci-cli.sh ARGS...` runs `oci ARGS...`.
#
# oci-cli pins PyYAML, certifi and others to versions that conflict with the project's .venv, so it lives in
# .lastmile/tools/oci-cli/, created on first use (python3 -m venv, pip install oci-cli==$OCI_CLI_VERSION, quiet,
# one line of progress on stderr, pip's output in .lastmile/logs/oci-cli-install.log). Concurrent first uses wait
# for each other (flock). Exit codes of its own: 3 when PyPI cannot be reached (nothing installed), 1 when the
# install failed otherwise; then the CLI's own.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
OCI_CLI_VERSION=3.95.1
TOOL_DIR=$ROOT/.lastmile/tools/oci-cli
OCI=$TOOL_DIR/bin/oci
MARKER=$TOOL_DIR/.installed-$OCI_CLI_VERSION
LOG=$ROOT/.lastmile/logs/oci-cli-install.log

die() { echo "oci-cli.sh: $1" >&2; exit "${2:-1}"; }

pypi_reachable() {
  local index
  index=${PIP_INDEX_URL:-$("$PYTHON" -m pip config get global.index-url 2>/dev/null || echo https://pypi.org/simple)}
  "$PYTHON" - "$index" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1].rstrip("/") + "/oci-cli/", timeout=15).read(1)
EOF
}

install() {
  echo "oci-cli.sh: installing oci-cli $OCI_CLI_VERSION into ${TOOL_DIR#"$ROOT"/} (first use, about a minute)" >&2
  rm -rf "$TOOL_DIR"
  "$PYTHON" -m venv "$TOOL_DIR" >>"$LOG" 2>&1 || die "python3 -m venv failed: see $LOG"
  if ! "$TOOL_DIR/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --timeout 30 --retries 2 \
      "oci-cli==$OCI_CLI_VERSION" >>"$LOG" 2>&1; then
    rm -rf "$TOOL_DIR"
    pypi_reachable || die "PyPI cannot be reached, so oci-cli $OCI_CLI_VERSION cannot be installed" 3
    die "pip install oci-cli==$OCI_CLI_VERSION failed: see $LOG"
  fi
  touch "$MARKER"
}

if [ ! -e "$MARKER" ] || [ ! -x "$OCI" ]; then
  mkdir -p "$ROOT/.lastmile/tools" "$ROOT/.lastmile/logs"
  exec 9>"$ROOT/.lastmile/tools/oci-cli.lock"
  flock 9
  if [ ! -e "$MARKER" ] || [ ! -x "$OCI" ]; then
    install
  fi
  flock -u 9
  exec 9>&-
fi
# Quiet the CLI's advice about key file permissions and key labels: the keys here are generated 0600, unlabelled.
export OCI_CLI_SUPPRESS_FILE_PERMISSIONS_WARNING=True SUPPRESS_LABEL_WARNING=True
exec "$OCI" "$@"
