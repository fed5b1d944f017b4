#!/usr/bin/env bash
# Refresh the CI quality baseline on purpose: run the quick sweep and replace
# .ci/baseline/quick-sweep.h5. Commit the new file with a message that says
# why the numbers changed (docs/regression.md).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
qcal_install_deps
qcal_build build
cache=$(scripts/fetch-data.sh)
QCAL_CACHE="$cache" build/qcal sweep --quick -o .ci/baseline/quick-sweep.h5
echo "qcal: baseline written to .ci/baseline/quick-sweep.h5; review 'git diff --stat' and commit it" >&2
