/* qcal bench-calib: histogram collection and amax search speed, printed next
 * to the memory bandwidth measured in the same run. */
#include <omp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/benchout.h"
#include "bench/cli.h"
#include "qcal/calib.h"
#include "qcal/datasets.h"
#include "qcal/kernels.h"

typedef struct {
  int size_mb, reps, threads, quick;
} bench_cfg;

#define O(f) offsetof(bench_cfg, f)
static const qcal_opt opts[] = {
    {"size-mb", "MB", "out-of-cache buffer size in MiB (>= 4x the LLC)", O(size_mb), OPT_INT, 1,
     16384, NULL},
    {"reps", "R", "timed repetitions per figure (after one warm-up)", O(reps), OPT_INT, 3, 100000,
     NULL},
    {"threads", "N", "threads (0: all cores)", O(threads), OPT_INT, 0, 1024, NULL},
    {"quick", NULL, "small sizes and few repetitions (CI)", O(quick), OPT_FLAG, 0, 0, NULL},
    {NULL, NULL, NULL, 0, 0, 0, 0, NULL},
};
#undef O

static const qcal_cmd_info info = {
    "bench-calib",
    "qcal bench-calib [--size-mb MB] [--reps R] [--threads N] [--quick]",
    "Measure STREAM-like copy and read bandwidth, then histogram collection\n"
    "(GB/s of float32 input) and the entropy / mse / percentile amax search on a\n"
    "2048-bin histogram. Medians of R repetitions; min and max in brackets.",
    opts,
};

typedef struct {
  double med, min, max;
} stat3;

static stat3 summarise(double *v, int n) {
  stat3 s;
  s.med = qcal_median(v, (size_t)n); /* sorts */
  s.min = v[0];
  s.max = v[n - 1];
  return s;
}

