/* AVX-512 reductions: abs-max, histogram binning, histogram-weighted SSE. */
#include <immintrin.h>
#include <stdlib.h>

#include "kernels/scalar.h"
#include "qcal/kernels.h"

float qcal_f32_absmax__avx512(size_t n, const float *x) {
  __m512 m0 = _mm512_setzero_ps(), m1 = m0, m2 = m0, m3 = m0;
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    m0 = _mm512_max_ps(m0, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
    m1 = _mm512_max_ps(m1, _mm512_abs_ps(_mm512_loadu_ps(x + i + 16)));
    m2 = _mm512_max_ps(m2, _mm512_abs_ps(_mm512_loadu_ps(x + i + 32)));
    m3 = _mm512_max_ps(m3, _mm512_abs_ps(_mm512_loadu_ps(x + i + 48)));
  }
  for (; i + 16 <= n; i += 16)
    m0 = _mm512_max_ps(m0, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
  if (i < n) {
    __mmask16 k = (__mmask16)((1u << (n - i)) - 1u);
    m1 = _mm512_max_ps(m1, _mm512_abs_ps(_mm512_maskz_loadu_ps(k, x + i)));
  }
  return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
}

/* Small inputs: bin straight into the 64-bit counts. */
static void histogram_direct(size_t n, const float *x, uint32_t nbins, float range, bool skip_zeros,
                             uint64_t *bins) {
  const float nf = (float)nbins;
  for (size_t i = 0; i < n; i++) {
    int64_t b = qcal_hist_bin(fabsf(x[i]), nf, range, nbins, skip_zeros);
    if (b >= 0)
      bins[b]++;
  }
}

enum { SUB = 4, TRASH = 16, FLUSH = 1 << 30 };

/* Four 32-bit sub-histograms, one per lane quarter, so that repeated bins do
 * not serialise on one counter. Zeros and skipped values go to per-lane trash
 * slots past the end; zeros are counted with popcnt instead. */
void qcal_f32_histogram__avx512(size_t n, const float *x, uint32_t nbins, float range,
                                bool skip_zeros, uint64_t *bins) {
  const size_t stride = (size_t)nbins + TRASH;
  uint32_t *sub = n >= (size_t)SUB * nbins ? calloc(SUB * stride, sizeof *sub) : NULL;
  if (!sub) {
    histogram_direct(n, x, nbins, range, skip_zeros, bins);
    return;
  }
  uint32_t *h0 = sub, *h1 = sub + stride, *h2 = sub + 2 * stride, *h3 = sub + 3 * stride;
  const __m512 vnf = _mm512_set1_ps((float)nbins), vr = _mm512_set1_ps(range);
  const __m512 vlast = _mm512_set1_ps((float)(nbins - 1)), vzero = _mm512_setzero_ps();
  const __m512i trash =
      _mm512_add_epi32(_mm512_set1_epi32((int)nbins),
                       _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  uint64_t zeros = 0;
  size_t i = 0;
  while (i + 16 <= n) {
    size_t end = n - i > FLUSH ? i + FLUSH : n; /* keep 32-bit counters from wrapping */
    for (; i + 16 <= end; i += 16) {
      __m512 a = _mm512_abs_ps(_mm512_loadu_ps(x + i));
      __mmask16 ok = _mm512_cmp_ps_mask(a, vr, _CMP_LE_OQ);
      __mmask16 z = _mm512_cmp_ps_mask(a, vzero, _CMP_EQ_OQ);
      if (!skip_zeros)
        zeros += (uint64_t)__builtin_popcount(ok & z);
      ok &= (__mmask16)~z;
      __m512 v = _mm512_min_ps(_mm512_div_ps(_mm512_mul_ps(a, vnf), vr), vlast);
      __m512i b = _mm512_mask_blend_epi32(ok, trash, _mm512_cvttps_epi32(v));
      __m128i q0 = _mm512_castsi512_si128(b), q1 = _mm512_extracti32x4_epi32(b, 1);
      __m128i q2 = _mm512_extracti32x4_epi32(b, 2), q3 = _mm512_extracti32x4_epi32(b, 3);
      uint64_t a0 = (uint64_t)_mm_cvtsi128_si64(q0), a1 = (uint64_t)_mm_extract_epi64(q0, 1);
      uint64_t b0 = (uint64_t)_mm_cvtsi128_si64(q1), b1 = (uint64_t)_mm_extract_epi64(q1, 1);
      uint64_t c0 = (uint64_t)_mm_cvtsi128_si64(q2), c1 = (uint64_t)_mm_extract_epi64(q2, 1);
      uint64_t d0 = (uint64_t)_mm_cvtsi128_si64(q3), d1 = (uint64_t)_mm_extract_epi64(q3, 1);
      h0[(uint32_t)a0]++, h1[a0 >> 32]++, h2[(uint32_t)a1]++, h3[a1 >> 32]++;
      h0[(uint32_t)b0]++, h1[b0 >> 32]++, h2[(uint32_t)b1]++, h3[b1 >> 32]++;
      h0[(uint32_t)c0]++, h1[c0 >> 32]++, h2[(uint32_t)c1]++, h3[c1 >> 32]++;
      h0[(uint32_t)d0]++, h1[d0 >> 32]++, h2[(uint32_t)d1]++, h3[d1 >> 32]++;
    }
    for (uint32_t k = 0; k < nbins; k++) {
      bins[k] += (uint64_t)h0[k] + h1[k] + h2[k] + h3[k];
      h0[k] = h1[k] = h2[k] = h3[k] = 0;
    }
  }
  bins[0] += zeros;
  free(sub);
  histogram_direct(n - i, x + i, nbins, range, skip_zeros, bins);
}

double qcal_f32_hist_sse__avx512(size_t n, const float *c, const double *cnt, float s, float qmin,
                                 float qmax) {
  const __m512 vs = _mm512_set1_ps(s), vmin = _mm512_set1_ps(qmin), vmax = _mm512_set1_ps(qmax);
  __m512d a0 = _mm512_setzero_pd(), a1 = a0;
  size_t k = 0;
  for (; k + 16 <= n; k += 16) {
    __m512 vc = _mm512_loadu_ps(c + k);
    __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(vc, vs), vmin), vmax);
    v = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 e = _mm512_sub_ps(_mm512_div_ps(v, vs), vc);
    __m512d e0 = _mm512_cvtps_pd(_mm512_castps512_ps256(e));
    __m512d e1 = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1)));
    a0 = _mm512_fmadd_pd(_mm512_mul_pd(e0, e0), _mm512_loadu_pd(cnt + k), a0);
    a1 = _mm512_fmadd_pd(_mm512_mul_pd(e1, e1), _mm512_loadu_pd(cnt + k + 8), a1);
  }
  double acc = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
  for (; k < n; k++) {
    float e = qcal_round_clamp(c[k] * s, qmin, qmax) / s - c[k];
    acc += cnt[k] * ((double)e * (double)e);
  }
  return acc;
}

