#!/usr/bin/env bash
# Quick start, step 2: every test suite (installs and builds what is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
qcal_install_deps
qcal_build build
qcal_meson_test build tests
