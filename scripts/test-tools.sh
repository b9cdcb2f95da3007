#!/usr/bin/env bash
# What `make test` needs beyond `make deps`: Debian's chromium and its driver, in which a test opens the load
# report (headless) as a user would. Installed with apt when missing and run as root; otherwise one line says how.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
[ ${#missing[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "lastmile test tools: installing Debian packages: ${missing[*]}" >&2
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
else
  echo "lastmile test tools: missing ${missing[*]}: install with 'sudo apt-get install ${missing[*]}'" >&2
  exit 1
fi
