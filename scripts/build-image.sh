#!/usr/bin/env bash
# Build the Hermes image (tag: $HERMES_IMAGE, default hermes-agent:local) with the legacy builder.
# HERMES_FLAVOUR: full (the default: the extras, provider SDKs and tool programs upstream's image
# carries) or slim (hermes-agent and aiohttp only).
# EXTRA_CA_BUNDLE: a PEM bundle to trust during the build (defaults to the host's bundle when it
# exists, so builds work behind a TLS-intercepting proxy). Never disables TLS verification.
set -euo pipefail
cd "$(dirname "$0")/.."
image=${HERMES_IMAGE:-hermes-agent:local}
bundle=${EXTRA_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
flavour=${HERMES_FLAVOUR:-full}
case "$flavour" in
  full|slim) ;;
  *) echo "build-image: HERMES_FLAVOUR must be full or slim, not '$flavour'" >&2; exit 2 ;;
esac
flavour_arg="FLAVOUR=$flavour"

bash scripts/ensure-base-image.sh
if [ -f "$bundle" ]; then
  # Only rewrite when it changed, so the layer cache survives.
  cmp -s "$bundle" image/extra-ca/host-bundle.crt 2>/dev/null || cp "$bundle" image/extra-ca/host-bundle.crt
fi
log=$(mktemp)
trap 'rm -f "$log" "$log".*' EXIT
base_arg="BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim}"

# The legacy builder (what the Docker SDK uses too) builds one stage after another, but the SQLite
# stage (a compile), the venv stage (pip) and the final stage's first, slowest layers (apt, npm)
# do not depend on each other: the three are built side by side first, and the full build below
# finds them in the layer cache (same parent, same instructions). Only a speed-up: if a warm-up
# fails, the full build does that work itself and reports.
stage() {  # the global ARGs, then the stage named $1
  awk -v name="$1" '/^FROM /{froms++; in_stage = ($NF == name)} froms==0 || in_stage {print}' Dockerfile
}
runtime_layers() {  # the global ARGs, then the final stage up to its first COPY --from
  awk -v last="$(grep -c '^FROM ' Dockerfile)" \
    '/^FROM /{froms++} froms==last && /^COPY --from=/{exit} froms==0 || froms==last {print}' Dockerfile
}
DOCKER_BUILDKIT=0 docker build --target sqlite-build --build-arg "$base_arg" --build-arg "$flavour_arg" . >"$log.sqlite" 2>&1 &
sqlite_warmup=$!
stage venv-build | DOCKER_BUILDKIT=0 docker build -f - --build-arg "$base_arg" --build-arg "$flavour_arg" . >"$log.venv" 2>&1 &
venv_warmup=$!
runtime_layers | DOCKER_BUILDKIT=0 docker build -f - --build-arg "$base_arg" --build-arg "$flavour_arg" . >"$log.runtime" 2>&1 || true
wait "$sqlite_warmup" || true
wait "$venv_warmup" || true

# Its output is shown only when it fails.
if ! DOCKER_BUILDKIT=0 docker build -t "$image" --build-arg "$base_arg" --build-arg "$flavour_arg" . >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "build-image: docker build failed" >&2
  exit 1
fi
echo "$image"
