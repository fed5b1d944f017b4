/* Quantization error metrics with a mergeable accumulator (llama.cpp
 * quantize-stats style): threads and batches combine without a second pass. */
#ifndef QCAL_METRICS_H
#define QCAL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "qcal/quant.h"
#include "qcal/tensor.h"

typedef struct qcal_error_stats {
  uint64_t n, n_clip;
  double sum_x2;    /* sum x^2 */
  double sum_xh2;   /* sum xhat^2 */
  double sum_dot;   /* sum x * xhat */
  double sse_clip;  /* sum (x - xhat)^2 where |x| > amax */
  double sse_round; /* the rest */
  double max_abs_err;
} qcal_error_stats;

typedef struct qcal_metrics {
  uint64_t n;
  double mse;     /* (clip_mse + round_mse) */
  double sqnr_db; /* 10 log10(sum x^2 / sum err^2); +inf if no error */
  double max_abs_err;
  double cosine;        /* 1 when both x and xhat are all zero */
  double clip_fraction; /* share of |x| > amax */
  double clip_mse;      /* sum of clipped squared errors / n */
  double round_mse;     /* sum of the other squared errors / n */
} qcal_metrics;

void qcal_error_stats_init(qcal_error_stats *s);
/* Add n pairs (x, xhat) quantized with one amax. */
void qcal_error_stats_update(qcal_error_stats *s, size_t n, const float *x, const float *xhat,
                             float amax);
void qcal_error_stats_combine(qcal_error_stats *into, const qcal_error_stats *other);
void qcal_error_stats_finish(const qcal_error_stats *s, qcal_metrics *m);

/* Fake-quantize t over a layout built from axis (QCAL_PER_TENSOR or an axis)
 * with amax per channel, accumulate into s (threaded). */
qcal_status qcal_error_stats_tensor(qcal_error_stats *s, const qcal_tensor *t, int axis,
                                    const float *amax, qcal_qformat f);

/* A dB figure for tables: "-" for NaN, "exact" for +inf, else %.1f. */
const char *qcal_db_text(double db, char *buf, size_t cap);

#endif
