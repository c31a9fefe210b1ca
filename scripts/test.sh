#!/usr/bin/env bash
# The test command (README, CI): make Docker and Compose available, install hermesctl with its
# test dependencies, then run the whole pytest suite against real containers of our image.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k gateway -x`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-docker.sh
bash scripts/ensure-base-image.sh   # may apt-get install debootstrap: before the apt-get below

# The browser, Prometheus and hermesctl itself are installed while the image builds (apt and pip
# here, docker build there): on a fresh machine that is half a minute less.
side_log=$(mktemp)
(
  set -e
  . scripts/lib/debian-packages.sh
  ensure_debian_packages test.sh "chromium chromedriver promtool prometheus" chromium chromium-driver prometheus
  python3 -m pip install -q --disable-pip-version-check -e '.[test]'
) >"$side_log" 2>&1 &
side=$!
bash scripts/ensure-compose.sh
# The image is built once here, not by each pytest worker (the fixture only checks it exists).
if ! bash scripts/build-image.sh >/dev/null; then
  wait "$side" || true
  exit 1
fi
if ! wait "$side"; then
  cat "$side_log" >&2
  echo "$(basename "$0"): installing the test tools or hermesctl failed" >&2
  exit 1
fi
rm -f "$side_log"

export HERMES_TEST_SKIP_BUILD=1
# Most of a Docker test's time is spent waiting for containers, not computing: several workers
# share the two cores well. A file stays on one worker (its module fixtures are made once).
workers=${HERMES_TEST_WORKERS:-4}

set +e
python3 -m pytest -q -p no:cacheprovider -n "$workers" --dist loadfile "$@"
status=$?
set -e
# pytest exits 5 when it collected nothing: that is a failure, not a pass.
if [ "$status" = 5 ]; then
  echo "test.sh: pytest ran no test" >&2
  exit 1
fi
exit "$status"
