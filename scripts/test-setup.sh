#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: redis-server and
# redis-tools (the reference for differential tests, redis-cli and redis-benchmark),
# faketime (libfaketime: clock jumps in tests/guarantees) and iptables (partitions
# between network namespaces in tests/guarantees), and ackdb itself with its test
# extras, twice: editable (pure Python) and compiled (build/compiled). Safe to run again.
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
# The editable install is pure Python (an edit takes effect at once): the suite's first run.
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
# The compiled build (mypyc; setup.py) in build/compiled: the suite's second run
# (scripts/test.sh). It needs a C compiler; CI requires it.
if command -v cc >/dev/null || command -v gcc >/dev/null; then
    echo "building the compiled copy in build/compiled (about 90 s)..." >&2
    rm -rf build/compiled
    ACKDB_COMPILE=1 python3 -m pip install -q --disable-pip-version-check --no-deps \
        --target build/compiled .
elif [ "${CI:-}" = "true" ]; then
    echo "no C compiler: CI needs one for the compiled build" >&2
    exit 1
else
    echo "warning: no C compiler: only the pure-Python build will be tested" >&2
fi
