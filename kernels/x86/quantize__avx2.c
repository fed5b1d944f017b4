/* AVX2 quantize / dequantize / fake-quant; scalar tails share the reference
 * helper so every element matches it bit for bit. */
#include <immintrin.h>

#include "kernels/scalar.h"
#include "qcal/kernels.h"

#define INLINE static inline __attribute__((always_inline))

INLINE __m256 round_clamp8(__m256 v, __m256 vmin, __m256 vmax) {
  v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
  v = _mm256_min_ps(_mm256_max_ps(v, vmin), vmax);
  return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

/* Low byte of each int32 lane -> 8 bytes. */
INLINE void store_low_bytes8(uint8_t *q, __m256i v) {
  const __m256i shuf =
      _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1,
                       -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  v = _mm256_shuffle_epi8(v, shuf);
  v = _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1));
  _mm_storel_epi64((__m128i *)q, _mm256_castsi256_si128(v));
}

INLINE void quantize_body(size_t n, const float *x, uint8_t *q, const float *scale,
                          const bool per_elem, float qmin, float qmax) {
  const __m256 vmin = _mm256_set1_ps(qmin), vmax = _mm256_set1_ps(qmax);
  __m256 vs = _mm256_set1_ps(scale[0]);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    if (per_elem)
      vs = _mm256_loadu_ps(scale + i);
    __m256 v = round_clamp8(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), vmin, vmax);
    store_low_bytes8(q + i, _mm256_cvtps_epi32(v));
  }
  for (; i < n; i++)
    q[i] = (uint8_t)(int32_t)qcal_round_clamp(x[i] * scale[per_elem ? i : 0], qmin, qmax);
}

void qcal_f32_q8_quantize__avx2(size_t n, const float *x, uint8_t *q, const float *scale,
                                bool per_elem, float qmin, float qmax) {
  if (per_elem)
    quantize_body(n, x, q, scale, true, qmin, qmax);
  else
    quantize_body(n, x, q, scale, false, qmin, qmax);
}

INLINE void fakequant_body(size_t n, const float *x, float *y, const float *scale,
                           const float *dq_scale, const bool per_elem, float qmin, float qmax) {
  const __m256 vmin = _mm256_set1_ps(qmin), vmax = _mm256_set1_ps(qmax);
  __m256 vs = _mm256_set1_ps(scale[0]), vd = _mm256_set1_ps(dq_scale[0]);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    if (per_elem) {
      vs = _mm256_loadu_ps(scale + i);
      vd = _mm256_loadu_ps(dq_scale + i);
    }
    __m256 v = round_clamp8(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), vmin, vmax);
    _mm256_storeu_ps(y + i, _mm256_div_ps(v, vd));
  }
  for (; i < n; i++) {
    size_t c = per_elem ? i : 0;
    y[i] = qcal_round_clamp(x[i] * scale[c], qmin, qmax) / dq_scale[c];
  }
}

void qcal_f32_f32_fakequant__avx2(size_t n, const float *x, float *y, const float *scale,
                                  const float *dq_scale, bool per_elem, float qmin, float qmax) {
  if (per_elem)
    fakequant_body(n, x, y, scale, dq_scale, true, qmin, qmax);
  else
    fakequant_body(n, x, y, scale, dq_scale, false, qmin, qmax);
}

#define DEQUANT(name, ctype, widen)                                                                \
  INLINE void name##_body(size_t n, const ctype *q, float *y, const float *dq,                     \
                          const bool per_elem) {                                                   \
    __m256 vd = _mm256_set1_ps(dq[0]);                                                             \
    size_t i = 0;                                                                                  \
    for (; i + 8 <= n; i += 8) {                                                                   \
      if (per_elem)                                                                                \
        vd = _mm256_loadu_ps(dq + i);                                                              \
      __m256 v = _mm256_cvtepi32_ps(widen(_mm_loadl_epi64((const __m128i *)(q + i))));             \
      _mm256_storeu_ps(y + i, _mm256_mul_ps(v, vd));                                               \
    }                                                                                              \
    for (; i < n; i++)                                                                             \
      y[i] = (float)q[i] * dq[per_elem ? i : 0];                                                   \
  }                                                                                                \
  void qcal_##name##__avx2(size_t n, const ctype *q, float *y, const float *dq, bool per_elem) {   \
    if (per_elem)                                                                                  \
      name##_body(n, q, y, dq, true);                                                              \
    else                                                                                           \
      name##_body(n, q, y, dq, false);                                                             \
  }

DEQUANT(s8_f32_dequantize, int8_t, _mm256_cvtepi8_epi32)
DEQUANT(u8_f32_dequantize, uint8_t, _mm256_cvtepu8_epi32)
