/* Element-wise ops on int8 tensors (engine int8): a residual Add whose two
 * inputs were dequantized and whose result (after an optional Relu) is
 * quantized again runs as one pass over the int8 bytes:
 *   y = saturate(round(act(a * sa + b * sb) / sy) + zy)
 * the same float arithmetic as DQ, Add, Relu and Q one after the other. */
#include "graph/internal.h"

__attribute__((target_clones("avx512f", "avx2", "default"))) static void
add8_run(const int8_t *a, const int8_t *b, size_t n, float sa, float sb, float sy, float zy,
         bool relu, int8_t *y) {
  for (size_t i = 0; i < n; i++) {
    float v = (float)a[i] * sa + (float)b[i] * sb;
    v = relu && v < 0 ? 0 : v;
    float r = __builtin_rintf(v / sy) + zy;
    r = r < -128.0f ? -128.0f : r > 127.0f ? 127.0f : r;
    y[i] = (int8_t)r;
  }
}

qcal_status qcal_fwd_add_int8(qcal_graph *g, qcal_node *n) {
  const qcal_value *a = qcal_in(g, n, 0), *b = qcal_in(g, n, 1);
  qcal_value *y = qcal_out(g, n, 0);
  const size_t chunk = 16384, total = y->numel;
  const long nchunks = (long)((total + chunk - 1) / chunk);
  const bool relu = n->act == QCAL_ACT_RELU;
#pragma omp parallel for schedule(static) if (nchunks > 4)
  for (long c = 0; c < nchunks; c++) {
    size_t o = (size_t)c * chunk, m = total - o < chunk ? total - o : chunk;
    add8_run((const int8_t *)a->data + o, (const int8_t *)b->data + o, m, n->qscale[0],
             n->qscale[1], n->qyscale, n->qyzero, relu, (int8_t *)y->data + o);
  }
  return QCAL_OK;
}
