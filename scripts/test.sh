#!/usr/bin/env bash
# Quick start, step 2: every test suite (installs and builds what is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
qcal_install_deps
qcal_build build
log=$(mktemp)
rc=0
meson test -C build --print-errorlogs --num-processes 2 2>&1 | tee "$log" || rc=$?
ok=$(sed -n 's/^Ok:[[:space:]]*\([0-9]*\).*/\1/p' "$log" | tail -1)
fail=$(sed -n 's/^Fail:[[:space:]]*\([0-9]*\).*/\1/p' "$log" | tail -1)
skip=$(sed -n 's/^Skipped:[[:space:]]*\([0-9]*\).*/\1/p' "$log" | tail -1)
rm -f "$log"
echo "tests: ${ok:-0} passed, ${fail:-0} failed, ${skip:-0} skipped"
exit $rc
