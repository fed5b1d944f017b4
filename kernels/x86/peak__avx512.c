/* Register-resident peak loops. Twelve accumulators in separate variables
 * cover the latency x throughput of one port pair; the operands stay in
 * registers, so the loop measures the arithmetic units only. */
#include <immintrin.h>

#include "qcal/peak.h"

/* distinct starting values: identical chains would be merged by the compiler */
#define ACC12(init)                                                                                \
  __m512i a0 = init(0), a1 = init(1), a2 = init(2), a3 = init(3), a4 = init(4), a5 = init(5),      \
          a6 = init(6), a7 = init(7), a8 = init(8), a9 = init(9), a10 = init(10), a11 = init(11)

uint64_t qcal_peak_vnni__avx512(uint64_t iters) {
  __m512i x = _mm512_set1_epi32(0x01010101), y = _mm512_set1_epi32(0x02020202);
  ACC12(_mm512_set1_epi32);
  for (uint64_t i = 0; i < iters; i++) {
    __asm__ volatile("" : "+v"(x), "+v"(y)); /* keep the operands opaque */
    a0 = _mm512_dpbusd_epi32(a0, x, y);
    a1 = _mm512_dpbusd_epi32(a1, x, y);
    a2 = _mm512_dpbusd_epi32(a2, x, y);
    a3 = _mm512_dpbusd_epi32(a3, x, y);
    a4 = _mm512_dpbusd_epi32(a4, x, y);
    a5 = _mm512_dpbusd_epi32(a5, x, y);
    a6 = _mm512_dpbusd_epi32(a6, x, y);
    a7 = _mm512_dpbusd_epi32(a7, x, y);
    a8 = _mm512_dpbusd_epi32(a8, x, y);
    a9 = _mm512_dpbusd_epi32(a9, x, y);
    a10 = _mm512_dpbusd_epi32(a10, x, y);
    a11 = _mm512_dpbusd_epi32(a11, x, y);
  }
  __m512i s = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
                               _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7)));
  s = _mm512_add_epi32(s, _mm512_add_epi32(_mm512_add_epi32(a8, a9), _mm512_add_epi32(a10, a11)));
  volatile int sink = _mm512_reduce_add_epi32(s);
  (void)sink;
  return iters * 12u * 128u;
}

#define FACC12(init)                                                                               \
  __m512 a0 = init(0), a1 = init(1), a2 = init(2), a3 = init(3), a4 = init(4), a5 = init(5),       \
         a6 = init(6), a7 = init(7), a8 = init(8), a9 = init(9), a10 = init(10), a11 = init(11)

#define FINIT(i) _mm512_set1_ps((float)(i))

static float fsum12(__m512 a0, __m512 a1, __m512 a2, __m512 a3, __m512 a4, __m512 a5, __m512 a6,
                    __m512 a7, __m512 a8, __m512 a9, __m512 a10, __m512 a11) {
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                           _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
  s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
  return _mm512_reduce_add_ps(s);
}

uint64_t qcal_peak_fma__avx512(uint64_t iters) {
  __m512 x = _mm512_set1_ps(1.0000001f), y = _mm512_set1_ps(0.9999999f);
  FACC12(FINIT);
  for (uint64_t i = 0; i < iters; i++) {
    __asm__ volatile("" : "+v"(x), "+v"(y));
    a0 = _mm512_fmadd_ps(x, y, a0);
    a1 = _mm512_fmadd_ps(x, y, a1);
    a2 = _mm512_fmadd_ps(x, y, a2);
    a3 = _mm512_fmadd_ps(x, y, a3);
    a4 = _mm512_fmadd_ps(x, y, a4);
    a5 = _mm512_fmadd_ps(x, y, a5);
    a6 = _mm512_fmadd_ps(x, y, a6);
    a7 = _mm512_fmadd_ps(x, y, a7);
    a8 = _mm512_fmadd_ps(x, y, a8);
    a9 = _mm512_fmadd_ps(x, y, a9);
    a10 = _mm512_fmadd_ps(x, y, a10);
    a11 = _mm512_fmadd_ps(x, y, a11);
  }
  volatile float sink = fsum12(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11);
  (void)sink;
  return iters * 12u * 32u;
}

uint64_t qcal_peak_bf16__avx512(uint64_t iters) {
  __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3f80);
  FACC12(FINIT);
  for (uint64_t i = 0; i < iters; i++) {
    __asm__ volatile("" : "+v"(x), "+v"(y));
    a0 = _mm512_dpbf16_ps(a0, x, y);
    a1 = _mm512_dpbf16_ps(a1, x, y);
    a2 = _mm512_dpbf16_ps(a2, x, y);
    a3 = _mm512_dpbf16_ps(a3, x, y);
    a4 = _mm512_dpbf16_ps(a4, x, y);
    a5 = _mm512_dpbf16_ps(a5, x, y);
    a6 = _mm512_dpbf16_ps(a6, x, y);
    a7 = _mm512_dpbf16_ps(a7, x, y);
    a8 = _mm512_dpbf16_ps(a8, x, y);
    a9 = _mm512_dpbf16_ps(a9, x, y);
    a10 = _mm512_dpbf16_ps(a10, x, y);
    a11 = _mm512_dpbf16_ps(a11, x, y);
  }
  volatile float sink = fsum12(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11);
  (void)sink;
  return iters * 12u * 64u;
}