int qcal_cmd_bench_calib(int argc, char **argv) {
  bench_cfg cfg = {512, 10, 0, 0};
  const char *pos[1];
  int npos, r = qcal_opts_parse(&info, &cfg, argc, argv, pos, 0, &npos);
  if (r)
    return r > 0 ? QCAL_EXIT_OK : QCAL_EXIT_USAGE;
  if (cfg.quick) {
    cfg.size_mb = cfg.size_mb < 128 ? cfg.size_mb : 128;
    cfg.reps = 5;
  }
  const int nt = cfg.threads ? cfg.threads : omp_get_num_procs();
  qcal_pin_threads(nt);
  const size_t n = (size_t)cfg.size_mb << 18; /* floats */
  const double bytes = (double)n * sizeof(float);
  float *a = qcal_alloc(n * sizeof(float)), *b = qcal_alloc(n * sizeof(float));
  double *t = malloc((size_t)cfg.reps * sizeof *t);
  if (!a || !b || !t)
    return qcal_die("bench-calib: cannot allocate 2 x %d MiB", cfg.size_mb);
  qcal_rng rng;
  qcal_rng_seed(&rng, 42);
  for (size_t i = 0; i < n; i++)
    a[i] = (float)qcal_rng_normal(&rng);
  memset(b, 0, n * sizeof(float));

  printf("qcal bench-calib: %d thread(s), kernels %s, %d MiB buffers, %d reps\n\n", nt,
         qcal_kernels()->isa, cfg.size_mb, cfg.reps);
  const qcal_kernel_table *k = qcal_kernels();

  /* STREAM copy: read + write bytes, as STREAM counts them. */
  for (int i = -1; i < cfg.reps; i++) {
    double t0 = qcal_now();
#pragma omp parallel num_threads(nt)
    {
      int id = omp_get_thread_num();
      size_t lo = n * (size_t)id / (size_t)nt, hi = n * (size_t)(id + 1) / (size_t)nt;
      k->f32_copy(hi - lo, a + lo, b + lo);
    }
    if (i >= 0)
      t[i] = qcal_now() - t0;
  }
  stat3 copy = summarise(t, cfg.reps);
  double copy_gbs = 2 * bytes / copy.med / 1e9;
  printf("%-34s %8.2f GB/s  [%.2f .. %.2f]\n", "STREAM copy (read+write)", copy_gbs,
         2 * bytes / copy.max / 1e9, 2 * bytes / copy.min / 1e9);

  /* Read-only pass: the limit of a histogram, which only reads. */
  volatile float sink = 0;
  for (int i = -1; i < cfg.reps; i++) {
    double t0 = qcal_now();
    float mx = 0;
#pragma omp parallel for num_threads(nt) reduction(max : mx)
    for (int id = 0; id < nt; id++) {
      size_t lo = n * (size_t)id / (size_t)nt, hi = n * (size_t)(id + 1) / (size_t)nt;
      float v = k->f32_absmax(hi - lo, a + lo);
      mx = v > mx ? v : mx;
    }
    sink = mx;
    if (i >= 0)
      t[i] = qcal_now() - t0;
  }
  (void)sink;
  stat3 rd = summarise(t, cfg.reps);
  double read_gbs = bytes / rd.med / 1e9;
  printf("%-34s %8.2f GB/s  [%.2f .. %.2f]\n", "read-only pass (abs-max)", read_gbs,
         bytes / rd.max / 1e9, bytes / rd.min / 1e9);

  /* Histogram collection = abs-max pass + binning pass, fresh each time. */
  const size_t sizes[2] = {n, (size_t)1 << 18};
  const char *labels[2] = {"histogram collect, out of cache", "histogram collect, 1 MiB (cache)"};
  qcal_hist_opts ho = QCAL_HIST_OPTS_DEFAULT;
  ho.threads = nt;
  qcal_histogram keep = {0};
  for (int s = 0; s < 2; s++) {
    int reps = s ? cfg.reps * 10 : cfg.reps;
    double *ts = malloc((size_t)reps * sizeof *ts);
    for (int i = -1; i < reps; i++) {
      qcal_histogram h = {0};
      double t0 = qcal_now();
      qcal_status st = qcal_histogram_collect(&h, a, sizes[s], &ho);
      double dt = qcal_now() - t0;
      if (st != QCAL_OK)
        return qcal_die_status(st);
      if (i >= 0)
        ts[i] = dt;
      if (s == 0 && i == reps - 1)
        keep = h;
      else
        qcal_histogram_free(&h);
    }
    stat3 hs = summarise(ts, reps);
    double gbs = (double)sizes[s] * 4 / hs.med / 1e9;
    printf("%-34s %8.2f GB/s  [%.2f .. %.2f]", labels[s], gbs, (double)sizes[s] * 4 / hs.max / 1e9,
           (double)sizes[s] * 4 / hs.min / 1e9);
    if (s == 0)
      printf("  = %.0f%% of read-only, %.0f%% of copy", 100 * gbs / read_gbs, 100 * gbs / copy_gbs);
    printf("\n");
    free(ts);
  }

  printf("\namax search on the %u-bin histogram of %zu gaussian samples (8-bit):\n", keep.nbins, n);
  const char *names[3] = {"entropy", "mse", "percentile"};
  qcal_calib_opts co = QCAL_CALIB_OPTS_DEFAULT;
  for (int mth = 0; mth < 3; mth++) {
    const qcal_method_info *mi = qcal_method_find(names[mth]);
    int reps = cfg.reps * 5;
    double *ts = malloc((size_t)reps * sizeof *ts);
    float amax = 0;
    for (int i = -1; i < reps; i++) {
      double t0 = qcal_now();
      qcal_status st = mi->from_hist(&keep, &co, &amax);
      double dt = qcal_now() - t0;
      if (st != QCAL_OK)
        return qcal_die_status(st);
      if (i >= 0)
        ts[i] = dt;
    }
    stat3 ms = summarise(ts, reps);
    printf("  %-12s %9.3f ms  [%.3f .. %.3f]  amax %.6g\n", names[mth], 1e3 * ms.med, 1e3 * ms.min,
           1e3 * ms.max, (double)amax);
    free(ts);
  }
  printf("\n(issue goals: entropy <= 1 ms, mse <= 1 ms, collect >= 4.5 GB/s on 2 cores)\n");
  qcal_histogram_free(&keep);
  qcal_free(a);
  qcal_free(b);
  free(t);
  return QCAL_EXIT_OK;
}
