#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for the page tests of `hermesctl serve` (no browser download
# works here: only Debian's packages). Idempotent; needs root to install.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "ensure-browser: chromium/chromedriver missing and we are not root: apt-get install chromium chromium-driver" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
