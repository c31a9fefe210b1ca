#!/usr/bin/env bash
# The test command (README, CI): make Docker and Compose available, install hermesctl with its
# test dependencies, then run the whole pytest suite against real containers of our image.
# Extra arguments go to pytest, to both halves below (e.g. `bash scripts/test.sh -k gateway -x`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-docker.sh
bash scripts/ensure-compose.sh
bash scripts/ensure-base-image.sh   # may apt-get install debootstrap: before the apt-get below

# The image is built once here, not by each pytest worker (the fixture only checks it exists). It
# builds in the background: only the tests that use Docker need it, and meanwhile the test tools
# are installed and the tests that need no daemon run (on a fresh machine, most of the build's
# minute is spent on those).
build_log=$(mktemp)
bash scripts/build-image.sh >"$build_log" 2>&1 &
build=$!
finish_build() {  # wait for the build; its output only when it failed
  if ! wait "$build"; then
    cat "$build_log" >&2
    echo "$(basename "$0"): building the image failed" >&2
    return 1
  fi
  rm -f "$build_log"
}

tools_log=$(mktemp)
if ! { . scripts/lib/debian-packages.sh &&
       ensure_debian_packages test.sh "chromium chromedriver promtool prometheus prometheus-alertmanager" chromium chromium-driver prometheus prometheus-alertmanager &&
       python3 -m pip install -q --disable-pip-version-check -e '.[test]'; } >"$tools_log" 2>&1; then
  cat "$tools_log" >&2
  echo "$(basename "$0"): installing the test tools or hermesctl failed" >&2
  finish_build || true
  exit 1
fi
rm -f "$tools_log"

set +e
python3 -m pytest -q -p no:cacheprovider -n 2 -m "not docker" "$@"
fast=$?
set -e
finish_build

export HERMES_TEST_SKIP_BUILD=1
# Most of a Docker test's time is spent waiting for containers, not computing: several workers
# share the two cores well. A file stays on one worker (its module fixtures are made once).
workers=${HERMES_TEST_WORKERS:-4}
set +e
python3 -m pytest -q -p no:cacheprovider -n "$workers" --dist loadfile -m docker "$@"
real=$?
set -e

# pytest exits 5 when it collected nothing: fine for one half (a -k that selects only the other),
# a failure when neither ran a test.
if [ "$fast" = 5 ] && [ "$real" = 5 ]; then
  echo "test.sh: pytest ran no test" >&2
  exit 1
fi
for status in "$fast" "$real"; do
  if [ "$status" != 0 ] && [ "$status" != 5 ]; then
    exit "$status"
  fi
done
exit 0
