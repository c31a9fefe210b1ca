#!/usr/bin/env bash
# From a fresh machine to a running Hermes container managed by hermesctl: Docker daemon, base
# image, the Hermes image, hermesctl itself, one container with a profile, then `hermesctl ps`.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-hermes-1}

bash scripts/ensure-docker.sh
image=$(bash scripts/build-image.sh)
pip_log=$(mktemp)
if ! python3 -m pip install -q --disable-pip-version-check -e . >"$pip_log" 2>&1; then
  cat "$pip_log" >&2
  echo "$(basename "$0"): installing hermesctl failed" >&2
  exit 1
fi
rm -f "$pip_log"

if ! docker container inspect "$name" >/dev/null 2>&1; then
  docker run -d --name "$name" -v "$name-data:/opt/data" --restart unless-stopped "$image" sleep infinity >/dev/null
fi
docker start "$name" >/dev/null
for _ in $(seq 1 100); do
  docker exec "$name" test -e /run/s6/stage2-done 2>/dev/null && break
  sleep 0.2
done
hermesctl profile list "$name" --json | grep -q '"name": "coder"' || hermesctl profile create "$name:coder" --start
hermesctl ps
