#!/usr/bin/env bash
# Installs Debian's Prometheus and Alertmanager (promtool, prometheus, alertmanager, amtool), which
# the budgets tests use: `promtool check/test rules`, `amtool check-config`, and an end-to-end run
# that starts its own prometheus and alertmanager on 127.0.0.1.
#
# Idempotent: does nothing but print the paths when the four binaries are already there. Runs
# `apt-get update` at most once, and only when the packages are not known to apt yet. The system
# services the packages ship are NOT started (policy-rc.d refuses them during the install, and the
# units are stopped and disabled afterwards if the package's postinst left them running): the tests
# start their own processes on free loopback ports.
set -euo pipefail

BINARIES=(promtool prometheus alertmanager amtool)
PACKAGES=(prometheus prometheus-alertmanager)

# Debian names the Alertmanager binary prometheus-alertmanager; upstream tarballs call it alertmanager.
locate() {
    case "$1" in
        alertmanager) command -v prometheus-alertmanager 2>/dev/null || command -v alertmanager 2>/dev/null ;;
        *) command -v "$1" 2>/dev/null ;;
    esac
}

have_all() {
    local b
    for b in "${BINARIES[@]}"; do
        locate "$b" >/dev/null || return 1
    done
}

print_paths() {
    local b
    for b in "${BINARIES[@]}"; do
        printf '%-13s %s\n' "$b" "$(locate "$b" || echo MISSING)"
    done
}

if have_all; then
    print_paths
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi

known_to_apt() {
    local p
    for p in "${PACKAGES[@]}"; do
        apt-cache show "$p" >/dev/null 2>&1 || return 1
    done
}

if ! known_to_apt; then
    $SUDO apt-get update -q
fi

# Keep the packages' postinst from starting prometheus/alertmanager (they would take :9090/:9093).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    created_policy=1
fi
cleanup() {
    if [ "$created_policy" -eq 1 ]; then
        $SUDO rm -f "$policy"
    fi
}
trap cleanup EXIT

DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"

if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    for unit in prometheus prometheus-alertmanager; do
        $SUDO systemctl stop "$unit" >/dev/null 2>&1 || true
        $SUDO systemctl disable "$unit" >/dev/null 2>&1 || true
    done
fi

if ! have_all; then
    echo "install-observability: installed ${PACKAGES[*]} but some binaries are missing:" >&2
    print_paths >&2 || true
    exit 1
fi
print_paths
