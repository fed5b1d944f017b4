/* Percentile calibration, pytorch-quantization semantics:
 * cdf = cumsum(hist / total) in float64, idx = searchsorted(cdf, p/100,
 * side='left'), amax = edges[idx]. */
#include "calibrators/common.h"

qcal_status qcal_amax_percentile(const qcal_histogram *h, const qcal_calib_opts *o, float *amax) {
  QCAL_TRY(qcal_check_hist_method(h, o, "percentile"));
  if (!(o->percentile >= 0.0 && o->percentile <= 100.0))
    return qcal_error(QCAL_EINVAL, "percentile %g out of range [0, 100]", o->percentile);
  const uint32_t n = h->nbins;
  uint64_t total = 0;
  for (uint32_t j = 0; j < n; j++)
    total += h->counts[j];
  if (total == 0 || h->edges[n] == 0.0f) {
    *amax = 0.0f;
    return QCAL_OK;
  }
  const double target = o->percentile / 100.0, t = (double)total;
  double cdf = 0.0;
  uint32_t idx = 0;
  for (; idx < n; idx++) {
    cdf += (double)h->counts[idx] / t;
    if (cdf >= target)
      break;
  }
  *amax = h->edges[idx];
  return QCAL_OK;
}
