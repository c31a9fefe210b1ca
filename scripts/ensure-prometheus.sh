#!/usr/bin/env bash
# Debian's Prometheus (the server and promtool) for the tests of `hermesctl serve`'s /metrics and
# of compose/prometheus/'s alert rules. Idempotent; needs root to install. The package's own
# service is not started (policy-rc.d in containers; the tests run their own instance).
set -euo pipefail
. "$(dirname "$0")/lib/debian-packages.sh"
ensure_debian_packages ensure-prometheus "promtool prometheus" prometheus
