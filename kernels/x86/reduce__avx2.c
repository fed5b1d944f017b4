/* AVX2 reductions: abs-max, histogram binning, histogram-weighted SSE. */
#include <immintrin.h>

#include "kernels/scalar.h"
#include "qcal/kernels.h"

static inline __m256 abs8(__m256 v) {
  return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
}

float qcal_f32_absmax__avx2(size_t n, const float *x) {
  __m256 m0 = _mm256_setzero_ps(), m1 = m0, m2 = m0, m3 = m0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    m0 = _mm256_max_ps(m0, abs8(_mm256_loadu_ps(x + i)));
    m1 = _mm256_max_ps(m1, abs8(_mm256_loadu_ps(x + i + 8)));
    m2 = _mm256_max_ps(m2, abs8(_mm256_loadu_ps(x + i + 16)));
    m3 = _mm256_max_ps(m3, abs8(_mm256_loadu_ps(x + i + 24)));
  }
  for (; i + 8 <= n; i += 8)
    m0 = _mm256_max_ps(m0, abs8(_mm256_loadu_ps(x + i)));
  __m256 m = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
  float lanes[8];
  _mm256_storeu_ps(lanes, m);
  float r = 0.0f;
  for (int j = 0; j < 8; j++)
    r = lanes[j] > r ? lanes[j] : r;
  for (; i < n; i++) {
    float a = fabsf(x[i]);
    r = a > r ? a : r;
  }
  return r;
}

void qcal_f32_histogram__avx2(size_t n, const float *x, uint32_t nbins, float range,
                              bool skip_zeros, uint64_t *bins) {
  const __m256 vnf = _mm256_set1_ps((float)nbins), vr = _mm256_set1_ps(range);
  const __m256 vlast = _mm256_set1_ps((float)(nbins - 1));
  const __m256 vzero = _mm256_setzero_ps();
  uint64_t zeros = 0;
  int32_t idx[8] __attribute__((aligned(32)));
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 a = abs8(_mm256_loadu_ps(x + i));
    unsigned ok = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(a, vr, _CMP_LE_OQ));
    unsigned z = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(a, vzero, _CMP_EQ_OQ));
    if (!skip_zeros)
      zeros += (uint64_t)__builtin_popcount(ok & z);
    ok &= ~z;
    __m256 v = _mm256_min_ps(_mm256_div_ps(_mm256_mul_ps(a, vnf), vr), vlast);
    _mm256_store_si256((__m256i *)idx, _mm256_cvttps_epi32(v));
    while (ok) {
      int j = __builtin_ctz(ok);
      bins[idx[j]]++;
      ok &= ok - 1;
    }
  }
  bins[0] += zeros;
  const float nf = (float)nbins;
  for (; i < n; i++) {
    int64_t b = qcal_hist_bin(fabsf(x[i]), nf, range, nbins, skip_zeros);
    if (b >= 0)
      bins[b]++;
  }
}

double qcal_f32_hist_sse__avx2(size_t n, const float *c, const double *cnt, float s, float qmin,
                               float qmax) {
  const __m256 vs = _mm256_set1_ps(s), vmin = _mm256_set1_ps(qmin), vmax = _mm256_set1_ps(qmax);
  __m256d a0 = _mm256_setzero_pd(), a1 = a0;
  size_t k = 0;
  for (; k + 8 <= n; k += 8) {
    __m256 vc = _mm256_loadu_ps(c + k);
    __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(vc, vs), vmin), vmax);
    v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 e = _mm256_sub_ps(_mm256_div_ps(v, vs), vc);
    __m256d e0 = _mm256_cvtps_pd(_mm256_castps256_ps128(e));
    __m256d e1 = _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1));
    a0 = _mm256_fmadd_pd(_mm256_mul_pd(e0, e0), _mm256_loadu_pd(cnt + k), a0);
    a1 = _mm256_fmadd_pd(_mm256_mul_pd(e1, e1), _mm256_loadu_pd(cnt + k + 4), a1);
  }
  double lanes[4];
  _mm256_storeu_pd(lanes, _mm256_add_pd(a0, a1));
  double acc = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (; k < n; k++) {
    float e = qcal_round_clamp(c[k] * s, qmin, qmax) / s - c[k];
    acc += cnt[k] * ((double)e * (double)e);
  }
  return acc;
}

/* glibc libmvec's AVX2 log (ulp <= 4). */
__m256d _ZGVdN4v_log(__m256d x);

double qcal_f64_kl_groups__avx2(size_t n, const double *S, const double *m, const double *X) {
  __m256d acc = _mm256_setzero_pd();
  size_t g = 0;
  for (; g + 4 <= n; g += 4) {
    __m256d s = _mm256_loadu_pd(S + g);
    __m256d l = _ZGVdN4v_log(_mm256_div_pd(s, _mm256_loadu_pd(m + g)));
    acc = _mm256_add_pd(acc, _mm256_fnmadd_pd(s, l, _mm256_loadu_pd(X + g)));
  }
  double lanes[4];
  _mm256_storeu_pd(lanes, acc);
  double r = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (; g < n; g++)
    r += X[g] - S[g] * log(S[g] / m[g]);
  return r;
}
