/* Pass (engine int8): Add(DQ(a), DQ(b)) [-> Relu] -> Q over int8 tensors of
 * one shape becomes an Int8Add: one pass over the int8 bytes with the DQ,
 * Add, Relu and Q arithmetic (graph/op_int8.c); "a_scale", "b_scale",
 * "y_scale" are the scales of the Q/DQ it replaces. */
#include "graph/internal.h"

static qcal_status lower(qcal_graph *g, int i) {
  qcal_node *n = &g->nodes[i];
  qcal_node *da = qcal_live_op(g, qcal_producer_of(g, n->in[0]), QCAL_GOP_DequantizeLinear);
  qcal_node *db = qcal_live_op(g, qcal_producer_of(g, n->in[1]), QCAL_GOP_DequantizeLinear);
  const float *sa, *sb, *sy;
  size_t na, nb, ny;
  if (!da || !db || n->x.sum_in >= 0 || !qcal_qdq_sym_params(g, da, &sa, &na) ||
      !qcal_qdq_sym_params(g, db, &sb, &nb) || na != 1 || nb != 1)
    return QCAL_OK;
  const qcal_value *aq = qcal_in(g, da, 0), *bq = qcal_in(g, db, 0), *y = qcal_out(g, n, 0);
  if (aq->dtype != QCAL_DT_I8 || bq->dtype != QCAL_DT_I8 || aq->numel != y->numel ||
      bq->numel != y->numel || y->is_output)
    return QCAL_OK;
  int reader = -1, relu = -1;
  if (qcal_count_readers(g, n->out[0], &reader) != 1)
    return QCAL_OK;
  if (qcal_live_op(g, reader, QCAL_GOP_Relu)) {
    relu = reader;
    if (g->values[g->nodes[relu].out[0]].is_output ||
        qcal_count_readers(g, g->nodes[relu].out[0], &reader) != 1)
      return QCAL_OK;
  }
  qcal_node *q = qcal_live_op(g, reader, QCAL_GOP_QuantizeLinear);
  if (!q || !qcal_qdq_sym_params(g, q, &sy, &ny) || ny != 1 ||
      g->values[q->out[0]].dtype != QCAL_DT_I8 || g->values[q->out[0]].is_output)
    return QCAL_OK;
  QCAL_TRY(qcal_node_set_float(n, "a_scale", sa[0]));
  QCAL_TRY(qcal_node_set_float(n, "b_scale", sb[0]));
  QCAL_TRY(qcal_node_set_float(n, "y_scale", sy[0]));
  n->op = QCAL_GOP_Int8Add;
  n->x.act = relu >= 0 ? QCAL_ACT_RELU : QCAL_ACT_NONE;
  n->in[0] = da->in[0];
  n->in[1] = db->in[0];
  n->out[0] = q->out[0];
  q->dead = true;
  if (relu >= 0)
    g->nodes[relu].dead = true;
  return QCAL_OK;
}

qcal_status qcal_pass_int8_add(qcal_graph *g, const qcal_graph_opts *o) {
  (void)o;
  return qcal_lower_each(g, QCAL_GOP_Add, lower);
}
