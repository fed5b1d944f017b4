/* Pass (engine int8): Gemm(DQ(a), DQ(w)) with scales per output channel
 * (axis 0 of w [N, K] with transB, as PyTorch's Linear; axis 1 of w [K, N]
 * without, as TF.js's dense), alpha = beta = 1, no transA, becomes an
 * Int8Gemm: an integer GEMM (graph/op_matmul.c) with float output,
 * y = act(acc * scales[n] + C). */
#include "graph/internal.h"

static qcal_status lower(qcal_graph *g, int i) {
  qcal_node *n = &g->nodes[i];
  qcal_node *dx = qcal_live_op(g, qcal_producer_of(g, n->in[0]), QCAL_GOP_DequantizeLinear);
  qcal_node *dw = qcal_live_op(g, qcal_producer_of(g, n->in[1]), QCAL_GOP_DequantizeLinear);
  if (!dx || !dw)
    return QCAL_OK;
  g->int8_candidates++;
  const float *xs, *ws;
  size_t nxs, nws;
  const qcal_dtype xt = qcal_in(g, dx, 0)->dtype;
  const int64_t nout = g->values[n->out[0]].shape[1];
  const bool tb = qcal_attr_int(n, "transB", 0);
  if (qcal_attr_int(n, "transA", 0) || qcal_attr_float(n, "alpha", 1) != 1 ||
      qcal_attr_float(n, "beta", 1) != 1 || !qcal_qdq_sym_params(g, dx, &xs, &nxs) || nxs != 1 ||
      (xt != QCAL_DT_I8 && xt != QCAL_DT_U8) || !qcal_qdq_sym_params(g, dw, &ws, &nws) ||
      (nws != 1 && (int64_t)nws != nout))
    return QCAL_OK;
  bool done;
  QCAL_TRY(
      qcal_int8_weighted(g, n, QCAL_GOP_Int8Gemm, dx, dw, xs[0], ws, nws, nout, tb ? 0 : 1, &done));
  g->int8_nodes += done;
  return QCAL_OK;
}

qcal_status qcal_pass_int8_gemm(qcal_graph *g, const qcal_graph_opts *o) {
  (void)o;
  return qcal_lower_each(g, QCAL_GOP_Gemm, lower);
}
