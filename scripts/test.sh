#!/usr/bin/env bash
# The test command (README, CI): make Docker, Compose (and Podman) available, install hermesctl with its
# test dependencies, then run the whole pytest suite against real containers of our image.
# Extra arguments go to pytest, to both halves below (e.g. `bash scripts/test.sh -k gateway -x`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-docker.sh
bash scripts/ensure-compose.sh
bash scripts/ensure-base-image.sh   # may apt-get install debootstrap: before the apt-get below

# The images are built here, not by each pytest worker (the fixtures only check them). Two
# flavours of one in-container tree: the slim one (hermes-agent alone, about a minute to build)
# carries everything the Docker tests exercise but what only the full one carries; the full one
# (the default users get: extras, SDKs, tool programs; minutes cold) is for the tests of those
# (tests/conftest.py `full_image`), which wait for it. Both build in the background: only the
# Docker tests need them, and meanwhile the test tools are installed and the tests that need no
# daemon run; the full build goes on while the Docker tests run.
slim_image=${HERMES_SLIM_IMAGE:-hermes-agent:local-slim}
full_image=${HERMES_IMAGE:-hermes-agent:local}
build_log=$(mktemp)
full_log=$(mktemp)
full_ready=$(mktemp -u)
HERMES_FLAVOUR=slim HERMES_IMAGE=$slim_image bash scripts/build-image.sh >"$build_log" 2>&1 &
build=$!
finish_build() {  # wait for the slim build; its output only when it failed
  if ! wait "$build"; then
    cat "$build_log" >&2
    echo "$(basename "$0"): building the image failed" >&2
    return 1
  fi
  rm -f "$build_log"
}
build_full() {  # after the slim build (they share the SQLite stage): the verdict in $full_ready
  wait_for_slim=$1
  while kill -0 "$wait_for_slim" 2>/dev/null; do sleep 1; done
  if HERMES_FLAVOUR=full HERMES_IMAGE=$full_image bash scripts/build-image.sh >"$full_log" 2>&1; then
    echo ok >"$full_ready.tmp"
  else
    tail -n 60 "$full_log" >"$full_ready.tmp"
  fi
  mv "$full_ready.tmp" "$full_ready"
}
build_full "$build" &
full_build=$!
trap 'rm -f "$full_log" "$full_ready"' EXIT
finish_full_build() {  # the image users get must build, whichever tests ran
  wait "$full_build" || true
  if [ "$(cat "$full_ready" 2>/dev/null)" != ok ]; then
    cat "$full_ready" >&2 2>/dev/null || true
    echo "$(basename "$0"): building the full image failed" >&2
    return 1
  fi
}

# The tests start hundreds of Pythons (pytest's workers, the CLI, collection of every test file in
# each worker): with PYTHONDONTWRITEBYTECODE set, as on some CI machines, each of them compiles the
# tree's modules again, seconds of CPU per worker in a CPU-bound suite. The clone's own
# __pycache__ (ignored by git and by the image's build context) is what an installed tree has.
export PYTHONDONTWRITEBYTECODE=

tools_log=$(mktemp)
if ! { . scripts/lib/debian-packages.sh &&
       ensure_debian_packages test.sh "chromium chromedriver promtool prometheus prometheus-alertmanager" chromium chromium-driver prometheus prometheus-alertmanager &&
       bash scripts/ensure-podman.sh &&
       python3 -m pip install -q --disable-pip-version-check -e '.[test]'; } >"$tools_log" 2>&1; then
  cat "$tools_log" >&2
  echo "$(basename "$0"): installing the test tools or hermesctl failed" >&2
  finish_build || true
  finish_full_build || true
  exit 1
fi
rm -f "$tools_log"

# The daemon-free half runs beside the Docker half: those tests compute while most Docker tests
# wait for containers. Its output is printed when it ends, in one piece.
fast_log=$(mktemp)
# A background job of a script starts with SIGINT ignored (bash does that without job control),
# and so would every process it starts: the tests that send Ctrl-C need it as a terminal gives it.
python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])' \
  python3 -m pytest -q -p no:cacheprovider -n 2 -m "not docker" "$@" >"$fast_log" 2>&1 &
fast_run=$!
finish_fast() {
  set +e
  wait "$fast_run"
  fast=$?
  set -e
  echo "== the daemon-free tests (pytest -m 'not docker') =="
  cat "$fast_log"
  rm -f "$fast_log"
}
if ! finish_build; then
  finish_fast
  exit 1
fi

export HERMES_TEST_SKIP_BUILD=1 HERMES_IMAGE=$slim_image HERMES_FULL_IMAGE=$full_image HERMES_FULL_IMAGE_READY=$full_ready
# Most of a Docker test's time is spent waiting for containers, not computing: several workers
# share the two cores well. A file stays on one worker (its module fixtures are made once).
workers=${HERMES_TEST_WORKERS:-4}
set +e
python3 -m pytest -q -p no:cacheprovider -n "$workers" --dist loadfile -m docker "$@"
real=$?
set -e
finish_fast

finish_full_build

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
