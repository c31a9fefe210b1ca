#!/usr/bin/env bash
# Build the Hermes image (tag: $HERMES_IMAGE, default hermes-agent:local) with the legacy builder.
# EXTRA_CA_BUNDLE: a PEM bundle to trust during the build (defaults to the host's bundle when it
# exists, so builds work behind a TLS-intercepting proxy). Never disables TLS verification.
set -euo pipefail
cd "$(dirname "$0")/.."
image=${HERMES_IMAGE:-hermes-agent:local}
bundle=${EXTRA_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

bash scripts/ensure-base-image.sh
if [ -f "$bundle" ]; then
  # Only rewrite when it changed, so the layer cache survives.
  cmp -s "$bundle" image/extra-ca/host-bundle.crt 2>/dev/null || cp "$bundle" image/extra-ca/host-bundle.crt
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# The legacy builder (what the Docker SDK uses too); its output is shown only when it fails.
if ! DOCKER_BUILDKIT=0 docker build -t "$image" --build-arg "BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim}" . >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "build-image: docker build failed" >&2
  exit 1
fi
echo "$image"
