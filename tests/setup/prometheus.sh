#!/bin/sh
# Installs Debian's Prometheus server for tests/integration/live_metrics.rs
# (scrape and remote-write checks against a real Prometheus); the tests run it
# only under CI (CI=true). Needs root and the Debian
# package repositories. Idempotent: does nothing when /usr/bin/prometheus
# already exists. Only the binary is used: the tests start their own server
# on a loopback port with a generated config, never the system service.
set -eu
if [ -x /usr/bin/prometheus ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "tests/setup/prometheus.sh: needs root to apt-get install prometheus (or install it yourself: apt-get install prometheus)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# The package's service must not start (no systemd in containers; the tests
# run their own server): policy-rc.d 101 = "action not allowed".
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update
apt-get install -y --no-install-recommends prometheus
