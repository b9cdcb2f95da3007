#!/usr/bin/env bash
# What `make test` needs beyond `make deps`: Debian's chromium and its driver, in which a test opens the load
# report (headless) as a user would. Installed with apt when missing and run as root; otherwise one line says how.
# Where a Docker CLI is installed but no compose, Debian's docker-compose too, so that the test of compose/compose.yaml
# runs `docker-compose up` for real (without it, that test is skipped with the reason).
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if command -v docker >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1 \
   && ! docker compose version >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    missing+=(docker-compose)
  else  # optional: its test says why it is skipped
    echo "lastmile test tools: no compose CLI; the compose test is skipped (sudo apt-get install docker-compose)" >&2
  fi
fi
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
