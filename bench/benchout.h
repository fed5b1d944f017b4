/* Benchmark records shared by qcal gemm and qcal stream: every repetition
 * kept, robust statistics, and output as Google Benchmark JSON and as HDF5
 * tables. */
#ifndef QCAL_BENCH_BENCHOUT_H
#define QCAL_BENCH_BENCHOUT_H

#include "qcal/paths.h"
#include "qcal/peak.h"
#include "qcal/results.h"

typedef struct bench_rec {
  char name[160];  /* gemm/cpu/u8s8s32/2048x2048x2048 */
  double *samples; /* seconds per repetition */
  int nsamples;
  qcal_stats st;
  char counters[8][24];
  double values[8];
  int ncounters;
} bench_rec;

typedef struct bench_set {
  bench_rec *recs;
  int n, cap;
} bench_set;

/* Add a record (samples copied); returns it for counters. */
bench_rec *qcal_bench_add(bench_set *b, const char *name, const double *samples, int n);
void qcal_bench_counter(bench_rec *r, const char *key, double v);
void qcal_bench_free(bench_set *b);
/* Google Benchmark shaped JSON: one "iteration" entry per repetition plus
 * median/mean/stddev aggregates, times in ns. */
qcal_status qcal_bench_write_json(const bench_set *b, const char *path, const char *context_json);
/* /samples/{name,offset,count} + /samples/seconds: every repetition. */
qcal_status qcal_bench_write_samples(qcal_h5 *h, const bench_set *b);
/* Write the optional outputs of a benchmark command: the Google Benchmark
 * JSON and an HDF5 file with provenance, the tables and every sample. */
qcal_status qcal_bench_write_outputs(const bench_set *b, const char *h5_path, const char *json_path,
                                     qcal_table *const *tables, int ntables,
                                     const char *context_json);
/* Pin the OpenMP team (thread i on CPU i mod ncpu) and size it. */
void qcal_pin_threads(int nt);
/* Memory available to this process (bytes), for checks before allocating. */

#endif
