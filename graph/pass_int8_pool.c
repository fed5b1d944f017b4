/* Pass (engine int8): pooling over int8 codes.
 * - GlobalAveragePool(DQ(a)) over a 4-D int8 tensor, per-tensor scale,
 *   becomes an Int8GlobalAveragePool: the codes summed exactly as integers,
 *   times the scale ("a_scale") over H * W.
 * - MaxPool(DQ(a)) -> Q, per-tensor scales, zero points 0, becomes an
 *   Int8MaxPool: the max of the codes is the code of the max (the scale is
 *   positive), requantized to the Q's scale ("y_scale") as DQ and Q would. */
#include "graph/internal.h"

/* GlobalAveragePool(DQ(a)) over an int8 tensor, per-tensor scale: the
 * average of the codes, summed exactly as integers, times the scale. */
static qcal_status lower_gap(qcal_graph *g, int i) {
  qcal_node *n = &g->nodes[i];
  const float *s;
  qcal_node *d = qcal_int8_dq_input(g, n, &s);
  if (!d)
    return QCAL_OK;
  QCAL_TRY(qcal_node_set_float(n, "a_scale", s[0]));
  n->op = QCAL_GOP_Int8GlobalAveragePool;
  n->in[0] = d->in[0];
  return QCAL_OK;
}

/* MaxPool(DQ(a)) -> Q over an int8 tensor, per-tensor scales, zero points
 * 0: the max of the codes is the code of the max (the scale is positive);
 * it is then requantized to the Q's scale as DQ and Q would. */
static qcal_status lower_maxpool(qcal_graph *g, int i) {
  qcal_node *n = &g->nodes[i];
  const float *s, *ys;
  size_t nys;
  qcal_node *d = qcal_int8_dq_input(g, n, &s);
  int y = n->out[0], reader = -1;
  if (!d || n->nout != 1 || g->values[y].is_output || qcal_count_readers(g, y, &reader) != 1)
    return QCAL_OK;
  qcal_node *q = qcal_live_op(g, reader, QCAL_GOP_QuantizeLinear);
  if (!q || q->in[0] != y || !qcal_qdq_sym_params(g, q, &ys, &nys) || nys != 1 ||
      g->values[q->out[0]].dtype != QCAL_DT_I8 || g->values[q->out[0]].is_output)
    return QCAL_OK;
  QCAL_TRY(qcal_node_set_float(n, "a_scale", s[0]));
  QCAL_TRY(qcal_node_set_float(n, "y_scale", ys[0]));
  n->op = QCAL_GOP_Int8MaxPool;
  n->in[0] = d->in[0];
  n->out[0] = q->out[0];
  q->dead = true;
  return QCAL_OK;
}

qcal_status qcal_pass_int8_pool(qcal_graph *g, const qcal_graph_opts *o) {
  (void)o;
  QCAL_TRY(qcal_lower_each(g, QCAL_GOP_GlobalAveragePool, lower_gap));
  return qcal_lower_each(g, QCAL_GOP_MaxPool, lower_maxpool);
}
