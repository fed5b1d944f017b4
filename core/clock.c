/* Core clock estimate and timing statistics. */
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "qcal/peak.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double qcal_limit_scale(void) {
  const char *e = getenv("QCAL_PEAK_SCALE");
  double s = e ? atof(e) : 0;
  return s > 0 ? s : 1.0;
}

double qcal_measure_ghz(void) {
#if defined(__x86_64__)
  double best = 0;
  for (int rep = 0; rep < 5; rep++) {
    uint64_t n = 20000000, x = 0, one = 1;
    double t0 = now();
    /* 8 dependent register adds per iteration: 8 cycles; the loop counter
     * runs beside. Register, not immediate, operands: some cores fold chains
     * of add-immediate at rename and would report twice the clock. */
    __asm__ volatile("1:\n\t"
                     "add %2, %0\n\tadd %2, %0\n\tadd %2, %0\n\tadd %2, %0\n\t"
                     "add %2, %0\n\tadd %2, %0\n\tadd %2, %0\n\tadd %2, %0\n\t"
                     "dec %1\n\tjnz 1b"
                     : "+r"(x), "+r"(n)
                     : "r"(one));
    double ghz = 8.0 * 20000000.0 / (now() - t0) / 1e9;
    best = ghz > best ? ghz : best;
  }
  return best;
#else
  return 0.0;
#endif
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median_sorted(const double *v, int n) {
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

qcal_stats qcal_stats_of(double *v, int n) {
  qcal_stats s = {0, 0, 0, 0, n};
  if (n <= 0)
    return s;
  qsort(v, (size_t)n, sizeof *v, cmp);
  s.median = median_sorted(v, n);
  s.min = v[0];
  s.max = v[n - 1];
  double *d = malloc((size_t)n * sizeof *d);
  if (d) {
    for (int i = 0; i < n; i++)
      d[i] = fabs(v[i] - s.median);
    qsort(d, (size_t)n, sizeof *d, cmp);
    s.mad = median_sorted(d, n);
    free(d);
  }
  return s;
}
