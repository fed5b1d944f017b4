/* Pass: the Q/DQ of constant weights that the engine's passes left in place
 * run once, here: the fake-quantized weight becomes a constant (the same
 * values every run). QuantizeLinear nodes first, then the DequantizeLinear
 * nodes that read what they made. */
#include "graph/internal.h"

static qcal_status fold_all(qcal_graph *g, qcal_graph_op op) {
  for (int i = 0; i < g->nnodes; i++) {
    qcal_node *n = &g->nodes[i];
    if (n->dead || n->op != op)
      continue;
    bool all = true;
    for (int k = 0; k < n->nin; k++)
      all &= !qcal_in(g, n, k) || qcal_in(g, n, k)->kind == QCAL_VAL_CONST;
    if (all && !qcal_out(g, n, 0)->is_output)
      QCAL_TRY(qcal_fold_node(g, n));
  }
  return QCAL_OK;
}

qcal_status qcal_pass_fold_qdq(qcal_graph *g, const qcal_graph_opts *o) {
  (void)o;
  QCAL_TRY(fold_all(g, QCAL_GOP_QuantizeLinear));
  qcal_graph_link(g);
  return fold_all(g, QCAL_GOP_DequantizeLinear);
}
