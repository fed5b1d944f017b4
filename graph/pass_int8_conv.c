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
  bool done;
  QCAL_TRY(qcal_int8_weighted(g, i, QCAL_GOP_Int8Conv, 0, true, &done));
  if (!done)
    return QCAL_OK;
  qcal_node *n = &g->nodes[i];
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
