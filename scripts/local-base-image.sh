#!/usr/bin/env bash
# Builds lastmile/python:3.11-slim-local, a local stand-in for python:3.11-slim for machines that cannot pull
# from a registry: Debian bookworm (debootstrap --variant=minbase, from the mirror apt already uses) with
# Debian's python3 (3.11), a venv at /opt/python first on PATH (so `python` and `pip` work as in the official
# image; pip is raised to 24.0, which python:3.11 images have shipped), ca-certificates and passwd (useradd).
#
#   scripts/local-base-image.sh            # does nothing when the image already exists
#
# The host's CA bundle (/etc/ssl/certs/ca-certificates.crt) replaces the image's, and PIP_CERT points pip at it,
# so `pip install` in an image built FROM this one trusts whatever the host trusts (a TLS-inspecting proxy in
# front of PyPI, for instance); the official image is left to its own certificates.
# Needs root, debootstrap and a Docker engine. Environment: LASTMILE_LOCAL_BASE_IMAGE (the image name),
# DEBIAN_MIRROR (default: the first bookworm mirror in /etc/apt/sources.list{,.d}, else deb.debian.org),
# HOST_CA_BUNDLE (default /etc/ssl/certs/ca-certificates.crt; empty: keep Debian's own).
set -euo pipefail

IMAGE=${LASTMILE_LOCAL_BASE_IMAGE:-lastmile/python:3.11-slim-local}
SUITE=bookworm
PIP_VERSION=24.0
HOST_CA_BUNDLE=${HOST_CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}

die() { echo "local-base-image: $*" >&2; exit 1; }
say() { echo "local-base-image: $*" >&2; }

command -v docker >/dev/null 2>&1 || die "no docker CLI on PATH: install it (apt-get install docker.io) and start dockerd"
docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info failed): start dockerd, or check DOCKER_HOST"
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  say "$IMAGE already exists, nothing to do (docker rmi $IMAGE to rebuild)"
  exit 0
fi
command -v debootstrap >/dev/null 2>&1 || die "no debootstrap on PATH: install it (apt-get install debootstrap)"
[ "$(id -u)" = 0 ] || die "debootstrap needs root: run this script as root"

# The URI of the first apt source (one-line or deb822) whose suites include exactly $1.
mirror_for() {
  local suite=$1 file
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$file" ] || continue
    case $file in
      *.sources)
        awk -v suite="$suite" '
          function flush() { if (uri != "" && found && deb) { print uri; exit } uri = ""; found = 0; deb = 1 }
          BEGIN { deb = 1 }
          /^[[:space:]]*$/ { flush(); next }
          /^[[:space:]]*#/ { next }
          tolower($1) == "uris:" { uri = $2 }
          tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) found = 1 }
          tolower($1) == "types:" { deb = 0; for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
          END { flush() }' "$file" ;;
      *)
        awk -v suite="$suite" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                                              if ($(i + 1) == suite) { print $i; exit } }' "$file" ;;
    esac
  done | head -n 1
}

MIRROR=${DEBIAN_MIRROR:-$(mirror_for "$SUITE")}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=$(mirror_for "$SUITE-security")
if [ -n "$HOST_CA_BUNDLE" ] && [ ! -r "$HOST_CA_BUNDLE" ]; then
  die "cannot read the CA bundle $HOST_CA_BUNDLE: set HOST_CA_BUNDLE to the host's bundle, or to '' to skip it"
fi

work=$(mktemp -d /var/tmp/lastmile-base.XXXXXX)
rootfs=$work/rootfs
cleanup() {
  mountpoint -q "$rootfs/proc" 2>/dev/null && umount "$rootfs/proc"
  rm -rf "$work"
}
trap cleanup EXIT
started=$(date +%s)

say "debootstrap $SUITE (minbase) from $MIRROR; the log is $work/debootstrap.log while it runs"
if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
     "$SUITE" "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1; then
  tail -n 20 "$work/debootstrap.log" >&2
  die "debootstrap $SUITE from $MIRROR failed (set DEBIAN_MIRROR to a reachable Debian mirror)"
fi

# Point releases and security fixes, as debian:bookworm-slim has them.
{
  echo "deb $MIRROR $SUITE main"
  echo "deb $MIRROR $SUITE-updates main"
  [ -z "$SECURITY_MIRROR" ] || echo "deb $SECURITY_MIRROR $SUITE-security main"
} >"$rootfs/etc/apt/sources.list"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
mount -t proc proc "$rootfs/proc"
in_root() { chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root "$@"; }
say "apt-get upgrade (bookworm-updates${SECURITY_MIRROR:+, bookworm-security})"
if ! in_root sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -y -qq upgrade' \
     >"$work/upgrade.log" 2>&1; then
  tail -n 20 "$work/upgrade.log" >&2
  die "apt-get upgrade in the new root failed"
fi

if [ -n "$HOST_CA_BUNDLE" ]; then
  cp "$HOST_CA_BUNDLE" "$rootfs/etc/ssl/certs/ca-certificates.crt"
fi
say "python venv at /opt/python with pip $PIP_VERSION"
in_root python3 -m venv /opt/python || die "python3 -m venv /opt/python failed in the new root"
in_root /opt/python/bin/pip install -q --disable-pip-version-check --no-cache-dir \
  --cert /etc/ssl/certs/ca-certificates.crt "pip==$PIP_VERSION" \
  || die "pip could not upgrade itself to $PIP_VERSION from PyPI in the new root (is PyPI reachable, and trusted by $HOST_CA_BUNDLE?)"
ln -s /opt/python/bin/python3 "$rootfs/usr/local/bin/python"
ln -s /opt/python/bin/pip "$rootfs/usr/local/bin/pip"
in_root sh -c 'command -v useradd >/dev/null' || die "useradd is missing from the new root (package passwd)"
umount "$rootfs/proc"

# What debian:bookworm-slim leaves out (apt's caches and lists, documentation, translations), now and for
# packages installed later, and the build's resolv.conf.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* \
       "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log \
       "$rootfs"/usr/share/locale/* "$rootfs"/tmp/* "$rootfs"/root/.cache
printf 'path-exclude /usr/share/%s/*\n' doc man info locale >"$rootfs/etc/dpkg/dpkg.cfg.d/lastmile-slim"
: >"$rootfs/etc/resolv.conf"

say "importing the root as $IMAGE"
changes=(--change 'ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
         --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]')
[ -z "$HOST_CA_BUNDLE" ] || changes+=(--change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt')
tar --numeric-owner -C "$rootfs" -c . | docker import "${changes[@]}" \
  --message "debootstrap --variant=minbase $SUITE + python3 venv (lastmile local stand-in for python:3.11-slim)" \
  - "$IMAGE" >/dev/null || die "docker import of the new root failed"

version=$(docker run --rm "$IMAGE" sh -c 'python --version && pip --version | cut -d" " -f1-2' | tr '\n' ' ')
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
say "built $IMAGE in $(( $(date +%s) - started ))s: ${version}$(( size / 1000000 )) MB"
