#!/usr/bin/env bash
# Install qcal's Debian packages (only what is missing). Sourced by setup.sh
# and test.sh; safe to run on its own.
set -euo pipefail

QCAL_DEBS=(
  gcc libc6-dev pkg-config meson ninja-build git
  g++                       # nvcc's host compiler (the CUDA kernels build where nvcc is found)
  libcriterion-dev libjson-c-dev
  libopenblas-dev libhdf5-dev libzip-dev zlib1g-dev libstb-dev libdnnl-dev
  gnuplot-nox               # qcal report
  libonnx-testdata          # ONNX node test vectors (conformance suite)
  protobuf-c-compiler libprotobuf-c-dev libonnx-dev  # ONNX import: protoc-c over Debian's onnx.proto
  python3-onnx python3-torch python3-torchvision     # ONNX oracles: torch.onnx.export and torch outputs
  python3 python3-numpy     # independent oracle for the calibrators
  python3-h5py              # the results-file test reads HDF5 as users do
  dataset-fashion-mnist     # qcal qat: real labelled images (IDX files)
  clang libclang-rt-14-dev  # libFuzzer targets (scripts/fuzz.sh, run by CI)
)

qcal_install_deps() {
  local missing=()
  for p in "${QCAL_DEBS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # npm fetches the PoseNet weights; many machines already have Node's own npm
  command -v npm >/dev/null || missing+=(npm)
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  echo "qcal: installing Debian packages: ${missing[*]}" >&2
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "qcal: need root or sudo to install: ${missing[*]}" >&2; return 1; }
    sudo="sudo"
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# Configure (once) and build into $1 with any extra meson options.
qcal_build() {
  local dir=$1
  shift
  # The CUDA toolkit lives outside PATH on some machines.
  if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH="/usr/local/cuda/bin:$PATH"
  fi
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >/dev/null
  fi
  ninja -C "$dir" >/dev/null
}

# Run meson test in $1 (extra args follow); print "<label>: N passed, N failed"
# counting Criterion subtests, and return meson's status.
qcal_meson_test() {
  local dir=$1 label=$2
  shift 2
  local log rc=0
  log=$(mktemp)
  meson test -C "$dir" --print-errorlogs --num-processes 2 "$@" 2>&1 | tee "$log" || rc=$?
  local passed failed
  passed=$(awk '/^ *[0-9]+\/[0-9]+ .* OK /{ if (match($0, /[0-9]+ subtests passed/)) n += substr($0, RSTART, RLENGTH) + 0; else n += 1 } END { print n + 0 }' "$log")
  failed=$(awk '/^ *[0-9]+\/[0-9]+ .* (FAIL|ERROR|TIMEOUT) /{ n += 1 } END { print n + 0 }' "$log")
  rm -f "$log"
  echo "$label: $passed passed, $failed failed"
  return $rc
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  qcal_install_deps
fi