/* glibc libmvec's AVX-512 log (ulp <= 4). */
__m512d _ZGVeN8v_log(__m512d x);

double qcal_f64_kl_groups__avx512(size_t n, const double *S, const double *m, const double *X) {
  __m512d acc = _mm512_setzero_pd();
  size_t g = 0;
  for (; g + 8 <= n; g += 8) {
    __m512d s = _mm512_loadu_pd(S + g);
    __m512d l = _ZGVeN8v_log(_mm512_div_pd(s, _mm512_loadu_pd(m + g)));
    acc = _mm512_add_pd(acc, _mm512_fnmadd_pd(s, l, _mm512_loadu_pd(X + g)));
  }
  if (g < n) {
    __mmask8 k = (__mmask8)((1u << (n - g)) - 1u);
    const __m512d one = _mm512_set1_pd(1.0);
    __m512d s = _mm512_mask_loadu_pd(one, k, S + g);
    __m512d l = _ZGVeN8v_log(_mm512_div_pd(s, _mm512_mask_loadu_pd(one, k, m + g)));
    acc = _mm512_add_pd(
        acc, _mm512_maskz_mov_pd(k, _mm512_fnmadd_pd(s, l, _mm512_maskz_loadu_pd(k, X + g))));
  }
  return _mm512_reduce_add_pd(acc);
}
