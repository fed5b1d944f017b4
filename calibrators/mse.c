/* MSE calibration, pytorch-quantization semantics: candidates are the bin
 * centres c[i], i = start_bin..nbins-1; minimise
 * sum_k count_k (fq(c_k; c_i) - c_k)^2; amax is the centre of the FIRST
 * minimum. Empty bins add nothing, so only non-empty bins are visited. */
#include <math.h>
#include <stdlib.h>

#include "calibrators/common.h"
#include "qcal/kernels.h"

qcal_status qcal_amax_mse(const qcal_histogram *h, const qcal_calib_opts *o, float *amax) {
  QCAL_TRY(qcal_check_hist_method(h, o, "mse"));
  const uint32_t n = h->nbins;
  if (h->edges[n] == 0.0f) {
    *amax = 0.0f;
    return QCAL_OK;
  }
  if (o->start_bin >= n)
    return qcal_error(QCAL_EINVAL, "mse: start bin %u outside 0..%u", o->start_bin, n - 1);
  float *centers = malloc((size_t)n * sizeof *centers);
  float *c = malloc((size_t)n * sizeof *c);
  double *w = malloc((size_t)n * sizeof *w);
  if (!centers || !c || !w) {
    free(centers), free(c), free(w);
    return qcal_error(QCAL_ENOMEM, "mse: cannot allocate %u bins", n);
  }
  size_t k = 0;
  double sq_all = 0.0; /* the error when everything quantizes to 0 */
  for (uint32_t j = 0; j < n; j++) {
    centers[j] = (h->edges[j] + h->edges[j + 1]) / 2.0f;
    if (h->counts[j]) {
      c[k] = centers[j];
      w[k] = (double)h->counts[j];
      sq_all += w[k] * (double)c[k] * (double)c[k];
      k++;
    }
  }
  const qcal_kernel_table *kt = qcal_kernels();
  const float qmin = qcal_qformat_qmin(o->fmt), qmax = qcal_qformat_qmax(o->fmt);
  double best = INFINITY;
  uint32_t arg = o->start_bin;
  for (uint32_t i = o->start_bin; i < n; i += o->stride) {
    float s = qcal_quant_scale(o->fmt, centers[i]);
    double e = s == 0.0f ? sq_all : kt->f32_hist_sse(k, c, w, s, qmin, qmax);
    if (e < best) {
      best = e;
      arg = i;
    }
  }
  *amax = centers[arg];
  free(centers), free(c), free(w);
  return QCAL_OK;
}
