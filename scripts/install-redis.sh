#!/usr/bin/env bash
# Install Debian's redis-server for the guard tests (tests/test_budgets_redis.py start their own
# server on 127.0.0.1; the system service is never started or enabled by this script).
# Idempotent: does nothing when redis-server is already on PATH. Needs root (or sudo).
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
  echo "redis-server already installed: $(redis-server --version)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

# policy-rc.d exit 101 tells invoke-rc.d not to start services while packages install; it is
# removed again afterwards unless it was there before.
POLICY=/usr/sbin/policy-rc.d
OWN_POLICY=0
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod +x "$POLICY"
  OWN_POLICY=1
fi
cleanup() {
  if [ "$OWN_POLICY" = 1 ]; then
    $SUDO rm -f "$POLICY"
  fi
}
trap cleanup EXIT

# apt-get update once: only when the package lists do not know redis-server yet.
if ! apt-cache show redis-server >/dev/null 2>&1; then
  $SUDO apt-get update -q
fi
$SUDO apt-get install -y -q --no-install-recommends redis-server

# Debian enables the unit on install; nothing here should run a system-wide server.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
fi

echo "installed: $(redis-server --version)"
