#!/usr/bin/env bash
# Runs the test suite on both builds of ackdb (issue 19; docs/performance.md):
#   1. pure Python: the editable install that scripts/test-setup.sh made;
#   2. compiled: the mypyc build that scripts/test-setup.sh put in build/compiled
#      (PYTHONPATH puts it first; the servers the tests start inherit it).
# Arguments go to both pytest runs. Exits non-zero when either run fails. Without a
# compiled build (no C compiler), the compiled run is skipped with a warning, except
# under CI=true, where it is required.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
echo "=== ackdb tests: pure-Python build ==="
ACKDB_EXPECT_BUILD=pure python3 -m pytest "$@" || status=1
if [ -d build/compiled/ackdb ]; then
    echo "=== ackdb tests: compiled build (build/compiled) ==="
    ACKDB_EXPECT_BUILD=compiled PYTHONPATH="$PWD/build/compiled${PYTHONPATH:+:$PYTHONPATH}" \
        python3 -m pytest "$@" || status=1
elif [ "${CI:-}" = "true" ]; then
    echo "build/compiled is missing: run scripts/test-setup.sh (CI requires both builds)" >&2
    status=1
else
    echo "warning: build/compiled is missing (no C compiler?): the compiled run is skipped" >&2
fi
exit $status
