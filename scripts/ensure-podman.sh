#!/usr/bin/env bash
# Debian's Podman (4.3 on bookworm), for tests/test_podman.py: the same fleet operations on a
# second engine, through its Docker-compatible API. Idempotent; needs root to install. With its
# recommended packages: the compose fleet's network needs netavark and aardvark-dns.
set -euo pipefail
if podman --version >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "ensure-podman: podman missing and we are not root: apt-get install podman" >&2
  exit 1
fi
# Another apt-get of the same run may hold the lock: wait for it rather than fail.
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq podman >/dev/null
podman --version
