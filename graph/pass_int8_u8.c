/* Pass (engine int8): an Int8Conv output after ReLU or a Clip at >= 0
 * holds 0..127: the same bytes as u8. When only Int8Conv inputs, int8
 * pools and DequantizeLinear read it, it is stored as u8 (the readers'
 * u8 x s8 kernels skip the compensation s8 inputs need); the writer clamps
 * to 127 ("y_max") as the s8 QuantizeLinear did. */
#include "graph/internal.h"

static qcal_status as_u8(qcal_graph *g, int i) {
  qcal_node *n = &g->nodes[i];
  if (n->dead || n->op != QCAL_GOP_Int8Conv)
    return QCAL_OK;
  qcal_int8_params p;
  qcal_int8_params_get(n, &p);
  bool nonneg = (n->x.act == QCAL_ACT_RELU && n->x.act_alpha == 0) ||
                (n->x.act == QCAL_ACT_CLIP && n->x.act_alpha >= 0);
  int y = n->out[0];
  if (!(p.y_scale > 0) || !nonneg || g->values[y].dtype != QCAL_DT_I8 || g->values[y].is_output)
    return QCAL_OK;
  for (int k = 0; k < g->nnodes; k++) {
    const qcal_node *r = &g->nodes[k];
    if (r->dead)
      continue;
    for (int s = 0; s < r->nin; s++)
      if (r->in[s] == y && !(r->op == QCAL_GOP_DequantizeLinear && s == 0) &&
          !(r->op == QCAL_GOP_Int8Conv && s == 0) && r->op != QCAL_GOP_Int8GlobalAveragePool &&
          r->op != QCAL_GOP_Int8MaxPool)
        return QCAL_OK;
    if (r->x.sum_in == y)
      return QCAL_OK;
  }
  g->values[y].dtype = QCAL_DT_U8;
  return qcal_node_set_int(n, "y_max", 127);
}

qcal_status qcal_pass_int8_u8(qcal_graph *g, const qcal_graph_opts *o) {
  (void)o;
  for (int i = 0; i < g->nnodes; i++)
    QCAL_TRY(as_u8(g, i));
  return QCAL_OK;
}
