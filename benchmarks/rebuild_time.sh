#!/usr/bin/env bash
# How long a rebuild takes after editing a script under image/ (the layers are ordered so that
# only the COPY steps after it rerun). Works on a copy of the tree; prints seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-image.sh >/dev/null            # warm cache
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git ls-files -z | xargs -0 -I{} cp --parents {} "$work"
cp image/extra-ca/*.crt "$work/image/extra-ca/" 2>/dev/null || true
echo "# edited $(date +%s%N)" >> "$work/image/root/docker/healthcheck.sh"
start=$(date +%s.%N)
(cd "$work" && DOCKER_BUILDKIT=0 docker build -q -t hermes-agent:rebuild-bench . >/dev/null 2>&1)
end=$(date +%s.%N)
docker rmi -f hermes-agent:rebuild-bench >/dev/null
printf 'rebuild after editing image/root/docker/healthcheck.sh: %.1f s\n' "$(python3 -c "print($end - $start)")"
