/* AVX-512 versions of the int8 engine's element-wise steps: the scalar
 * references' arithmetic 16 lanes at a time (division, not a multiply by an
 * inverse scale; round half to even; products rounded before the sum), the
 * tail masked. */
#include <immintrin.h>

#include "qcal/kernels.h"

static inline __mmask16 m16(size_t left) {
  return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
}

/* 16 quantized values of x (masked to k) as bytes. */
static inline __m128i q16(const float *x, __mmask16 k, __m512 vs, __m512 vz, __m512 lo, __m512 hi) {
  __m512 r = _mm512_div_ps(_mm512_maskz_loadu_ps(k, x), vs);
  __mmask16 ok = _mm512_cmp_ps_mask(r, r, _CMP_ORD_Q);
  r = _mm512_add_ps(_mm512_roundscale_ps(r, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), vz);
  r = _mm512_mask_blend_ps(ok, vz, r);
  r = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
  return _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(r));
}

void qcal_f32_q8_quantize_div__avx512(size_t n, const float *x, float s, float zp, bool s8,
                                      void *y) {
  const __m512 vs = _mm512_set1_ps(s), vz = _mm512_set1_ps(zp);
  const __m512 lo = _mm512_set1_ps(s8 ? -128.0f : 0.0f), hi = _mm512_set1_ps(s8 ? 127.0f : 255.0f);
  for (size_t i = 0; i < n; i += 16) {
    __mmask16 k = m16(n - i);
    _mm_mask_storeu_epi8((char *)y + i, k, q16(x + i, k, vs, vz, lo, hi));
  }
}

void qcal_f32_q8_quantize_div_planes__avx512(size_t n, int C, const float *x, size_t stride,
                                             float s, float zp, bool s8, void *y) {
  const __m512 vs = _mm512_set1_ps(s), vz = _mm512_set1_ps(zp);
  const __m512 lo = _mm512_set1_ps(s8 ? -128.0f : 0.0f), hi = _mm512_set1_ps(s8 ? 127.0f : 255.0f);
  uint8_t *out = y;
  if (C != 3) { /* each plane quantized 16 at a time, then spread */
    for (size_t i = 0; i < n; i += 16) {
      __mmask16 k = m16(n - i);
      for (int c = 0; c < C; c++) {
        uint8_t b[16];
        _mm_storeu_si128((__m128i *)b, q16(x + (size_t)c * stride + i, k, vs, vz, lo, hi));
        for (size_t j = 0; j < 16 && i + j < n; j++)
          out[(i + j) * (size_t)C + (size_t)c] = b[j];
      }
    }
    return;
  }
  /* RGB: the three planes' 16 bytes interleaved into 48 by byte shuffles:
   * output byte j of block b takes byte (16 b + j) / 3 of plane (16 b + j) % 3 */
  __m128i idx[3][3];
  for (int b = 0; b < 3; b++)
    for (int c = 0; c < 3; c++) {
      int8_t v[16];
      for (int j = 0; j < 16; j++)
        v[j] = (16 * b + j) % 3 == c ? (int8_t)((16 * b + j) / 3) : (int8_t)-1;
      idx[b][c] = _mm_loadu_si128((const __m128i *)v);
    }
  for (size_t i = 0; i < n; i += 16) {
    __mmask16 k = m16(n - i);
    __m128i p[3];
    for (int c = 0; c < 3; c++)
      p[c] = q16(x + (size_t)c * stride + i, k, vs, vz, lo, hi);
    for (int b = 0; b < 3; b++) {
      __m128i o = _mm_or_si128(
          _mm_or_si128(_mm_shuffle_epi8(p[0], idx[b][0]), _mm_shuffle_epi8(p[1], idx[b][1])),
          _mm_shuffle_epi8(p[2], idx[b][2]));
      size_t at = 3 * i + 16 * (size_t)b;
      if (at >= 3 * n)
        break;
      _mm_mask_storeu_epi8(out + at, m16(3 * n - at), o);
    }
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
