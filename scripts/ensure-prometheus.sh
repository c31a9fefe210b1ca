#!/usr/bin/env bash
# Debian's Prometheus (the server and promtool) for the tests of `hermesctl serve`'s /metrics and
# of compose/prometheus/'s alert rules. Idempotent; needs root to install. The package's own
# service is not started (policy-rc.d in containers; the tests run their own instance).
set -euo pipefail
if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "ensure-prometheus: prometheus/promtool missing and we are not root: apt-get install prometheus" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
