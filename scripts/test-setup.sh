#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: redis-server and
# redis-tools (the reference for differential tests, redis-cli and redis-benchmark),
# faketime (libfaketime: clock jumps in tests/guarantees) and iptables (partitions
# between network namespaces in tests/guarantees), and ackdb itself with its test
# extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null \
    || ! command -v redis-benchmark >/dev/null || ! command -v faketime >/dev/null \
    || ! command -v iptables >/dev/null; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq redis-server redis-tools faketime iptables >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
