/* Pass: shape inference node by node, folding every node whose inputs are
 * all constant (shape sub-graphs become constants once the input shape is
 * fixed). An attribute no op read is refused here. */
#include "graph/internal.h"

/* Run a node whose inputs are all constant; its outputs become constants. */
qcal_status qcal_fold_node(qcal_graph *g, qcal_node *n) {
  for (int o = 0; o < n->nout; o++) {
    qcal_value *v = qcal_out(g, n, o);
    if (!v)
      continue;
    size_t bytes = v->numel * qcal_dtype_size(v->dtype);
    if (bytes > ((size_t)1 << 30))
      return qcal_node_error(g, n, QCAL_ENOMEM, "folding would make a %zu-byte constant", bytes);
    v->data = qcal_alloc(bytes ? bytes : 1);
    if (!v->data)
      return qcal_node_error(g, n, QCAL_ENOMEM, "out of memory folding %zu bytes", bytes);
    v->kind = QCAL_VAL_CONST;
  }
  QCAL_TRY(qcal_op_fwd[n->op](g, n));
  n->dead = true;
  if (n->x.state_free && n->x.state)
    n->x.state_free(n->x.state);
  n->x.state = NULL;
  return QCAL_OK;
}

static bool foldable(qcal_graph *g, const qcal_node *n) {
  if (n->op == QCAL_GOP_Shape || n->op == QCAL_GOP_Constant)
    return true;
  if (!(qcal_op_infos[n->op].flags & QCAL_OPF_FOLD))
    return false;
  for (int k = 0; k < n->nin; k++) {
    const qcal_value *v = qcal_in(g, n, k);
    if (v && v->kind != QCAL_VAL_CONST)
      return false;
  }
  return true;
}

qcal_status qcal_pass_infer_fold(qcal_graph *g, const qcal_graph_opts *o) {
  (void)o;
  for (int i = 0; i < g->nnodes; i++) {
    qcal_node *n = &g->nodes[i];
    if (n->dead) /* a trainer's detached loss, a folded node */
      continue;
    QCAL_TRY(qcal_op_infer[n->op](g, n));
    for (int a = 0; a < n->nattr; a++)
      if (!n->attr[a].used)
        return qcal_node_error(g, n, QCAL_EUNSUPPORTED, "attribute '%s' is not supported",
                               n->attr[a].name);
    if (foldable(g, n))
      QCAL_TRY(qcal_fold_node(g, n));
  }
  return QCAL_OK;
}
