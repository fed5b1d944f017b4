/* Pass bias-absorption-form (docs/repair.md): the form in which high-bias
 * absorption (Nagel et al. 2019, 4.1) is exact on every input.
 *
 * The paper moves c_c out of layer a's bias and adds W_b c into layer b's,
 * which keeps relu(y) = relu(y - c) + c only where y >= c: on photos the
 * calibration did not see, a pre-activation below c changes the float
 * model (PoseNet, 2 calibration photos: every layer left float was 27 dB
 * from the original). Here the Relu between a and b becomes Max(x, floor)
 * with a per-channel floor, 0 at first (the same function); absorption
 * then lowers the floor with the bias, max(y - c, -c) = relu(y) - c for
 * every y, so only the quantization of b's input sees the change. A
 * Clip(0, hi) is split first (Relu then Min(., hi per channel)), so the
 * bound follows too. Only where b reads no padding: padding reads zeros,
 * which a shifted input would not. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"

static bool no_padding(qcal_graph *g, qcal_node *b) {
  if (b->op == QCAL_GOP_Gemm)
    return true;
  qcal_geom ge;
  const qcal_value *x = &g->values[b->in[0]], *w = &g->values[b->in[1]];
  if (qcal_geom_parse(g, b, x, w->shape + 2, false, false, &ge))
    return false;
  return !ge.pb[0] && !ge.pb[1] && !ge.pe[0] && !ge.pe[1];
}

/* Relu (or Clip(0, inf), or a split Clip's Relu) n -> Max(x, zeros[C]). */
static qcal_status to_floor(qcal_graph *g, int ni, int64_t C) {
  qcal_node *n = &g->nodes[ni];
  const qcal_value *y = &g->values[n->out[0]];
  int64_t cshape[QCAL_MAX_DIMS];
  const int cdim = y->ndim - 1;
  for (int d = 0; d < cdim; d++)
    cshape[d] = d == 0 ? C : 1;
  char base[560];
  snprintf(base, sizeof base, "%s", n->name[0] ? n->name : "relu");
  int cv;
  QCAL_TRY(qcal_graph_add_f32(g, base, ":floor", cdim, cshape, NULL, &cv));
  n = &g->nodes[ni];
  if (n->nin < 2) {
    int *in = realloc(n->in, 2 * sizeof *in);
    if (!in)
      return qcal_error(QCAL_ENOMEM, "out of memory");
    n->in = in;
  }
  n->op = QCAL_GOP_Max;
  n->nin = 2;
  n->in[1] = cv;
  qcal_node_clear_attrs(n);
  g->values[cv].consumers = 1;
  return QCAL_OK;
}

qcal_status qcal_pass_absorb_form(qcal_graph *g, const qcal_graph_opts *o) {
  if (!o->absorb_form)
    return QCAL_OK;
  for (int i = 0; i < g->nnodes; i++)
    if (!g->nodes[i].dead &&
        (g->nodes[i].op == QCAL_GOP_QuantizeLinear || g->nodes[i].op == QCAL_GOP_DequantizeLinear))
      return QCAL_OK; /* an already quantized model is left as it is */
  qcal_layer_pair *pairs;
  int np;
  QCAL_TRY(qcal_graph_layer_pairs(g, &pairs, &np));
  qcal_status st = QCAL_OK;
  bool added = false;
  for (int k = 0; k < np && !st; k++) {
    qcal_layer_pair *p = &pairs[k];
    if (p->floor || p->act < 0 || p->kind == QCAL_PAIR_PRELU)
      continue;
    const qcal_node *a = &g->nodes[p->a], *act = &g->nodes[p->act];
    if (act->op == QCAL_GOP_LeakyRelu || a->nin < 3 || a->in[2] < 0)
      continue; /* LeakyRelu(y - c) + c is not LeakyRelu(y) below zero */
    if (!no_padding(g, &g->nodes[p->b]))
      continue;
    if (p->kind == QCAL_PAIR_CLIP) {
      st = qcal_pair_split_clip(g, p);
      added = true;
    }
    if (!st)
      st = to_floor(g, p->act, g->values[g->nodes[p->a].in[1]].shape[0]);
  }
  free(pairs);
  if (!st && added) /* the new Min nodes go after their Max */
    st = qcal_pass_sort(g, o);
  return st;
}
