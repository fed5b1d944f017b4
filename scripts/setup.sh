#!/usr/bin/env bash
# Quick start, step 1: install the Debian packages, build, run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
qcal_install_deps
qcal_build build
echo "qcal: built build/qcal ($(build/qcal version))" >&2
cache=$(scripts/fetch-data.sh)
QCAL_CACHE="$cache" build/qcal sweep "$@"
