/* AVX-512 bandwidth kernels. Each handles the tail with masked loads and
 * stores, so there is no scalar remainder. */
#include <immintrin.h>

#include "qcal/kernels.h"

#define M16(r) ((__mmask16)((1u << (r)) - 1u))
#define M64(r) ((__mmask64)((r) >= 64 ? ~0ull : ((1ull << (r)) - 1ull)))

void qcal_f32_copy__avx512(size_t n, const float *a, float *b) {
  /* load-store pairs, two vectors an iteration, as the other stream kernels:
   * four loads before four stores ran 5-10% below relu on the same arrays */
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm512_storeu_ps(b + i, _mm512_loadu_ps(a + i));
    _mm512_storeu_ps(b + i + 16, _mm512_loadu_ps(a + i + 16));
  }
  for (; i < n; i += 16) {
    __mmask16 k = n - i >= 16 ? 0xffff : M16(n - i);
    _mm512_mask_storeu_ps(b + i, k, _mm512_maskz_loadu_ps(k, a + i));
  }
}

void qcal_f32_triad__avx512(size_t n, const float *b, const float *c, float s, float *a) {
  const __m512 vs = _mm512_set1_ps(s);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m512 t0 = _mm512_mul_ps(vs, _mm512_loadu_ps(c + i)),
           t1 = _mm512_mul_ps(vs, _mm512_loadu_ps(c + i + 16));
    _mm512_storeu_ps(a + i, _mm512_add_ps(_mm512_loadu_ps(b + i), t0));
    _mm512_storeu_ps(a + i + 16, _mm512_add_ps(_mm512_loadu_ps(b + i + 16), t1));
  }
  for (; i < n; i += 16) {
    __mmask16 k = n - i >= 16 ? 0xffff : M16(n - i);
    __m512 t = _mm512_mul_ps(vs, _mm512_maskz_loadu_ps(k, c + i));
    _mm512_mask_storeu_ps(a + i, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, b + i), t));
  }
}

void qcal_s32_s8_requantize__avx512(size_t n, const int32_t *x, int8_t *y, float scale, float qmin,
                                    float qmax) {
  const __m512 vs = _mm512_set1_ps(scale), lo = _mm512_set1_ps(qmin), hi = _mm512_set1_ps(qmax);
  const __m512i perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  size_t i = 0;
#define RQ(off)                                                                                    \
  _mm512_cvtps_epi32(_mm512_min_ps(                                                                \
      _mm512_max_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(x + i + (off))), vs), lo), \
      hi))
  for (; i + 64 <= n; i += 64) { /* packs as in quantize: values are in range */
    __m512i ab = _mm512_packs_epi32(RQ(0), RQ(16)), cd = _mm512_packs_epi32(RQ(32), RQ(48));
    _mm512_storeu_si512(y + i, _mm512_permutexvar_epi32(perm, _mm512_packs_epi16(ab, cd)));
  }
#undef RQ
  for (; i < n; i += 16) {
    __mmask16 k = n - i >= 16 ? 0xffff : M16(n - i);
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(k, x + i)), vs);
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi); /* finite: no NaN from int32 */
    __m512i q = _mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm512_mask_cvtepi32_storeu_epi8(y + i, k, q);
  }
}

void qcal_f32_relu__avx512(size_t n, const float *x, float *y) {
  const __m512 z = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm512_storeu_ps(y + i, _mm512_max_ps(_mm512_loadu_ps(x + i), z));
    _mm512_storeu_ps(y + i + 16, _mm512_max_ps(_mm512_loadu_ps(x + i + 16), z));
  }
  for (; i < n; i += 16) {
    __mmask16 k = n - i >= 16 ? 0xffff : M16(n - i);
    _mm512_mask_storeu_ps(y + i, k, _mm512_max_ps(_mm512_maskz_loadu_ps(k, x + i), z));
  }
}

void qcal_s8_relu__avx512(size_t n, const int8_t *x, int8_t *y) {
  const __m512i z = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    _mm512_storeu_si512(y + i, _mm512_max_epi8(_mm512_loadu_si512(x + i), z));
    _mm512_storeu_si512(y + i + 64, _mm512_max_epi8(_mm512_loadu_si512(x + i + 64), z));
  }
  for (; i < n; i += 64) {
    __mmask64 k = M64(n - i);
    _mm512_mask_storeu_epi8(y + i, k, _mm512_max_epi8(_mm512_maskz_loadu_epi8(k, x + i), z));
  }
}

void qcal_f32_add__avx512(size_t n, const float *a, const float *b, float *y) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
    _mm512_storeu_ps(y + i + 16,
                     _mm512_add_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16)));
  }
  for (; i < n; i += 16) {
    __mmask16 k = n - i >= 16 ? 0xffff : M16(n - i);
    _mm512_mask_storeu_ps(
        y + i, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i)));
  }
}

void qcal_s8_add__avx512(size_t n, const int8_t *a, const int8_t *b, int8_t *y) {
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    _mm512_storeu_si512(y + i,
                        _mm512_adds_epi8(_mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i)));
    _mm512_storeu_si512(y + i + 64, _mm512_adds_epi8(_mm512_loadu_si512(a + i + 64),
                                                     _mm512_loadu_si512(b + i + 64)));
  }
  for (; i < n; i += 64) {
    __mmask64 k = M64(n - i);
    _mm512_mask_storeu_epi8(
        y + i, k,
        _mm512_adds_epi8(_mm512_maskz_loadu_epi8(k, a + i), _mm512_maskz_loadu_epi8(k, b + i)));
  }
}
