/* Pass (engine int8): a Conv that reads DQ(int8 activation) and DQ(int8
 * weight), with per-tensor activation and per-tensor or per-output-channel
 * weight scales and zero points 0, becomes an Int8Conv reading the int8
 * tensors themselves: a oneDNN int8 primitive (s8/u8 x s8, int32
 * accumulation) whose "scales" attribute turns the accumulator into the
 * float result, fused activation and residual kept. When a per-tensor
 * QuantizeLinear is the output's only reader, the Int8Conv writes that
 * int8 tensor directly ("y_scale": requantization fused). */
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
  const int64_t cout = g->values[n->out[0]].shape[1];
  if (!qcal_qdq_sym_params(g, dx, &xs, &nxs) || nxs != 1 ||
      (xt != QCAL_DT_I8 && xt != QCAL_DT_U8) || !qcal_qdq_sym_params(g, dw, &ws, &nws) ||
      (nws != 1 && (int64_t)nws != cout))
    return QCAL_OK;
  bool done;
  QCAL_TRY(qcal_int8_weighted(g, n, QCAL_GOP_Int8Conv, dx, dw, xs[0], ws, nws, cout, 0, &done));
  if (!done)
    return QCAL_OK;
  /* requantization fused: the only reader is a per-tensor QuantizeLinear */
  int y = n->out[0], reader = -1;
  if (!g->values[y].is_output && n->x.sum_in < 0 && qcal_count_readers(g, y, &reader) == 1) {
    qcal_node *q = qcal_live_op(g, reader, QCAL_GOP_QuantizeLinear);
    const float *ys;
    size_t nys;
    if (q && q->in[0] == y && qcal_qdq_sym_params(g, q, &ys, &nys) && nys == 1 &&
        !g->values[q->out[0]].is_output) {
      QCAL_TRY(qcal_node_set_float(n, "y_scale", ys[0]));
      n->out[0] = q->out[0];
      q->dead = true;
    }
  }
  g->int8_nodes++;
  return QCAL_OK;
}

qcal_status qcal_pass_int8_conv(qcal_graph *g, const qcal_graph_opts *o) {
  (void)o;
  return qcal_lower_each(g, QCAL_GOP_Conv, lower);
}
