/* Pass (engine fp32): every DequantizeLinear(QuantizeLinear(x)) read as x:
 * the float model the Q/DQ model was made from. */
#include "graph/internal.h"

/* Replace every read of value `from` (node inputs, fused sums, graph
 * outputs stay) by value `to`. */
static void reroute(qcal_graph *g, int from, int to) {
  for (int i = 0; i < g->nnodes; i++) {
    qcal_node *n = &g->nodes[i];
    if (n->dead)
      continue;
    for (int k = 0; k < n->nin; k++)
      if (n->in[k] == from)
        n->in[k] = to;
    if (n->x.sum_in == from)
      n->x.sum_in = to;
  }
}

qcal_status qcal_pass_strip_qdq(qcal_graph *g, const qcal_graph_opts *o) {
  (void)o;
  for (int i = 0; i < g->nnodes; i++) {
    qcal_node *d = qcal_live_op(g, i, QCAL_GOP_DequantizeLinear);
    if (!d)
      continue;
    qcal_node *q = qcal_live_op(g, qcal_producer_of(g, d->in[0]), QCAL_GOP_QuantizeLinear);
    if (!q || g->values[d->out[0]].is_output)
      continue;
    reroute(g, d->out[0], q->in[0]);
  }
  return QCAL_OK;
}
