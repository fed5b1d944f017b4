/* Pass (engine int8): Gemm(DQ(a), DQ(w)) with scales per output channel
 * (axis 0 of w [N, K] with transB, as PyTorch's Linear; axis 1 of w [K, N]
 * without, as TF.js's dense), alpha = beta = 1, no transA, becomes an
 * Int8Gemm: an integer GEMM (graph/op_matmul.c) with float output,
 * y = act(acc * scales[n] + C). */
#include <stdlib.h>

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
  int wq;
  QCAL_TRY(qcal_int8_weight(g, dw, ws, nws, tb ? 0 : 1, &wq)); /* adds a value: nodes stay */
  if (wq < 0)
    return QCAL_OK;
  float *os = malloc((size_t)nout * sizeof *os);
  if (!os)
    return qcal_error(QCAL_ENOMEM, "out of memory");
  for (int64_t c = 0; c < nout; c++)
    os[c] = xs[0] * ws[nws > 1 ? c : 0];
  qcal_status st = qcal_node_set_floats(n, "scales", os, (int)nout);
  free(os);
  QCAL_TRY(st);
  n->op = QCAL_GOP_Int8Gemm;
  n->in[0] = dx->in[0];
  n->in[1] = wq;
  g->int8_nodes++;
  return QCAL_OK;
}

qcal_status qcal_pass_int8_gemm(qcal_graph *g, const qcal_graph_opts *o) {
  (void)o;
  for (int i = 0; i < g->nnodes; i++)
    if (!g->nodes[i].dead && g->nodes[i].op == QCAL_GOP_Gemm)
      QCAL_TRY(lower(g, i));
  return QCAL_OK;
}
