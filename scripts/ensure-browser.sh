#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for the page tests of `hermesctl serve` (no browser download
# works here: only Debian's packages). Idempotent; needs root to install.
set -euo pipefail
. "$(dirname "$0")/lib/debian-packages.sh"
ensure_debian_packages ensure-browser "chromium chromedriver" chromium chromium-driver
