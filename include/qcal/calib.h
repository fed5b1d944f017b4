/* Calibrators with pytorch-quantization semantics: max, the |x| histogram
 * collector, and amax from a histogram by entropy, mse or percentile. */
#ifndef QCAL_CALIB_H
#define QCAL_CALIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qcal/quant.h"
#include "qcal/status.h"
#include "qcal/tensor.h"

#define QCAL_MAX_BINS (1u << 24)

/* Histogram of |x|: counts[k] covers [edges[k], edges[k+1]). */
typedef struct qcal_histogram {
  uint32_t nbins;
  uint64_t *counts; /* nbins */
  float *edges;     /* nbins + 1 */
} qcal_histogram;

typedef struct qcal_hist_opts {
  uint32_t nbins;  /* bins of the first batch (2048) */
  bool skip_zeros; /* drop |x| == 0 */
  int threads;     /* 0: all available */
} qcal_hist_opts;
#define QCAL_HIST_OPTS_DEFAULT ((qcal_hist_opts){2048, false, 0})

/* Add a batch to one histogram. The first batch sets the range
 * [0, max|x|]; a later batch beyond it keeps the bin width and appends bins.
 * x must be finite. */
qcal_status qcal_histogram_collect(qcal_histogram *h, const float *x, size_t n,
                                   const qcal_hist_opts *o);
void qcal_histogram_free(qcal_histogram *h);
/* Deep copy. */
qcal_status qcal_histogram_copy(qcal_histogram *dst, const qcal_histogram *src);

/* Per-tensor (axis = QCAL_PER_TENSOR) or per-channel histograms. */
typedef struct qcal_hist_collector {
  qcal_hist_opts opts;
  int axis;
  size_t channels; /* 0 until the first batch */
  qcal_histogram *hist;
  float *scratch;
  size_t scratch_len;
} qcal_hist_collector;

qcal_status qcal_hist_collector_init(qcal_hist_collector *c, int axis, const qcal_hist_opts *o);
qcal_status qcal_hist_collector_collect(qcal_hist_collector *c, const qcal_tensor *t);
void qcal_hist_collector_free(qcal_hist_collector *c);

/* Channel ch of a layout as one contiguous span: a pointer into x when
 * outer == 1, else a copy in scratch (outer * inner floats). */
const float *qcal_gather_channel(const qcal_layout *l, const float *x, size_t ch, float *scratch);

/* Running max of |x|, per tensor or per channel. */
typedef struct qcal_max_collector {
  int axis;
  size_t channels;
  float *amax;
} qcal_max_collector;

qcal_status qcal_max_collector_init(qcal_max_collector *c, int axis);
qcal_status qcal_max_collector_collect(qcal_max_collector *c, const qcal_tensor *t);
void qcal_max_collector_free(qcal_max_collector *c);

typedef struct qcal_calib_opts {
  qcal_qformat fmt;
  uint32_t start_bin; /* 128 */
  uint32_t stride;    /* 1 */
  double percentile;  /* 99.99 */
} qcal_calib_opts;
#define QCAL_CALIB_OPTS_DEFAULT ((qcal_calib_opts){QCAL_QFORMAT_INT8, 128, 1, 99.99})

qcal_status qcal_amax_entropy(const qcal_histogram *h, const qcal_calib_opts *o, float *amax);
qcal_status qcal_amax_mse(const qcal_histogram *h, const qcal_calib_opts *o, float *amax);
qcal_status qcal_amax_percentile(const qcal_histogram *h, const qcal_calib_opts *o, float *amax);

/* The method table. */
typedef qcal_status qcal_hist_method_fn(const qcal_histogram *h, const qcal_calib_opts *o,
                                        float *amax);
typedef struct qcal_method_info {
  const char *name;
  const char *help;
  qcal_hist_method_fn *from_hist; /* NULL: max calibrator, no histogram */
} qcal_method_info;

extern const qcal_method_info qcal_methods[];

/* The method configurations every sweep, demo and report compares: max,
 * entropy, mse and percentile at 99.9 / 99.99 / 99.999. */
typedef struct qcal_method_config {
  const char *label;  /* max, entropy, mse, pct99.9, pct99.99, pct99.999 */
  const char *method; /* the calibrator's name in qcal_methods */
  double percentile;  /* 0 unless method is percentile */
} qcal_method_config;
enum { QCAL_METHOD_CONFIG_COUNT = 6 };
extern const qcal_method_config qcal_method_configs[QCAL_METHOD_CONFIG_COUNT];
extern const size_t qcal_method_count;
const qcal_method_info *qcal_method_find(const char *name);
/* The configuration labelled label ("pct99.99"), or NULL. */
const qcal_method_config *qcal_method_config_find(const char *label);

/* One calibration of one tensor: collect (max or histogram), then compute
 * amax per channel. Times exclude everything but those two stages. */
typedef struct qcal_calib_request {
  const qcal_method_info *method;
  int axis; /* QCAL_PER_TENSOR or a channel axis */
  qcal_hist_opts hist;
  qcal_calib_opts calib;
} qcal_calib_request;

typedef struct qcal_calib_result {
  size_t channels;
  float *amax;      /* channels entries */
  uint32_t nbins;   /* bins of channel 0's final histogram (0 for max) */
  double collect_s; /* histogram / max collection */
  double compute_s; /* amax search */
} qcal_calib_result;

qcal_status qcal_calibrate(const qcal_tensor *t, const qcal_calib_request *r,
                           qcal_calib_result *out);
void qcal_calib_result_free(qcal_calib_result *r);

#endif
