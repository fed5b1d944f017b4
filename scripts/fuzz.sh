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
targets=${QCAL_FUZZ_TARGETS:-npy npz safetensors tfjs results thresholds image onnx idx}
# fuzz_results reaches libhdf5 1.10.8 (Debian 12), which itself segfaults,
# hangs or over-allocates on some corrupt files (its global heap, H5HG_read;
# tests/fuzz/regressions/results-hdf5-*). qcal's product reads every results
# file in a child first, so users get one error line; the fuzzer reads in
# process to see every fault. It runs in fork mode past faults, and then each
# saved input is replayed and gates unless its innermost frame is libhdf5's.
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
  rm -rf "build-fuzz/findings/$t"
  mkdir -p "build-fuzz/findings/$t"
  log="$work/log"
  rc=0
  # libhdf5 also leaks inside itself on corrupt object headers, and its frames
  # defeat the fast unwinder suppressions need: no leak detection there (the
  # ASan+LSan test suite reads damaged results files with it)
  leaks=1 extra=()
  [ "$t" = results ] && leaks=0 extra=(-fork=1 -ignore_timeouts=1 -ignore_ooms=1 -ignore_crashes=1)
  LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp ASAN_OPTIONS=detect_leaks=$leaks UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "build-fuzz/fuzz_$t" "$work/corpus" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="build-fuzz/findings/$t/" "${extra[@]}" >"$log" 2>&1 || rc=$?
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
  [ -n "$execs" ] || execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#' || true)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}' || true)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | awk '{print $2}' || true)
  corp=$(ls "$work/corpus" | wc -l)
  hdf5=0 ours=0 slow=0
  if [ "$t" = results ]; then
    for a in build-fuzz/findings/results/*; do
      [ -f "$a" ] || continue
      # fork mode also saves inputs that ran over 10 s once: no fault (hangs
      # are -timeout=20's). Under ASan the fuzzer reads a whole damaged file
      # in process; qcal itself refuses such a file in under a second.
      case "$(basename "$a")" in slow-unit-*) slow=$((slow + 1)); continue ;; esac
      frame=$(ASAN_OPTIONS=detect_leaks=0 timeout 60 "build-fuzz/fuzz_$t" -timeout=20 -rss_limit_mb=4096 "$a" 2>&1 |
        grep -E '^ +#[0-9]+ 0x' | grep -v -E 'interceptor|libclang_rt|compiler-rt|sanitizer|libc\.so|libFuzzer|fuzzer::| in (malloc|calloc|realloc|mem(cpy|set|move)) ' |
        head -1 || true)
      case "$frame" in
      *libhdf5*) hdf5=$((hdf5 + 1)) ;;
      *) ours=$((ours + 1)); echo "fuzz_results: FINDING in qcal: $a"; echo "  $frame" ;;
      esac
    done
    if [ $ours -eq 0 ]; then rc=0; else rc=1; fi
  fi
  if [ $rc -ne 0 ]; then
    echo "fuzz_$t: FINDING after ${execs:-?} executions (exit $rc); input in build-fuzz/findings/$t/"
    grep -m5 -E "ERROR|runtime error|SUMMARY" "$log" || tail -20 "$log"
    status=1
  else
    echo "fuzz_$t: ${execs:-0} executions in ${seconds} s, coverage ${cov:-0} edges, ${ft:-0} features, corpus $corp, no finding in qcal$([ "$hdf5" -gt 0 ] && echo " ($hdf5 inputs fault inside libhdf5: build-fuzz/findings/results/)")$([ "$slow" -gt 0 ] && echo " ($slow slow inputs, no fault)")"
  fi
  rm -rf "$work"
done
exit $status
