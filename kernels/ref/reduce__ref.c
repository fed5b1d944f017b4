/* Portable scalar reductions: abs-max, histogram, histogram-weighted SSE. */
#include "kernels/scalar.h"
#include "qcal/kernels.h"

float qcal_f32_absmax__ref(size_t n, const float *x) {
  float m = 0.0f;
  for (size_t i = 0; i < n; i++) {
    float a = fabsf(x[i]);
    m = a > m ? a : m;
  }
  return m;
}

void qcal_f32_histogram__ref(size_t n, const float *x, uint32_t nbins, float range, bool skip_zeros,
                             uint64_t *bins) {
  const float nf = (float)nbins;
  for (size_t i = 0; i < n; i++) {
    int64_t b = qcal_hist_bin(fabsf(x[i]), nf, range, nbins, skip_zeros);
    if (b >= 0)
      bins[b]++;
  }
}

double qcal_f32_hist_sse__ref(size_t n, const float *c, const double *cnt, float s, float qmin,
                              float qmax) {
  double acc = 0.0;
  for (size_t k = 0; k < n; k++) {
    float e = qcal_round_clamp(c[k] * s, qmin, qmax) / s - c[k];
    acc += cnt[k] * ((double)e * (double)e);
  }
  return acc;
}

double qcal_f64_kl_groups__ref(size_t n, const double *S, const double *m, const double *X) {
  double acc = 0.0;
  for (size_t g = 0; g < n; g++)
    acc += X[g] - S[g] * log(S[g] / m[g]);
  return acc;
}
