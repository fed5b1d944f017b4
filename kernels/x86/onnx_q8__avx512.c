/* AVX-512 versions of the int8 engine's element-wise steps: the scalar
 * references' arithmetic 16 lanes at a time (division, not a multiply by an
 * inverse scale; round half to even; products rounded before the sum), the
 * tail masked. */
#include <immintrin.h>

#include "qcal/kernels.h"

static inline __mmask16 m16(size_t left) {
  return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
}

void qcal_f32_q8_quantize_div__avx512(size_t n, const float *x, float s, float zp, bool s8,
                                      void *y) {
  const __m512 vs = _mm512_set1_ps(s), vz = _mm512_set1_ps(zp);
  const __m512 lo = _mm512_set1_ps(s8 ? -128.0f : 0.0f), hi = _mm512_set1_ps(s8 ? 127.0f : 255.0f);
  for (size_t i = 0; i < n; i += 16) {
    __mmask16 k = m16(n - i);
    __m512 r = _mm512_div_ps(_mm512_maskz_loadu_ps(k, x + i), vs);
    __mmask16 ok = _mm512_cmp_ps_mask(r, r, _CMP_ORD_Q);
    r = _mm512_add_ps(_mm512_roundscale_ps(r, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), vz);
    r = _mm512_mask_blend_ps(ok, vz, r);
    r = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
    _mm_mask_storeu_epi8((char *)y + i, k, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(r)));
  }
}

void qcal_s8_s8_add_requant__avx512(size_t n, const int8_t *a, const int8_t *b, float sa, float sb,
                                    float sy, float zy, bool relu, int8_t *y) {
  const __m512 va = _mm512_set1_ps(sa), vb = _mm512_set1_ps(sb), vy = _mm512_set1_ps(sy);
  const __m512 vz = _mm512_set1_ps(zy), lo = _mm512_set1_ps(-128.0f), hi = _mm512_set1_ps(127.0f);
  const __m512 zero = _mm512_setzero_ps();
  for (size_t i = 0; i < n; i += 16) {
    __mmask16 k = m16(n - i);
    __m512 fa = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, a + i)));
    __m512 fb = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, b + i)));
    __m512 v = _mm512_add_ps(_mm512_mul_ps(fa, va), _mm512_mul_ps(fb, vb));
    if (relu)
      v = _mm512_max_ps(v, zero);
    __m512 r =
        _mm512_roundscale_ps(_mm512_div_ps(v, vy), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(r, vz), lo), hi);
    _mm_mask_storeu_epi8(y + i, k, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(r)));
  }
}

void qcal_q8_s8_rescale__avx512(size_t n, const uint8_t *q, bool u8, float sa, float sy,
                                int8_t *y) {
  const __m512 va = _mm512_set1_ps(sa), vy = _mm512_set1_ps(sy);
  const __m512 lo = _mm512_set1_ps(-128.0f), hi = _mm512_set1_ps(127.0f);
  for (size_t i = 0; i < n; i += 16) {
    __mmask16 k = m16(n - i);
    __m128i b = _mm_maskz_loadu_epi8(k, q + i);
    __m512i c = u8 ? _mm512_cvtepu8_epi32(b) : _mm512_cvtepi8_epi32(b);
    __m512 r = _mm512_div_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(c), va), vy);
    r = _mm512_roundscale_ps(r, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
    _mm_mask_storeu_epi8(y + i, k, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(r)));
  }
}
