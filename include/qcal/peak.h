/* The machine's limits, measured in the same run as the benchmarks:
 * register-resident VNNI / FMA / BF16 loops, the core clock, and the
 * figure conversions every report uses. */
#ifndef QCAL_PEAK_H
#define QCAL_PEAK_H

#include <stddef.h>
#include <stdint.h>

#include "qcal/status.h"

/* Each loop runs `iters` iterations over independent register accumulators
 * (12, or 20 for BF16; separate variables, so nothing spills) and returns the
 * arithmetic operations done (a multiply-add counts 2). */
uint64_t qcal_peak_vnni__avx512(uint64_t iters); /* VPDPBUSD zmm: 128 int8 ops each */
uint64_t qcal_peak_fma__avx512(uint64_t iters);  /* VFMADD231PS zmm: 32 flops each */
uint64_t qcal_peak_bf16__avx512(uint64_t iters); /* VDPBF16PS zmm: 64 flops each */

/* Test hook: QCAL_PEAK_SCALE (> 0) scales every measured limit (peak loops,
 * copy), standing in for a busy machine in the tests of the under-measured
 * flag; 1 when unset. */
double qcal_limit_scale(void);

/* Core clock in GHz from a chain of dependent integer adds (1 cycle each). */
double qcal_measure_ghz(void);

/* Figure conversions. */
static inline double qcal_gemm_ops(int64_t m, int64_t n, int64_t k, int64_t batch) {
  return 2.0 * (double)m * (double)n * (double)k * (double)batch;
}
static inline double qcal_gops(double ops, double seconds) {
  return seconds > 0 ? ops / seconds / 1e9 : 0.0;
}
static inline double qcal_gbps(double bytes, double seconds) {
  return seconds > 0 ? bytes / seconds / 1e9 : 0.0;
}
/* ops per cycle per core from a measured rate */
static inline double qcal_ops_per_cycle(double gops, double ghz, int cores) {
  return ghz > 0 && cores > 0 ? gops / (ghz * cores) : 0.0;
}
/* the peak those imply: ops/cycle x cores x GHz */
static inline double qcal_peak_gops(double ops_per_cycle, int cores, double ghz) {
  return ops_per_cycle * cores * ghz;
}
static inline double qcal_percent(double part, double whole) {
  return whole > 0 ? 100.0 * part / whole : 0.0;
}

/* Robust statistics of repeated timings (v is sorted in place). */
typedef struct qcal_stats {
  double median, min, max, mad; /* mad: median absolute deviation */
  int n;
} qcal_stats;
qcal_stats qcal_stats_of(double *v, int n);

#endif
