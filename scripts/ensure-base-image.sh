#!/usr/bin/env bash
# Make the base image (BASE_IMAGE, default debian:bookworm-slim) available locally.
# Order: already present -> docker pull -> build it with debootstrap + docker import.
# The debootstrap path exists for machines without a registry (air-gapped CI, proxies).
set -euo pipefail

image=${BASE_IMAGE:-debian:bookworm-slim}
suite=${BASE_SUITE:-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if docker image inspect "$image" >/dev/null 2>&1; then
  exit 0
fi
if timeout 60 docker pull "$image" >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "ensure-base-image: cannot pull $image and building it needs root (debootstrap)" >&2
  exit 1
fi
echo "ensure-base-image: $image cannot be pulled; building it with debootstrap ($suite)" >&2
if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
root=$(mktemp -d /tmp/hermes-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase "$suite" "$root" "$mirror" >/tmp/hermes-debootstrap.log 2>&1 || {
  echo "ensure-base-image: debootstrap failed; end of /tmp/hermes-debootstrap.log:" >&2
  tail -n 20 /tmp/hermes-debootstrap.log >&2
  exit 1
}
# Trim what a container never needs, as the official slim images do.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
  "$root"/usr/share/man/* "$root"/usr/share/locale/*
tar -C "$root" -c . | docker import \
  --change 'CMD ["bash"]' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  - "$image" >/dev/null
echo "ensure-base-image: imported $image" >&2
