/* AVX-512 quantize / dequantize / fake-quant. Same operation order as the
 * reference: mul, NaN->0, max, min, round-half-even, (divide). */
#include <immintrin.h>

#include "kernels/scalar.h"
#include "qcal/kernels.h"

#define INLINE static inline __attribute__((always_inline))

INLINE __m512 round_clamp16(__m512 v, __m512 vmin, __m512 vmax) {
  v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);
  v = _mm512_min_ps(_mm512_max_ps(v, vmin), vmax);
  return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

INLINE __mmask16 tail_mask(size_t r) {
  return (__mmask16)((1u << r) - 1u);
}

/* clamp then convert: cvtps rounds half to even, so no separate round */
INLINE __m512i quant16(__m512 x, __m512 vs, __m512 vmin, __m512 vmax) {
  __m512 v = _mm512_mul_ps(x, vs);
  v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);
  v = _mm512_min_ps(_mm512_max_ps(v, vmin), vmax);
  return _mm512_cvtps_epi32(v);
}

INLINE void quantize_body(size_t n, const float *x, uint8_t *q, const float *scale,
                          const bool per_elem, float qmin, float qmax) {
  const __m512 vmin = _mm512_set1_ps(qmin), vmax = _mm512_set1_ps(qmax);
  __m512 vs = _mm512_set1_ps(scale[0]);
  size_t i = 0;
  if (!per_elem) {
    /* 64 at a time: two saturating packs and one permute instead of four
     * VPMOVDB (the values are already in range, so saturation never bites) */
    const __m512i perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const bool uns = qmin >= 0.0f;
    for (; i + 64 <= n; i += 64) {
      __m512i a = quant16(_mm512_loadu_ps(x + i), vs, vmin, vmax);
      __m512i b = quant16(_mm512_loadu_ps(x + i + 16), vs, vmin, vmax);
      __m512i c = quant16(_mm512_loadu_ps(x + i + 32), vs, vmin, vmax);
      __m512i d = quant16(_mm512_loadu_ps(x + i + 48), vs, vmin, vmax);
      __m512i ab = _mm512_packs_epi32(a, b), cd = _mm512_packs_epi32(c, d);
      __m512i p = uns ? _mm512_packus_epi16(ab, cd) : _mm512_packs_epi16(ab, cd);
      _mm512_storeu_si512(q + i, _mm512_permutexvar_epi32(perm, p));
    }
  }
  for (; i + 16 <= n; i += 16) {
    if (per_elem)
      vs = _mm512_loadu_ps(scale + i);
    __m512i v = quant16(_mm512_loadu_ps(x + i), vs, vmin, vmax);
    _mm_storeu_si128((__m128i *)(q + i), _mm512_cvtepi32_epi8(v));
  }
  if (i < n) {
    __mmask16 m = tail_mask(n - i);
    if (per_elem)
      vs = _mm512_maskz_loadu_ps(m, scale + i);
    __m512i v = quant16(_mm512_maskz_loadu_ps(m, x + i), vs, vmin, vmax);
    _mm512_mask_cvtepi32_storeu_epi8(q + i, m, v);
  }
}

void qcal_f32_q8_quantize__avx512(size_t n, const float *x, uint8_t *q, const float *scale,
                                  bool per_elem, float qmin, float qmax) {
  if (per_elem)
    quantize_body(n, x, q, scale, true, qmin, qmax);
  else
    quantize_body(n, x, q, scale, false, qmin, qmax);
}

INLINE void fakequant_body(size_t n, const float *x, float *y, const float *scale,
                           const float *dq_scale, const bool per_elem, float qmin, float qmax) {
  const __m512 vmin = _mm512_set1_ps(qmin), vmax = _mm512_set1_ps(qmax);
  __m512 vs = _mm512_set1_ps(scale[0]), vd = _mm512_set1_ps(dq_scale[0]);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    if (per_elem) {
      vs = _mm512_loadu_ps(scale + i);
      vd = _mm512_loadu_ps(dq_scale + i);
    }
    __m512 v = round_clamp16(_mm512_mul_ps(_mm512_loadu_ps(x + i), vs), vmin, vmax);
    _mm512_storeu_ps(y + i, _mm512_div_ps(v, vd));
  }
  if (i < n) {
    __mmask16 m = tail_mask(n - i);
    if (per_elem) {
      vs = _mm512_maskz_loadu_ps(m, scale + i);
      vd = _mm512_mask_loadu_ps(_mm512_set1_ps(1.0f), m, dq_scale + i);
    }
    __m512 v = round_clamp16(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs), vmin, vmax);
    _mm512_mask_storeu_ps(y + i, m, _mm512_div_ps(v, vd));
  }
}

void qcal_f32_f32_fakequant__avx512(size_t n, const float *x, float *y, const float *scale,
                                    const float *dq_scale, bool per_elem, float qmin, float qmax) {
  if (per_elem)
    fakequant_body(n, x, y, scale, dq_scale, true, qmin, qmax);
  else
    fakequant_body(n, x, y, scale, dq_scale, false, qmin, qmax);
}

#define DEQUANT(name, ctype, widen)                                                                \
  INLINE void name##_body(size_t n, const ctype *q, float *y, const float *dq,                     \
                          const bool per_elem) {                                                   \
    __m512 vd = _mm512_set1_ps(dq[0]);                                                             \
    size_t i = 0;                                                                                  \
    for (; i + 16 <= n; i += 16) {                                                                 \
      if (per_elem)                                                                                \
        vd = _mm512_loadu_ps(dq + i);                                                              \
      __m512 v = _mm512_cvtepi32_ps(widen(_mm_loadu_si128((const __m128i *)(q + i))));             \
      _mm512_storeu_ps(y + i, _mm512_mul_ps(v, vd));                                               \
    }                                                                                              \
    if (i < n) {                                                                                   \
      __mmask16 m = tail_mask(n - i);                                                              \
      if (per_elem)                                                                                \
        vd = _mm512_mask_loadu_ps(_mm512_set1_ps(1.0f), m, dq + i);                                \
      __m512 v = _mm512_cvtepi32_ps(widen(_mm_maskz_loadu_epi8(m, q + i)));                        \
      _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(v, vd));                                       \
    }                                                                                              \
  }                                                                                                \
  void qcal_##name##__avx512(size_t n, const ctype *q, float *y, const float *dq, bool per_elem) { \
    if (per_elem)                                                                                  \
      name##_body(n, q, y, dq, true);                                                              \
    else                                                                                           \
      name##_body(n, q, y, dq, false);                                                             \
  }

DEQUANT(s8_f32_dequantize, int8_t, _mm512_cvtepi8_epi32)
DEQUANT(u8_f32_dequantize, uint8_t, _mm512_cvtepu8_epi32)
