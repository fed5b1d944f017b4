/* Reference 8-bit GEMM with zero points (ONNX MatMulInteger semantics). */
#include "qcal/quant.h"

static inline int32_t load8(const void *p, qcal_int8_type t, size_t i) {
  return t == QCAL_S8 ? (int32_t)((const int8_t *)p)[i] : (int32_t)((const uint8_t *)p)[i];
}

void qcal_gemm_q8_s32__ref(size_t m, size_t n, size_t k, const void *a, qcal_int8_type ta,
                           size_t lda, int32_t za, const void *b, qcal_int8_type tb, size_t ldb,
                           int32_t zb, int32_t *c, size_t ldc) {
  for (size_t i = 0; i < m; i++)
    for (size_t j = 0; j < n; j++) {
      int64_t acc = 0;
      for (size_t p = 0; p < k; p++)
        acc += (int64_t)(load8(a, ta, i * lda + p) - za) * (load8(b, tb, p * ldb + j) - zb);
      c[i * ldc + j] = (int32_t)acc; /* wraps like int32 hardware would */
    }
}
