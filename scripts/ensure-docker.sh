#!/usr/bin/env bash
# Make a Docker daemon answer on this machine. Idempotent: does nothing when `docker info` works.
# On a fresh machine (client only) and as root, installs Debian's docker.io and starts dockerd in
# the background. Exits non-zero, quoting the end of the dockerd log, when no daemon can be had.
set -euo pipefail

log=${DOCKERD_LOG:-/var/log/dockerd.log}

if docker info >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "ensure-docker: no Docker daemon answers and we are not root; start one yourself" >&2
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "ensure-docker: installing Debian's docker.io" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --no-install-recommends keeps the install small; iptables is needed for bridge networking.
  apt-get install -y -qq --no-install-recommends docker.io iptables iproute2 openssh-client ca-certificates >/dev/null
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "ensure-docker: starting dockerd (log: $log)" >&2
  nohup dockerd >"$log" 2>&1 &
fi

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "ensure-docker: dockerd did not answer within 60 s; end of $log:" >&2
tail -n 20 "$log" >&2 || true
exit 1
