#!/bin/sh
# Installs Debian's headless-capable Chromium for tests/integration/html_report.rs (the
# report.html render test); the tests run it only under CI (CI=true). Needs
# root and the Debian package repositories.
# Idempotent: does nothing when /usr/bin/chromium already exists.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "tests/setup/chromium.sh: needs root to apt-get install chromium (or install it yourself: apt-get install chromium)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium
