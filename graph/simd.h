/* Function multi-versioning for the hand-written element-wise spans: each
 * static function marked QCAL_SIMD_CLONES is built for AVX-512, AVX2 and
 * the baseline, and GCC and clang pick one at load time. Keep the clones
 * static behind plain exported functions: clang 14 emits the resolver of a
 * cloned function only for calls in its own file. */
#ifndef QCAL_GRAPH_SIMD_H
#define QCAL_GRAPH_SIMD_H
#define QCAL_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
