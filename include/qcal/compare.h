/* Regression comparison of two results files. */
#ifndef QCAL_COMPARE_H
#define QCAL_COMPARE_H

#include <stddef.h>

#include "qcal/results.h"

typedef struct qcal_thresholds {
  double sqnr_db_drop;   /* quality: SQNR may fall by at most this (0.05 dB) */
  double amax_rel;       /* quality: amax may move by at most this, relative (1e-6) */
  double agreement_drop; /* quality: keypoint agreement may fall by at most this (0) */
  double alpha;          /* performance: Mann-Whitney U significance (0.05) */
  double min_effect;     /* performance: median slowdown that counts (0.05 = 5%) */
} qcal_thresholds;
#define QCAL_THRESHOLDS_DEFAULT ((qcal_thresholds){0.05, 1e-6, 0.0, 0.05, 0.05})

/* Read "key = value" lines (# comments) over the defaults. */
qcal_status qcal_thresholds_load(const char *path, qcal_thresholds *t);

/* Two-sided Mann-Whitney U p-value (normal approximation with tie and
 * continuity correction, as scipy's asymptotic method). */
double qcal_mann_whitney_p(const double *x, int nx, const double *y, int ny);

typedef enum { CMP_OK, CMP_IMPROVED, CMP_CHANGED, CMP_REGRESSION, CMP_WARN } qcal_cmp_verdict;

typedef struct qcal_cmp_row {
  char key[400], metric[48];
  double base, cur, delta; /* delta: cur - base (relative for timings) */
  double p;                /* timings: U test p-value, else NaN */
  int quality;             /* 1 quality metric, 0 performance */
  qcal_cmp_verdict verdict;
  char note[96];
} qcal_cmp_row;

typedef struct qcal_cmp {
  qcal_cmp_row *rows;
  size_t n, cap;
  char **only_base, **only_new;
  size_t n_only_base, n_only_new;
  int quality_regressions, perf_regressions, warnings;
  size_t compared_keys; /* rows matched between the files */
} qcal_cmp;

/* Fails closed: QCAL_EFORMAT when either file is malformed, when NEW lacks
 * (or has empty) a table that BASE has, or when no row matches. */
qcal_status qcal_compare(qcal_results *base, qcal_results *cur, const qcal_thresholds *t,
                         qcal_cmp *out);
void qcal_cmp_free(qcal_cmp *c);

#endif
