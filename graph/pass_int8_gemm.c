/* Pass (engine int8): Gemm(DQ(a), DQ(w)) with scales per output channel
 * (axis 0 of w [N, K] with transB, as PyTorch's Linear; axis 1 of w [K, N]
 * without, as TF.js's dense), alpha = beta = 1, no transA, becomes an
 * Int8Gemm: an integer GEMM (graph/op_matmul.c) with float output,
 * y = act(acc * scales[n] + C). */
#include "graph/internal.h"

static qcal_status lower(qcal_graph *g, int i) {
  qcal_node *n = &g->nodes[i];
  const bool tb = qcal_attr_int(n, "transB", 0);
  const bool fits = !qcal_attr_int(n, "transA", 0) && qcal_attr_float(n, "alpha", 1) == 1 &&
                    qcal_attr_float(n, "beta", 1) == 1;
  bool done;
  QCAL_TRY(qcal_int8_weighted(g, i, QCAL_GOP_Int8Gemm, tb ? 0 : 1, fits, &done));
  g->int8_nodes += done;
  return QCAL_OK;
}

qcal_status qcal_pass_int8_gemm(qcal_graph *g, const qcal_graph_opts *o) {
  (void)o;
  return qcal_lower_each(g, QCAL_GOP_Gemm, lower);
}
