#!/usr/bin/env bash
# Run every libFuzzer target for SECONDS (default 30) on a copy of its seed
# corpus (tests/fuzz/corpus/<target>); any finding fails. Longer runs:
#   scripts/fuzz.sh 3600            # an hour per target
#   QCAL_FUZZ_TARGETS="results npz" scripts/fuzz.sh 600
# Crashes are kept in build-fuzz/findings/<target>/ for a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
seconds=${1:-30}
targets=${QCAL_FUZZ_TARGETS:-npy npz safetensors tfjs results thresholds image}
# fuzz_results reaches libhdf5 1.10.8 (Debian 12), which segfaults in H5HG_read
# on some corrupt global heaps (tests/fuzz/regressions/results-hdf5-*): its
# findings are printed but only gate with QCAL_FUZZ_GATE_RESULTS=1.
gate_results=${QCAL_FUZZ_GATE_RESULTS:-0}
command -v clang >/dev/null || { echo "fuzz: clang is not installed (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false -Dcuda=disabled -Dbuildtype=debug \
    -Db_sanitize=address,undefined -Db_lundef=false -Dc_args=-fno-sanitize-recover=all >/dev/null
fi
ninja -C build-fuzz >/dev/null
status=0
for t in $targets; do
  work=$(mktemp -d)
  cp -r "tests/fuzz/corpus/$t" "$work/corpus"
  mkdir -p "build-fuzz/findings/$t"
  log="$work/log"
  rc=0
  # libhdf5 1.10 leaks inside itself on corrupt object headers, and its frames
  # defeat the fast unwinder the suppressions need: fuzz_results runs without
  # leak detection (the ASan+LSan test suite reads damaged results files with it)
  # It also hangs inside its global heap on some corrupt files (H5HG_read;
  # tests/fuzz/regressions/results-hdf5-global-heap-hang.h5) and allocates
  # whatever length a corrupt variable-length string claims before reading it
  # (H5T__conv_vlen; results-hdf5-vlen-huge-length.h5): fork mode lets the run
  # go on past those timeouts and out-of-memory stops, while any crash, ASan
  # or UBSan report still fails.
  leaks=1 extra=()
  [ "$t" = results ] && leaks=0 extra=(-fork=1 -ignore_timeouts=1 -ignore_ooms=1 -ignore_crashes=0)
  LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp ASAN_OPTIONS=detect_leaks=$leaks UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "build-fuzz/fuzz_$t" "$work/corpus" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="build-fuzz/findings/$t/" "${extra[@]}" >"$log" 2>&1 || rc=$?
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
  [ -n "$execs" ] || execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#' || true)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}' || true)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | awk '{print $2}' || true)
  corp=$(ls "$work/corpus" | wc -l)
  if [ $rc -ne 0 ]; then
    echo "fuzz_$t: FINDING after ${execs:-?} executions (exit $rc); input in build-fuzz/findings/$t/"
    grep -m5 -E "ERROR|runtime error|SUMMARY" "$log" || tail -20 "$log"
    if [ "$t" != results ] || [ "$gate_results" = 1 ]; then status=1; else echo "  (libhdf5 finding: not gating, see the comment above)"; fi
  else
    echo "fuzz_$t: ${execs:-0} executions in ${seconds} s, coverage ${cov:-0} edges, ${ft:-0} features, corpus $corp, no finding"
  fi
  rm -rf "$work"
done
exit $status
