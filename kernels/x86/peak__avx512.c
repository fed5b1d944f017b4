/* Register-resident peak loops in inline assembly: the accumulators are
 * fixed registers (zmm2..), the operands zmm0/zmm1, so the compiler can add
 * no register moves or spills to the loop (GCC 12 does both to an intrinsic
 * version of the VPDPBUSD loop). 12 chains cover VPDPBUSD and FMA latency x
 * throughput; VDPBF16PS has a longer latency and gets 20. */
#include <stdint.h>

#include "qcal/peak.h"

#define R12                                                                                        \
  "%%zmm2", "%%zmm3", "%%zmm4", "%%zmm5", "%%zmm6", "%%zmm7", "%%zmm8", "%%zmm9", "%%zmm10",       \
      "%%zmm11", "%%zmm12", "%%zmm13"
#define CLOBBER12                                                                                  \
  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",         \
      "xmm11", "xmm12", "xmm13"
#define CLOBBER20 CLOBBER12, "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21"

#define OP12(op)                                                                                   \
  op " %%zmm1, %%zmm0, %%zmm2\n\t" op " %%zmm1, %%zmm0, %%zmm3\n\t" op                             \
     " %%zmm1, %%zmm0, %%zmm4\n\t" op " %%zmm1, %%zmm0, %%zmm5\n\t" op                             \
     " %%zmm1, %%zmm0, %%zmm6\n\t" op " %%zmm1, %%zmm0, %%zmm7\n\t" op                             \
     " %%zmm1, %%zmm0, %%zmm8\n\t" op " %%zmm1, %%zmm0, %%zmm9\n\t" op                             \
     " %%zmm1, %%zmm0, %%zmm10\n\t" op " %%zmm1, %%zmm0, %%zmm11\n\t" op                           \
     " %%zmm1, %%zmm0, %%zmm12\n\t" op " %%zmm1, %%zmm0, %%zmm13\n\t"
#define OP8(op)                                                                                    \
  op " %%zmm1, %%zmm0, %%zmm14\n\t" op " %%zmm1, %%zmm0, %%zmm15\n\t" op                           \
     " %%zmm1, %%zmm0, %%zmm16\n\t" op " %%zmm1, %%zmm0, %%zmm17\n\t" op                           \
     " %%zmm1, %%zmm0, %%zmm18\n\t" op " %%zmm1, %%zmm0, %%zmm19\n\t" op                           \
     " %%zmm1, %%zmm0, %%zmm20\n\t" op " %%zmm1, %%zmm0, %%zmm21\n\t"

/* zero the accumulators and set the operands (small values: no overflow) */
#define SETUP                                                                                      \
  "vpxord %%zmm2, %%zmm2, %%zmm2\n\t"                                                              \
  "vmovdqa64 %%zmm2, %%zmm3\n\tvmovdqa64 %%zmm2, %%zmm4\n\tvmovdqa64 %%zmm2, %%zmm5\n\t"           \
  "vmovdqa64 %%zmm2, %%zmm6\n\tvmovdqa64 %%zmm2, %%zmm7\n\tvmovdqa64 %%zmm2, %%zmm8\n\t"           \
  "vmovdqa64 %%zmm2, %%zmm9\n\tvmovdqa64 %%zmm2, %%zmm10\n\tvmovdqa64 %%zmm2, %%zmm11\n\t"         \
  "vmovdqa64 %%zmm2, %%zmm12\n\tvmovdqa64 %%zmm2, %%zmm13\n\tvmovdqa64 %%zmm2, %%zmm14\n\t"        \
  "vmovdqa64 %%zmm2, %%zmm15\n\tvmovdqa64 %%zmm2, %%zmm16\n\tvmovdqa64 %%zmm2, %%zmm17\n\t"        \
  "vmovdqa64 %%zmm2, %%zmm18\n\tvmovdqa64 %%zmm2, %%zmm19\n\tvmovdqa64 %%zmm2, %%zmm20\n\t"        \
  "vmovdqa64 %%zmm2, %%zmm21\n\t"                                                                  \
  "vpbroadcastd %1, %%zmm0\n\tvpbroadcastd %1, %%zmm1\n\t"

uint64_t qcal_peak_vnni__avx512(uint64_t iters) {
  uint64_t n = iters;
  if (n)
    __asm__ volatile(SETUP "1:\n\t" OP12("vpdpbusd") "dec %0\n\tjnz 1b\n\tvzeroupper"
                     : "+r"(n)
                     : "r"(0x01010101)
                     : CLOBBER20, "cc");
  return iters * 12u * 128u; /* 16 lanes x 4 u8*s8 multiply-adds */
}

uint64_t qcal_peak_fma__avx512(uint64_t iters) {
  uint64_t n = iters;
  if (n)
    __asm__ volatile(SETUP "1:\n\t" OP12("vfmadd231ps") "dec %0\n\tjnz 1b\n\tvzeroupper"
                     : "+r"(n)
                     : "r"(0x3f800000) /* 1.0f: finite forever at these counts */
                     : CLOBBER20, "cc");
  return iters * 12u * 32u; /* 16 lanes x multiply-add */
}

uint64_t qcal_peak_bf16__avx512(uint64_t iters) {
  uint64_t n = iters;
  if (n)
    __asm__ volatile(SETUP "1:\n\t" OP12("vdpbf16ps")
                         OP8("vdpbf16ps") "dec %0\n\tjnz 1b\n\tvzeroupper"
                     : "+r"(n)
                     : "r"(0x3f803f80) /* two bf16 1.0 */
                     : CLOBBER20, "cc");
  return iters * 20u * 64u; /* 16 lanes x 2 bf16 multiply-adds */
}
