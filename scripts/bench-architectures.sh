#!/usr/bin/env bash
# The architecture benchmark (tests/oracle/bench_architectures.py): at least
# 20 torchvision classifiers, every family, exported by Debian's torch with
# BatchNorm statistics measured on the photos, each quantized by qcal.
#   scripts/bench-architectures.sh --quick      the three engines under the
#       ASan+UBSan build (build-asan), several runs each: no fault anywhere (CI)
#   scripts/bench-architectures.sh [-o FILE.h5] FP32 against ONNX Runtime and
#       INT8 against FP32, alternating rounds, medians: the table, and HDF5
# Extra options go to the script (--networks a,b --threads N --repeat R --rounds K).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
qcal_install_deps
qcal_build build
cache=$(scripts/fetch-data.sh)
extra=()
if [ "${1:-}" = "--quick" ]; then
  qcal_build build-asan -Db_sanitize=address,undefined -Dbuildtype=debug -Dcuda=disabled \
    -Dc_args=-fno-sanitize-recover=all -Db_lundef=false
  extra=(--asan build-asan/qcal)
fi
QCAL_CACHE="$cache" /usr/bin/python3 tests/oracle/bench_architectures.py "$PWD/build/qcal" "$PWD" \
  "$cache/images" "$@" "${extra[@]}"
